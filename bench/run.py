"""The wasm-bpf benchmark suite: `make bench` (full) or `python3 bench/run.py --short`.

Consumers measured side by side in one run, on the same BPF object per figure:
native libbpf (the reference), the wasm-bpf per-record callback and the wasm-bpf
batch extension, each with a C guest (wasm-*) and a Rust guest (rust-*). Figures:
  drain      cache-hot rounds: the driver fills a 256 KiB ring (3456 records), the consumer
             drains it, both pinned to one CPU, 869 rounds (3.0 M records); records / the
             consumer's own drain time (events/s)
  stream     8 records per trigger into a 16 MiB ring for --stream-seconds (events/s, drops)
  cold_start whole-process `wasm-bpf run` of a load+attach+exit guest vs a native loader
             (its compiled code from the compiled-module cache, filled by a first run)
  hot_load   load+attach+close of that guest inside a running process vs the kernel's own time
  rss        peak and idle RSS of `wasm-bpf run bootstrap.wasm` (cache filled first)
  run_ref    whole-process `wasm-bpf run REGISTRY/REPO:TAG` of that guest from a warm cache
             (registry stopped) vs the same file given by path (docs/oci.md)
  ko_decode  kernel-only decode + print rate (records/s) into JSON lines, table and CSV,
             batched as the runner does it and one row at a time (bench/ko_decode.py)
Every figure is also given as a ratio to the native consumer of the same run, with
the spread (min..max) over --runs runs. Results: bench-results/results.json and a
table on stdout. --short checks that every record arrives, in order, and skips
the timing figures (CI runs it through tests/test_bench.py)."""
import argparse
import json
import os
import signal
import statistics
import subprocess
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Optional, Tuple

HERE = Path(__file__).resolve().parent
ROOT = HERE.parent
OUT = HERE / "build"
DRIVER = OUT / "wbpf-bench-drv"
NATIVE = OUT / "native_consumer"
WASM_BPF = [sys.executable, "-m", "wasm_bpf"]
DRAIN_RECORDS_PER_TRIGGER = 64  # as compiled in bench/Makefile (also bench/pyapi.py's fill object)
DRAIN_CALLS_PER_ROUND = 54  # 54 x 64 = 3456 records of 64 bytes: 84 % of the 256 KiB ring (4095 fit)
DRAIN_ROUNDS = 869  # 3.0 M records per run
STREAM_RECORDS_PER_TRIGGER = 8
RING_RECORD_BYTES = 64  # 56-byte record + 8-byte ring header
DRAIN_RING_BYTES = 256 << 10  # as compiled in bench/Makefile
assert DRAIN_CALLS_PER_ROUND * DRAIN_RECORDS_PER_TRIGGER * RING_RECORD_BYTES < DRAIN_RING_BYTES
CONSUMERS = ("native", "wasm-record", "wasm-batch", "rust-record", "rust-batch")
FIGURES = ("drain", "stream", "start")  # start: cold start, hot load, RSS, run_ref, ko decode
GUEST_MODULES = {"wasm": "consumer", "rust": "rust_consumer"}  # C (wasm_consumer.c), Rust (rust_consumer/)


def build() -> None:
    subprocess.run(["make", "-s", "-C", str(HERE)], check=True)


def consumer_cmd(consumer: str, figure: str, comm: Optional[str] = None) -> List[str]:
    """comm: the driver's name the program waits for (default BENCH_DRIVER_COMM)."""
    extra = [comm] if comm else []
    if consumer == "native":
        return [str(NATIVE), figure, str(OUT / figure / "bench.bpf.o"), *extra]
    lang, mode = consumer.split("-", 1)
    return [*WASM_BPF, "run", str(OUT / f"{GUEST_MODULES[lang]}_{figure}.wasm"), "--", figure, mode, *extra]


def drain_cpu() -> int:
    """The CPU the drain figure's driver and consumer share: the last one we may use."""
    return max(os.sched_getaffinity(0))


class Consumer:
    """A consumer process, started and waited for until it has attached (pinned to
    `cpu` with all its threads when given)."""

    def __init__(self, consumer: str, figure: str, comm: Optional[str] = None, cpu: Optional[int] = None) -> None:
        pin = (lambda: os.sched_setaffinity(0, {cpu})) if cpu is not None else None
        self.proc = subprocess.Popen(consumer_cmd(consumer, figure, comm), stdin=subprocess.PIPE,
                                     stdout=subprocess.PIPE, text=True, preexec_fn=pin)
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            self.proc.kill()
            raise RuntimeError(f"{consumer} consumer did not start: {line!r}")

    def result(self, timeout: float = 120) -> dict:
        out, _ = self.proc.communicate(timeout=timeout)
        lines = [line for line in out.splitlines() if line.startswith("{")]
        if self.proc.returncode != 0 or not lines:
            raise RuntimeError(f"consumer failed ({self.proc.returncode}): {out!r}")
        return json.loads(lines[-1])


def drive(*args: str) -> dict:
    out = subprocess.run([str(DRIVER), *args], check=True, capture_output=True, text=True).stdout
    return json.loads(out)


def run_drain(consumer: str, rounds: int, calls_per_round: int = DRAIN_CALLS_PER_ROUND) -> dict:
    """The drain figure, cache-hot: `rounds` times the driver fills the 256 KiB ring
    (calls_per_round x 64 records) and the consumer drains it, the two pinned to one
    CPU so that they alternate and the ring stays in its caches. The driver talks to
    the consumer directly (\"go\" on its stdin, \"drained RECORDS\" back) and passes
    its result on. rate: records / the consumer's own drain time. Every record of
    every round must arrive in that round, once and in order (else AssertionError)."""
    cpu, comm = drain_cpu(), f"wbpfdrain{os.getpid()}"[:15]  # its own name: no other run's driver counts
    c = Consumer(consumer, "drain", comm, cpu)
    go = c.proc.stdin.fileno()
    driver = subprocess.Popen([str(DRIVER), "rounds", str(rounds), str(calls_per_round), str(go), comm],
                              stdin=c.proc.stdout, stdout=subprocess.PIPE, text=True, pass_fds=(go,),
                              preexec_fn=lambda: os.sched_setaffinity(0, {cpu}))
    c.proc.stdin.close()  # the driver's copy is the only one: its close ends the consumer's rounds
    c.proc.stdout.close()
    try:
        out, _ = driver.communicate(timeout=300)
        c.proc.wait(60)
    finally:
        for p in (driver, c.proc):
            if p.poll() is None:
                p.kill()
                p.wait()
    lines = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    if driver.returncode != 0 or c.proc.returncode != 0 or len(lines) != 2:
        raise RuntimeError(f"drain/{consumer}: driver {driver.returncode}, consumer {c.proc.returncode}: {out!r}")
    res, drv = lines
    expected = calls_per_round * DRAIN_RECORDS_PER_TRIGGER
    check_exact(res, rounds * expected, f"drain/{consumer}")
    if not (drv["rounds"] == rounds and drv["round_min"] == drv["round_max"] == expected):
        raise AssertionError(f"drain/{consumer}: each of {rounds} rounds should deliver {expected} records, "
                             f"got {drv}")
    res.update(rounds=rounds, round_min=drv["round_min"], round_max=drv["round_max"])
    res["rate"] = res["records"] / res["seconds"] if res["seconds"] > 0 else 0.0
    return res


def cpu_seconds(pid: int) -> float:
    """User + system CPU time of a process so far (/proc/PID/stat)."""
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")


def run_stream(consumer: str, *driver_args: str) -> dict:
    c = Consumer(consumer, "stream")
    cpu_start = cpu_seconds(c.proc.pid)  # attached: start-up is not counted
    driver = drive(*driver_args)
    time.sleep(0.3)  # let the consumer catch up before it is stopped
    cpu = cpu_seconds(c.proc.pid) - cpu_start
    c.proc.send_signal(signal.SIGINT)
    res = c.result()
    res["rate"] = res["records"] / driver["seconds"]
    res["cpu_ns_per_record"] = cpu * 1e9 / res["records"] if res["records"] else 0.0
    return res


def check_exact(res: dict, expected: int, what: str) -> None:
    """Every triggered record arrived, once and in order (the short mode's assertion)."""
    if res["error"] or res["out_of_order"] or res["drops"] or not res["records"] == res["emitted"] == expected:
        raise AssertionError(f"{what}: expected {expected} records, got {res}")


def whole_process_seconds(cmd: List[str], env: Optional[dict] = None) -> float:
    start = time.perf_counter()
    subprocess.run(cmd, check=True, stdout=subprocess.DEVNULL, env=env)
    return time.perf_counter() - start


def hot_load_seconds(runs: int) -> List[float]:
    """load+attach+close of the start guest inside this (already warm) process."""
    import wasm_bpf

    module = OUT / "start.wasm"
    wasm_bpf.run(module)  # warm-up: compilation cache, imports
    times = []
    for _ in range(runs):
        start = time.perf_counter()
        assert wasm_bpf.run(module).exit_code == 0
        times.append(time.perf_counter() - start)
    return times


def run_ref_seconds(runs: int) -> Dict[str, dict]:
    """The start guest pushed to a loopback docker-registry (the push fills the cache),
    the registry stopped, then `run REF` and `run FILE` interleaved."""
    import socket
    import tempfile
    with tempfile.TemporaryDirectory() as tmp, socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        host = f"127.0.0.1:{sock.getsockname()[1]}"
        sock.close()
        config = Path(tmp) / "registry.yml"
        config.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {tmp}/data\n"
                          f"http:\n  addr: {host}\n")
        registry = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=subprocess.DEVNULL,
                                    stderr=subprocess.DEVNULL)
        env = {**os.environ, "WASM_BPF_CACHE": f"{tmp}/cache"}
        ref, module = f"{host}/bench/start:v1", str(OUT / "start.wasm")
        try:
            for _ in range(100):  # up to 5 s for the registry to listen
                if subprocess.run([*WASM_BPF, "push", "--plain-http", module, ref], env=env,
                                  capture_output=True).returncode == 0:
                    break
                time.sleep(0.05)
        finally:
            registry.terminate()
            registry.wait(10)
        local, remote = [], []
        for _ in range(runs):
            local.append(whole_process_seconds([*WASM_BPF, "run", module], env))
            remote.append(whole_process_seconds([*WASM_BPF, "run", ref], env))
    result = {"file": summary(local), "reference": summary(remote)}
    result["reference"]["vs_native"] = f"{(statistics.median(remote) - statistics.median(local)) * 1e3:+.1f} ms"
    return result


def idle_rss_mib(seconds: float = 2.0) -> Dict[str, float]:
    """Peak (VmHWM, set while loading) and current (VmRSS) RSS of an idle bootstrap."""
    module = ROOT / "wasm_examples/bootstrap/bootstrap.wasm"
    subprocess.run([*WASM_BPF, "run", str(module), "--", "-h"], stdout=subprocess.DEVNULL)  # fills the cache
    proc = subprocess.Popen([*WASM_BPF, "run", str(module)], stdout=subprocess.DEVNULL)
    time.sleep(seconds)
    with open(f"/proc/{proc.pid}/status") as status:
        fields = dict(line.split(":", 1) for line in status)
    proc.send_signal(signal.SIGINT)
    proc.wait(10)
    return {"peak": int(fields["VmHWM"].split()[0]) / 1024, "idle": int(fields["VmRSS"].split()[0]) / 1024}


def summary(values: List[float]) -> dict:
    return {"median": statistics.median(values), "min": min(values), "max": max(values), "runs": values}


def collect(runs: int, fn: Callable[[str], dict], key: str = "rate") -> Dict[str, dict]:
    per_consumer: Dict[str, List[dict]] = {c: [] for c in CONSUMERS}
    for _ in range(runs):  # interleaved, so drifts of the shared VM hit all consumers alike
        for consumer in CONSUMERS:
            per_consumer[consumer].append(fn(consumer))
    out = {}
    for consumer, results in per_consumer.items():
        out[consumer] = summary([r[key] for r in results])
        out[consumer]["drops"] = [r["drops"] for r in results]
        if "cpu_ns_per_record" in results[0]:  # stream: the consumer's CPU per delivered record
            out[consumer]["cpu_ns_per_record"] = summary([r["cpu_ns_per_record"] for r in results])
    native = out["native"]["median"]
    for consumer in CONSUMERS:
        out[consumer]["ratio_to_native"] = out[consumer]["median"] / native if native else None
    return out


def table(results: dict) -> str:
    rows = [("figure", "consumer", "median", "min..max", "vs native")]
    for figure in ("drain", "stream"):
        for consumer, r in results.get(figure, {}).items():
            cpu = f", CPU {r['cpu_ns_per_record']['median']:.0f} ns/rec" if "cpu_ns_per_record" in r else ""
            rows.append((figure + " (ev/s)", consumer, f"{r['median'] / 1e6:.2f} M",
                         f"{r['min'] / 1e6:.2f}..{r['max'] / 1e6:.2f} M",
                         f"{r['ratio_to_native'] * 100:.1f} %" + (f", drops {max(r['drops'])}" if max(r['drops']) else "")
                         + cpu))
    for figure, unit in (("cold_start", "ms"), ("hot_load", "ms"), ("run_ref", "ms")):
        for who, r in results.get(figure, {}).items():
            if isinstance(r, dict):
                rows.append((f"{figure} ({unit})", who, f"{r['median'] * 1e3:.1f}",
                             f"{r['min'] * 1e3:.1f}..{r['max'] * 1e3:.1f}", r.get("vs_native", "")))
    for figure, r in results.get("ko_decode", {}).items():
        rows.append((f"ko {figure} (rec/s)", "kernel-only batch", f"{r['batch'] / 1e6:.2f} M",
                     f"per record {r['per_record'] / 1e3:.0f} k", f"{r['batch'] / r['per_record']:.0f}x per-record"))
    if "rss_mib" in results:
        rows.append(("RSS (MiB)", "wasm-bpf run bootstrap", f"peak {results['rss_mib']['peak']:.1f}",
                     f"idle {results['rss_mib']['idle']:.1f}", ""))
    widths = [max(len(str(row[i])) for row in rows) for i in range(5)]
    return "\n".join("  ".join(str(v).ljust(w) for v, w in zip(row, widths)) for row in rows)


# Issue 19's targets, as (target, bound, this run's figure, whether the figure meets the bound).
TargetRow = Tuple[str, str, str, bool]


def targets(results: dict) -> List[TargetRow]:
    """Each issue-19 target beside this run's figure, with whether it is met."""
    rows: List[TargetRow] = []
    drain = results["drain"]
    for lang, guest in (("wasm", "C"), ("rust", "Rust")):
        for mode, bound in (("record", 0.13), ("batch", 0.45)):
            ratio = drain[f"{lang}-{mode}"]["ratio_to_native"] or 0.0
            rows.append((f"drain, {guest} guest, per {mode}", f">= {bound * 100:.0f} % of native",
                         f"{ratio * 100:.1f} %", ratio >= bound))
    # The upstream C++ AOT consumer is not installed here; the native libbpf consumer
    # uses less CPU per record than it, so within 2x of native is the stricter bound.
    # A run of some --figures has no stream or hot_load section: those rows are left out.
    stream = results.get("stream")
    if stream:
        native_ns = stream["native"]["cpu_ns_per_record"]["median"]
        for lang, guest in (("wasm", "C"), ("rust", "Rust")):
            r = stream[f"{lang}-record"]
            ns, drops = r["cpu_ns_per_record"]["median"], max(r["drops"])
            rows.append((f"stream K=8, {guest} guest, CPU/record", "<= 2x native, no drops",
                         f"{ns / native_ns:.2f}x ({ns:.0f} ns), drops {drops}", ns <= 2 * native_ns and not drops))
    hot = results.get("hot_load")
    if hot:
        over = (hot["wasm-bpf"]["median"] - hot["native load+attach+close"]["median"]) * 1e3
        rows.append(("second instance in a process", "<= kernel load+attach + 5 ms", f"{over:+.1f} ms", over <= 5))
    cold = results["cold_start"]
    over = (cold["wasm-bpf"]["median"] - cold["native"]["median"]) * 1e3
    rows.append(("cold start (run start.wasm)", "<= native + 60 ms", f"{over:+.1f} ms (native {cold['native']['median'] * 1e3:.1f})",
                 over <= 60))
    idle = results["rss_mib"]["idle"]
    rows.append(("idle RSS (run bootstrap.wasm)", "<= 24 MiB", f"{idle:.1f} MiB", idle <= 24))
    return rows


def targets_table(rows: List[TargetRow]) -> str:
    lines = [("target (issue 19)", "bound", "measured", "")]
    lines += [(name, bound, measured, "PASS" if met else "MISS") for name, bound, measured, met in rows]
    widths = [max(len(row[i]) for row in lines) for i in range(4)]
    return "\n".join("  ".join(v.ljust(w) for v, w in zip(row, widths)).rstrip() for row in lines)


def has_targets(results: dict) -> bool:
    """Whether a run measured what the targets table needs (drain and the start figures)."""
    return all(figure in results for figure in ("drain", "cold_start", "rss_mib"))


def report(results: dict) -> str:
    """The figures, then the targets beside them (a run of some --figures: the figures only)."""
    if not has_targets(results):
        return table(results)
    return f"{table(results)}\n\n{targets_table(targets(results))}"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--short", action="store_true", help="exact-count check only (CI)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--stream-seconds", type=float, default=5.0)
    parser.add_argument("--output", type=Path, default=ROOT / "bench-results" / "results.json")
    parser.add_argument("--figures", default=",".join(FIGURES), metavar="LIST",
                        help=f"comma-separated figures to measure (default: all of {', '.join(FIGURES)}; "
                             "start: cold start, hot load, RSS, run REF, kernel-only decode); "
                             "the targets table needs all")
    parser.add_argument("--report", type=Path, metavar="RESULTS_JSON",
                        help="print the tables of a saved run (results.json) without measuring")
    args = parser.parse_args(argv)
    if args.report:
        print(report(json.loads(args.report.read_text())))
        return 0
    if os.geteuid() != 0:
        print("bench: needs root (BPF)", file=sys.stderr)
        return 1
    build()

    if args.short:
        # Fewer records than either ring holds, so that none may be dropped; run_drain
        # checks each round of its own.
        for consumer in CONSUMERS:
            run_drain(consumer, 20)
            check_exact(run_stream(consumer, "count", "20000"), 20000 * STREAM_RECORDS_PER_TRIGGER,
                        f"stream/{consumer}")
        print("bench --short: every record arrived, in order, for every consumer")
        return 0

    figures = set(args.figures.split(","))
    if figures - set(FIGURES):
        parser.error(f"--figures: unknown {', '.join(sorted(figures - set(FIGURES)))}")
    results: dict = {"machine": os.uname().release, "cpus": os.cpu_count(), "runs": args.runs,
                     "date": time.strftime("%Y-%m-%d %H:%M")}
    if "drain" in figures:
        results["drain"] = collect(args.runs, lambda c: run_drain(c, DRAIN_ROUNDS))
    if "stream" in figures:
        results["stream"] = collect(args.runs, lambda c: run_stream(c, "seconds", str(args.stream_seconds)))
    if "start" not in figures:
        args.output.parent.mkdir(parents=True, exist_ok=True)
        args.output.write_text(json.dumps(results, indent=2))
        print(report(results))
        print(f"\nwritten to {args.output}")
        return 0

    # one run first: its compilation fills the compiled-module cache, as any first run does
    whole_process_seconds([*WASM_BPF, "run", str(OUT / "start.wasm")])
    native_load = [whole_process_seconds([str(NATIVE), "load", str(OUT / "stream/bench.bpf.o")]) for _ in range(10)]
    wasm_start = [whole_process_seconds([*WASM_BPF, "run", str(OUT / "start.wasm")]) for _ in range(10)]
    results["cold_start"] = {"native": summary(native_load), "wasm-bpf": summary(wasm_start)}
    results["cold_start"]["wasm-bpf"]["vs_native"] = f"{statistics.median(wasm_start) / statistics.median(native_load):.2f}x"

    kernel = []
    for _ in range(10):
        out = subprocess.run([str(NATIVE), "load", str(OUT / "stream/bench.bpf.o")], check=True,
                             capture_output=True, text=True).stdout
        kernel.append(json.loads(out)["load_attach_close_seconds"])
    hot = hot_load_seconds(10)
    results["hot_load"] = {"native load+attach+close": summary(kernel), "wasm-bpf": summary(hot)}
    results["hot_load"]["wasm-bpf"]["vs_native"] = \
        f"+{(statistics.median(hot) - statistics.median(kernel)) * 1e3:.1f} ms"
    results["rss_mib"] = idle_rss_mib()
    results["run_ref"] = run_ref_seconds(20)
    sys.path.insert(0, str(HERE))
    import ko_decode
    results["ko_decode"] = ko_decode.measure(OUT / "drain" / "bench.bpf.o")

    if has_targets(results):  # `--figures start` alone: the start figures, no targets table
        results["targets"] = [{"target": name, "bound": bound, "measured": measured, "met": met}
                              for name, bound, measured, met in targets(results)]
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2))
    print(report(results))
    print(f"\nwritten to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
