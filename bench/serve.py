"""Hot plug with `wasm-bpf serve` (docs/service.md): `python3 bench/serve.py [--runs N]`.

A daemon on 127.0.0.1 and a real HTTP client; sigsnoop.wasm as the module. A sender
thread calls kill(FAKE_PID + i, SIGUSR1) every 2 ms all along (no such process: the
call fails, and sigsnoop reports it), so "first event" is the first of those records
an instance writes to its log, timed by the log line's own timestamp.
  start   POST /instances -> the instance's first event (and, separately, the answer,
          which comes once the programs are attached); then DELETE
  update  PUT /instances/ID of a running instance -> the first event of the new version
          (the versions alternate `-n` and no flag, so the signal is printed as
          "SIGUSR1" or "10": the line says which version wrote it); the answer comes
          once the old version has stopped
  rss     the daemon's RSS idle with no instance, and with 10 running
Median and p99 in ms over --runs, with the date and the machine's load; written to
bench-results/serve.json and as a table on stdout."""
import argparse
import json
import os
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional

import httpx

ROOT = Path(__file__).resolve().parent.parent
MODULE = ROOT / "wasm_examples" / "sigsnoop" / "sigsnoop.wasm"
WARM_UP = 3
FAKE_PID = 3_000_000  # over pid_max (32768 here; at most 4194304): kill() fails with ESRCH
SEND_EVERY = 0.002  # s
FIRST_EVENT_WAIT = 5.0  # s
LOG_END = 1 << 62  # a cursor past the end: the answer's `next` is where the log ends now


def rss_mib(pid: int) -> float:
    with open(f"/proc/{pid}/status") as f:
        kib = next(int(line.split()[1]) for line in f if line.startswith("VmRSS:"))
    return kib / 1024


def stats_ms(seconds: List[float]) -> Dict[str, Any]:
    """Median, p99 (the 99th of 100 sorted: with 100 runs, the second-worst), max."""
    ms = sorted(s * 1000 for s in seconds)
    return {"median": round(statistics.median(ms), 2), "p99": round(ms[max(0, -(-len(ms) * 99 // 100) - 1)], 2),
            "max": round(ms[-1], 2), "n": len(ms)}


class ServeDaemon:
    """`wasm-bpf serve` on a free loopback port with a fresh token and its own state
    directory (nothing persisted into /var/lib/wasm-bpf), and a client."""

    def __init__(self, tmp: Path, *extra: str) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.token_file = tmp / "token"
        self.proc = subprocess.Popen([sys.executable, "-m", "wasm_bpf", "serve", "--port", str(self.port),
                                      "--token-file", str(self.token_file),
                                      "--state-dir", str(tmp / "state"), *extra])
        deadline = time.monotonic() + 20
        while not self.token_file.exists() or not self._healthy():
            if time.monotonic() > deadline or self.proc.poll() is not None:
                self.close()
                raise SystemExit("the daemon did not start")
            time.sleep(0.1)
        self.base_url = f"http://127.0.0.1:{self.port}"
        self.headers = {"Authorization": f"Bearer {self.token_file.read_text().strip()}"}
        self.client = httpx.Client(base_url=self.base_url, timeout=60, headers=self.headers)

    def _healthy(self) -> bool:
        try:
            return httpx.get(f"http://127.0.0.1:{self.port}/healthz").status_code == 200
        except httpx.TransportError:
            return False

    def close(self) -> int:
        """SIGTERM; the daemon's exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(60)
        return self.proc.returncode


class Sender:
    """kill(FAKE_PID + i, SIGUSR1) every SEND_EVERY s in a thread, while in its block."""

    def __init__(self) -> None:
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._send, daemon=True)

    def _send(self) -> None:
        i = 0
        while not self._stop.wait(SEND_EVERY):
            try:
                os.kill(FAKE_PID + i % 1_000_000, signal.SIGUSR1)
            except ProcessLookupError:
                pass
            i += 1

    def __enter__(self) -> "Sender":
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join()


def fake_events(lines: List[Dict[str, Any]]) -> Iterator[Dict[str, Any]]:
    """The log lines of the sender's kills (sigsnoop: TIME PID COMM SIG TPID RESULT)."""
    for line in lines:
        fields = line["text"].split()
        if line["stream"] == "stdout" and len(fields) >= 6 and fields[-2].isdigit() \
                and int(fields[-2]) >= FAKE_PID:
            yield line


def first_event(client: httpx.Client, instance: str, cursor: int, since: float, sig: str = "") -> float:
    """Seconds from `since` (time.time()) to the first sender's record in the log from
    `cursor` on (printed with signal `sig`, when given)."""
    deadline = time.monotonic() + FIRST_EVENT_WAIT
    while time.monotonic() < deadline:
        r = client.get(f"/instances/{instance}/logs", params={"cursor": cursor})
        r.raise_for_status()
        answer = r.json()
        for line in fake_events(answer["lines"]):
            if not sig or line["text"].split()[-3] == sig:
                return line["time"] - since
        cursor = answer["next"]
        time.sleep(0.005)
    raise SystemExit(f"bench/serve.py: no event of instance {instance} within {FIRST_EVENT_WAIT} s")


def main(argv: Optional[List[str]] = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=100)
    parser.add_argument("--output", type=Path, default=ROOT / "bench-results" / "serve.json")
    args = parser.parse_args(argv)
    if os.geteuid() != 0 or not MODULE.exists():
        print("bench/serve.py: needs root and the examples built (make examples)", file=sys.stderr)
        return 1
    results: Dict[str, Any] = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "cpus": os.cpu_count(),
                               "loadavg_before": os.getloadavg(), "module": MODULE.name}
    with tempfile.TemporaryDirectory() as tmp, Sender():
        daemon = ServeDaemon(Path(tmp), "--allow-dir", str(MODULE.parent))
        try:
            client = daemon.client
            time.sleep(2)
            results["rss_mib"] = {"idle, no instance": round(rss_mib(daemon.proc.pid), 1)}

            answers, events, attach = [], [], []
            for i in range(WARM_UP + args.runs):
                t0, w0 = time.perf_counter(), time.time()
                r = client.post("/instances", json={"path": str(MODULE)})
                elapsed = time.perf_counter() - t0
                r.raise_for_status()
                started = r.json()
                assert started["state"] == "running", started
                to_event = first_event(client, started["id"], 0, w0)
                if i >= WARM_UP:
                    answers.append(elapsed)
                    events.append(to_event)
                    attach.append(started["attach_ms"] / 1000)
                client.delete(f"/instances/{started['id']}").raise_for_status()
            results["start"] = {"request to first event": stats_ms(events),
                                "request to answer (attached)": stats_ms(answers),
                                "load to attached (daemon)": stats_ms(attach)}

            instance = client.post("/instances", json={"path": str(MODULE)}).json()["id"]
            updates, new_events, new_attached = [], [], []
            for i in range(WARM_UP + args.runs):
                flags, sig = (["-n"], "SIGUSR1") if i % 2 == 0 else ([], str(int(signal.SIGUSR1)))
                cursor = client.get(f"/instances/{instance}/logs", params={"cursor": LOG_END}).json()["next"]
                t0, w0 = time.perf_counter(), time.time()
                r = client.put(f"/instances/{instance}", json={"path": str(MODULE), "args": flags})
                elapsed = time.perf_counter() - t0
                r.raise_for_status()
                to_event = first_event(client, instance, cursor, w0, sig)
                if i >= WARM_UP:
                    updates.append(elapsed)
                    new_events.append(to_event)
                    new_attached.append(r.json()["attach_ms"] / 1000)
            results["update"] = {"request to new version's first event": stats_ms(new_events),
                                 "load to new attached (daemon)": stats_ms(new_attached),
                                 "request to answer (old stopped)": stats_ms(updates)}

            for _ in range(9):
                client.post("/instances", json={"path": str(MODULE)}).raise_for_status()
            time.sleep(2)
            results["rss_mib"]["idle, 10 instances"] = round(rss_mib(daemon.proc.pid), 1)
        finally:
            daemon.close()
    results["loadavg_after"] = os.getloadavg()
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2))
    print(f"{results['date']}, {results['cpus']} CPUs, load average {results['loadavg_before'][0]:.2f} "
          f"before, {results['loadavg_after'][0]:.2f} after")
    for figure in ("start", "update", "rss_mib"):
        for name, value in results[figure].items():
            print(f"{figure:8} {name:40} {value}")
    print(f"\nwritten to {args.output}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
