"""The `wasm-bpf serve` churn soak: `make soak-serve` (SERVE_SOAK_SECONDS, default 600) or
`python3 bench/serve_soak.py --seconds S`.

A daemon and CLIENTS real HTTP clients in threads, each cycling for the whole time:
start an instance (sigsnoop.wasm, or bootstrap.wasm for odd clients), check it runs,
update it in place every third cycle, stop and delete it. Every second the daemon's
RSS, fds, threads and held BPF programs and links are sampled. Criteria:

  errors   every request answered as expected (201 running, 200)
  leaks    once the clients have ended: no instance left, no BPF program or link held
           by the daemon, none of the links seen during the run still in the kernel,
           no more fds or threads than at the end of the warm-up
  rss      growth = (RSS at the end - RSS at the end of the warm-up) / RSS at the end
           of the warm-up < 5 %; the warm-up is the first 10 % of the run, at least 10 s

Writes bench-results/serve_soak.json (samples included), prints a summary, exits 1
when a criterion fails. tests/test_serve_load.py runs a short form."""
import argparse
import json
import os
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, List, Optional, Set

import httpx

sys.path.insert(0, str(Path(__file__).resolve().parent))
from serve import MODULE, ROOT, ServeDaemon  # noqa: E402

sys.path.insert(0, str(ROOT))
from fuzz.common import held_bpf_fds, kernel_bpf_ids  # noqa: E402

BOOTSTRAP = ROOT / "wasm_examples" / "bootstrap" / "bootstrap.wasm"
CLIENTS = 8
MAX_RSS_GROWTH = 0.05
WARMUP_FRACTION, MIN_WARMUP = 0.10, 10.0


def daemon_fds(pid: int) -> int:
    """The process's fds but wasmtime's module memory images (memfds that live as long
    as a compiled module, which the daemon keeps a few of, and the collector frees)."""
    fds = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            fds += not os.readlink(f"/proc/{pid}/fd/{fd}").startswith("/memfd:wasm-memory-image")
        except OSError:  # closed meanwhile
            pass
    return fds


def census(pid: int) -> Dict[str, Any]:
    """What the daemon holds now: RSS, fds, threads, BPF programs and links."""
    with open(f"/proc/{pid}/status") as f:
        rss = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    held = held_bpf_fds(str(pid))
    return {"rss_kib": rss, "fds": daemon_fds(pid), "threads": len(os.listdir(f"/proc/{pid}/task")),
            "progs": sorted(i for kind, i in held if kind == "prog"),
            "links": sorted(i for kind, i in held if kind == "link")}


def churn(daemon: ServeDaemon, index: int, until: float, counts: Dict[str, int], errors: List[str]) -> None:
    module = str(MODULE if index % 2 == 0 else BOOTSTRAP)
    with httpx.Client(base_url=daemon.base_url, headers=daemon.headers, timeout=120) as c:
        cycle = 0
        while time.monotonic() < until and len(errors) < 20:
            r = c.post("/instances", json={"path": module, "wait": 30})
            if r.status_code != 201 or r.json()["state"] != "running":
                errors.append(f"start: {r.status_code} {r.text[:300]}")
                continue
            instance = r.json()["id"]
            if cycle % 3 == 2:
                u = c.put(f"/instances/{instance}", json={"path": module, "wait": 30})
                if u.status_code != 200 or u.json()["state"] != "running":
                    errors.append(f"update: {u.status_code} {u.text[:300]}")
                counts["updates"] += 1
            d = c.delete(f"/instances/{instance}")
            if d.status_code != 200:
                errors.append(f"delete: {d.status_code} {d.text[:300]}")
            counts["cycles"] += 1
            cycle += 1


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seconds", type=float, default=600.0)
    parser.add_argument("--output", type=Path, default=ROOT / "bench-results" / "serve_soak.json")
    args = parser.parse_args(argv)
    if os.geteuid() != 0 or not MODULE.exists() or not BOOTSTRAP.exists():
        print("bench/serve_soak.py: needs root and the examples built (make examples)", file=sys.stderr)
        return 1
    warmup = max(MIN_WARMUP, args.seconds * WARMUP_FRACTION)
    counts = {"cycles": 0, "updates": 0}
    errors: List[str] = []
    samples: List[Dict[str, Any]] = []
    links_seen: Set[int] = set()
    report: Dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "seconds": args.seconds,
                              "clients": CLIENTS, "loadavg_before": os.getloadavg()}
    with tempfile.TemporaryDirectory() as tmp:
        daemon = ServeDaemon(Path(tmp), "--allow-dir", str(ROOT / "wasm_examples"))
        pid = daemon.proc.pid
        try:
            t0 = time.monotonic()
            until = t0 + args.seconds
            clients = [threading.Thread(target=churn, args=(daemon, i, until, counts, errors))
                       for i in range(CLIENTS)]
            for t in clients:
                t.start()
            after_warmup: Optional[Dict[str, Any]] = None
            while any(t.is_alive() for t in clients):
                now = census(pid)
                links_seen.update(now["links"])
                samples.append({"t": round(time.monotonic() - t0, 1), "rss_kib": now["rss_kib"], "fds": now["fds"],
                                "threads": now["threads"], "links": len(now["links"])})
                if after_warmup is None and time.monotonic() - t0 >= warmup:
                    after_warmup = now
                time.sleep(1)
            for t in clients:
                t.join()
            time.sleep(1)  # the last stop's collection and heap trim
            end = census(pid)
            left = daemon.client.get("/instances").json()
        finally:
            status = daemon.close()
    assert after_warmup is not None, f"--seconds {args.seconds} is shorter than the warm-up ({warmup:g} s)"
    growth = (end["rss_kib"] - after_warmup["rss_kib"]) / after_warmup["rss_kib"]
    leaked = {
        "instances": len(left),
        "progs_held": len(end["progs"]),
        "links_held": len(end["links"]),
        "links_in_kernel": len(links_seen & {i for kind, i in kernel_bpf_ids() if kind == "link"}),
        "fds": max(0, end["fds"] - after_warmup["fds"]),
        "threads": max(0, end["threads"] - after_warmup["threads"]),
    }
    report.update({
        **counts, "errors": errors, "daemon_exit": status, "links_seen": len(links_seen), "leaked": leaked,
        "rss_kib": {"after_warmup": after_warmup["rss_kib"], "end": end["rss_kib"],
                    "max": max(s["rss_kib"] for s in samples), "growth": round(growth, 4)},
        "loadavg_after": os.getloadavg(), "samples": samples,
    })
    ok = not errors and not any(leaked.values()) and growth < MAX_RSS_GROWTH and counts["cycles"] > 0
    report["ok"] = ok
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(report, indent=1))
    print(f"{report['date']}: {args.seconds:g} s, {CLIENTS} clients, load average "
          f"{report['loadavg_before'][0]:.2f} before, {report['loadavg_after'][0]:.2f} after")
    print(f"cycles {counts['cycles']} (updates {counts['updates']}), errors {len(errors)}, "
          f"links attached and released {len(links_seen)}")
    print(f"leaked {leaked}")
    print(f"RSS {after_warmup['rss_kib']} KiB after the warm-up, {end['rss_kib']} KiB at the end "
          f"({growth:+.2%}), at most {report['rss_kib']['max']} KiB")
    for error in errors[:5]:
        print(f"error: {error}")
    print(("PASS" if ok else "FAIL") + f"; written to {args.output}")
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
