"""Hot plug with `wasm-bpf serve` (docs/service.md): `python3 bench/serve.py [--runs N]`.

A daemon on 127.0.0.1 and a real HTTP client; sigsnoop.wasm as the module.
  start   POST /instances until the answer (which comes once the programs are attached), then DELETE
  update  PUT /instances/ID of a running instance: the new version attached (from then on both
          deliver events), then the old one stopped (its guest leaves its current poll first)
  rss     the daemon's RSS idle with no instance, and with 10 running
Median and p99 in ms over --runs; bench-results/serve.json and a table on stdout."""
import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import List, Optional

import httpx

ROOT = Path(__file__).resolve().parent.parent
MODULE = ROOT / "wasm_examples" / "sigsnoop" / "sigsnoop.wasm"
WARM_UP = 3


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return kib / 1024


def stats_ms(seconds: List[float]) -> dict:
    ms = sorted(s * 1000 for s in seconds)
    return {"median": round(statistics.median(ms), 2), "p99": round(ms[min(len(ms) - 1, int(len(ms) * 0.99))], 2),
            "max": round(ms[-1], 2), "n": len(ms)}


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--output", type=Path, default=ROOT / "bench-results" / "serve.json")
    args = parser.parse_args(argv)
    if os.geteuid() != 0 or not MODULE.exists():
        print("bench/serve.py: needs root and the examples built (make examples)", file=sys.stderr)
        return 1
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    with tempfile.TemporaryDirectory() as tmp:
        token_file = Path(tmp) / "token"
        daemon = subprocess.Popen([sys.executable, "-m", "wasm_bpf", "serve", "--port", str(port),
                                   "--token-file", str(token_file), "--allow-dir", str(MODULE.parent)])
        try:
            deadline = time.monotonic() + 20
            while not token_file.exists() or not _healthy(port):
                if time.monotonic() > deadline or daemon.poll() is not None:
                    raise SystemExit("bench/serve.py: the daemon did not start")
                time.sleep(0.1)
            client = httpx.Client(base_url=f"http://127.0.0.1:{port}", timeout=30,
                                  headers={"Authorization": f"Bearer {token_file.read_text().strip()}"})
            body = {"path": str(MODULE)}
            time.sleep(2)
            results: dict = {"module": MODULE.name, "rss_mib": {"idle, no instance": round(rss_mib(daemon.pid), 1)}}

            starts, attach = [], []
            for i in range(WARM_UP + args.runs):
                t0 = time.perf_counter()
                r = client.post("/instances", json=body)
                elapsed = time.perf_counter() - t0
                r.raise_for_status()
                assert r.json()["state"] == "running", r.json()
                if i >= WARM_UP:
                    starts.append(elapsed)
                    attach.append(r.json()["attach_ms"] / 1000)
                client.delete(f"/instances/{r.json()['id']}").raise_for_status()
            results["start"] = {"request to attached (client)": stats_ms(starts),
                                "load to attached (daemon)": stats_ms(attach)}

            instance = client.post("/instances", json=body).json()["id"]
            updates, new_attached = [], []
            for i in range(WARM_UP + args.runs):
                t0 = time.perf_counter()
                r = client.put(f"/instances/{instance}", json=body)
                elapsed = time.perf_counter() - t0
                r.raise_for_status()
                if i >= WARM_UP:
                    updates.append(elapsed)
                    new_attached.append(r.json()["attach_ms"] / 1000)
            results["update"] = {"load to new attached (daemon)": stats_ms(new_attached),
                                 "request to old stopped (client)": stats_ms(updates)}

            for _ in range(9):
                client.post("/instances", json=body).raise_for_status()
            time.sleep(2)
            results["rss_mib"]["idle, 10 instances"] = round(rss_mib(daemon.pid), 1)
        finally:
            daemon.send_signal(signal.SIGTERM)
            daemon.wait(30)
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2))
    for figure, rows in results.items():
        if isinstance(rows, dict):
            for name, value in rows.items():
                print(f"{figure:8} {name:40} {value}")
    print(f"\nwritten to {args.output}")
    return 0


def _healthy(port: int) -> bool:
    try:
        return httpx.get(f"http://127.0.0.1:{port}/healthz").status_code == 200
    except httpx.TransportError:
        return False


if __name__ == "__main__":
    sys.exit(main())
