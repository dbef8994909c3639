"""The soak: `make soak` (SOAK_SECONDS, default 600) or `python3 bench/soak.py --seconds S`.

The benchmark's producer runs flat out for the whole time into two wasm-bpf hosts
(`wasm-bpf run` processes of bench/wasm_consumer.c): a 16 MiB ring buffer drained in
batches, and a perf event array drained one record per guest call, each with its
own driver process. Every second the hosts' RSS is sampled. When the drivers have
ended, each host ends by itself once every record its program emitted has arrived.
Criteria, per buffer:

  accounting  driver calls x records per call == delivered + lost, exactly, where
              delivered is what the guest counted and lost what the BPF program
              could not write (ring full / perf buffer full); for the ring also
              delivered == emitted and every record in order
  exit        the host exits 0, with no poll error
  rss         growth = (highest RSS after the warm-up - RSS at the end of the
              warm-up) / RSS at the end of the warm-up < 5 %; the warm-up is the
              first 10 % of the run, at least 5 s, counted from the moment the
              hosts have attached (the allocations of their first polls)

Writes bench-results/soak.json (samples included), prints a summary, exits 1 when
a criterion fails. tests/test_soak.py runs a short form."""
import argparse
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Dict, List, Optional

sys.path.insert(0, str(Path(__file__).resolve().parent))
from run import DRIVER, OUT, ROOT, STREAM_RECORDS_PER_TRIGGER, WASM_BPF, build  # noqa: E402

MAX_RSS_GROWTH = 0.05
WARMUP_FRACTION, MIN_WARMUP = 0.10, 5.0
# (buffer, consumer module, delivery mode); both objects emit 8 records per call.
BUFFERS = (("ring", "consumer_stream.wasm", "batch"), ("perf", "consumer_perf.wasm", "record"))


def rss_kib(pid: int) -> Optional[int]:
    """The process's resident set, or None once it has exited."""
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except FileNotFoundError:
        pass
    return None


class Host:
    """One `wasm-bpf run` consumer, waited for until it has attached. It ends by itself
    once `done` exists in `shared` (the soak's drivers have ended) and every record
    its program emitted has arrived."""

    def __init__(self, buffer: str, module: str, mode: str, comm: str, shared: Path) -> None:
        self.buffer, self.comm = buffer, comm
        self.proc = subprocess.Popen([*WASM_BPF, "run", "--dir", f"{shared}::/soak", str(OUT / module), "--",
                                      "stream", mode, comm, "/soak/done"], stdout=subprocess.PIPE, text=True)
        line = self.proc.stdout.readline()
        if line.strip() != "ready":
            self.proc.kill()
            raise RuntimeError(f"the {buffer} host did not start: {line!r}")
        self.samples: List[List[float]] = []  # [seconds since start, RSS KiB]

    def result(self, timeout: float = 60) -> dict:
        """Its result; one still running after `timeout` is stopped (its records are
        then missing from the accounting)."""
        try:
            out, _ = self.proc.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.proc.send_signal(signal.SIGINT)
            out, _ = self.proc.communicate(timeout=30)
        lines = [line for line in out.splitlines() if line.startswith("{")]
        res = json.loads(lines[-1]) if lines else {}
        res["exit_code"] = self.proc.returncode
        return res


def rss_growth(samples: List[List[float]], warmup: float) -> dict:
    """RSS figures; growth is None (a failure) without two samples after the warm-up."""
    after = [kib for t, kib in samples if t >= warmup] or [0]
    baseline, peak = after[0], max(after)
    return {"start_kib": samples[0][1] if samples else 0, "baseline_kib": baseline, "end_kib": after[-1],
            "max_kib": peak, "growth": (peak - baseline) / baseline if len(after) > 1 else None}


def judge(buffer: str, res: dict, calls: int, rss: dict) -> Dict[str, bool]:
    produced = calls * STREAM_RECORDS_PER_TRIGGER
    criteria = {
        "accounting": "records" in res and res["records"] + res["drops"] == produced,
        "exit": res.get("exit_code") == 0 and res.get("error") == 0,
        "rss": rss["growth"] is not None and rss["growth"] < MAX_RSS_GROWTH,
    }
    if buffer == "ring":  # one ring, so order is kept; perf buffers are per CPU
        criteria["accounting"] &= res.get("records") == res.get("emitted") and res.get("out_of_order") == 0
    return criteria


def soak(seconds: float) -> dict:
    warmup = max(MIN_WARMUP, WARMUP_FRACTION * seconds)
    tag = f"{os.getpid() & 0xFFFFFF:06x}"  # own driver names: other runs' drivers do not count here
    hosts: List[Host] = []
    shared = Path(tempfile.mkdtemp(prefix="wasm-bpf-soak-"))
    try:
        for buffer, module, mode in BUFFERS:
            hosts.append(Host(buffer, module, mode, f"wbpfsoak{buffer[0]}{tag}", shared))
        start = time.monotonic()
        drivers = [subprocess.Popen([str(DRIVER), "seconds", str(seconds), h.comm], stdout=subprocess.PIPE,
                                    text=True) for h in hosts]
        next_sample = start
        while any(d.poll() is None for d in drivers):
            for h in hosts:
                kib = rss_kib(h.proc.pid)
                if kib is not None:  # a host that died fails its exit criterion
                    h.samples.append([round(time.monotonic() - start, 3), kib])
            next_sample += 1.0
            time.sleep(max(0.0, next_sample - time.monotonic()))
        calls = [json.loads(d.communicate()[0])["calls"] for d in drivers]
        (shared / "done").touch()
        results = [h.result() for h in hosts]
    finally:
        for h in hosts:
            if h.proc.poll() is None:
                h.proc.kill()
                h.proc.wait()
        shutil.rmtree(shared)

    report: dict = {"machine": os.uname().release, "cpus": os.cpu_count(), "seconds": seconds,
                    "warmup_seconds": warmup, "max_rss_growth": MAX_RSS_GROWTH, "buffers": {}}
    for h, res, n in zip(hosts, results, calls):
        rss = rss_growth(h.samples, warmup)
        produced = n * STREAM_RECORDS_PER_TRIGGER
        report["buffers"][h.buffer] = {
            "driver_calls": n, "produced": produced, "delivered": res.get("records", 0), "lost": res.get("drops", 0),
            "emitted": res.get("emitted"), "out_of_order": res.get("out_of_order"),
            "exit_code": res.get("exit_code"), "error": res.get("error"),
            "delivered_per_second": res.get("records", 0) / seconds,
            "rss": rss, "criteria": judge(h.buffer, res, n, rss), "rss_samples": h.samples,
        }
    report["passed"] = all(all(b["criteria"].values()) for b in report["buffers"].values())
    return report


def summary(report: dict) -> str:
    lines = [f"soak: {report['seconds']:.0f} s, warm-up {report['warmup_seconds']:.0f} s, "
             f"{report['machine']}, {report['cpus']} CPUs"]
    for name, b in report["buffers"].items():
        rss = b["rss"]
        failed = [c for c, ok in b["criteria"].items() if not ok]
        lines.append(
            f"  {name}: produced {b['produced']:,} = delivered {b['delivered']:,} + lost {b['lost']:,} "
            f"({b['delivered_per_second'] / 1e6:.2f} M delivered/s); RSS start {rss['start_kib'] / 1024:.1f} MiB, "
            f"after warm-up {rss['baseline_kib'] / 1024:.1f}, max {rss['max_kib'] / 1024:.1f}, "
            f"end {rss['end_kib'] / 1024:.1f} (growth {_percent(rss['growth'])}) -> "
            + ("ok" if not failed else "FAILED: " + ", ".join(failed)))
    lines.append("soak: " + ("passed" if report["passed"] else "FAILED"))
    return "\n".join(lines)


def _percent(growth: Optional[float]) -> str:
    return "not measured" if growth is None else f"{growth * 100:+.2f} %"


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("SOAK_SECONDS", 600)))
    parser.add_argument("--output", type=Path, default=ROOT / "bench-results" / "soak.json")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("soak: needs root (BPF)", file=sys.stderr)
        return 1
    build()
    report = soak(args.seconds)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1))
    print(summary(report))
    print(f"written to {args.output}")
    return 0 if report["passed"] else 1


if __name__ == "__main__":
    sys.exit(main())
