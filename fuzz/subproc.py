"""The fuzzer's side of fuzz/worker.py: send an input, wait for its reply with a
deadline, and tell a crash (the worker died: SIGSEGV, SIGABRT...) and a hang (no
reply in time) from an answer. A dead or hung worker is replaced by a new one."""
import json
import os
import re
import select
import signal
import struct
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any, Callable, Dict, Optional, Tuple

from .common import ROOT, Finding, Stats, kernel_bpf_ids, leaked_since, run_for, save_input


class WorkerDied(Exception):
    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind, self.detail = kind, detail


class Worker:
    def __init__(self, mode: str) -> None:
        self.mode = mode
        self.proc: Optional[subprocess.Popen] = None
        self.cache_dir = tempfile.mkdtemp(prefix="wasm-bpf-fuzz-cache-")  # wasmtime's cache of fuzzed modules
        self.started = 0

    def _start(self) -> None:
        req_r, req_w = os.pipe()
        rep_r, rep_w = os.pipe()
        self.stderr = tempfile.TemporaryFile()
        env = dict(os.environ, PYTHONPATH=f"{ROOT}{os.pathsep}{os.environ.get('PYTHONPATH', '')}",
                   XDG_CACHE_HOME=self.cache_dir)
        self.proc = subprocess.Popen([sys.executable, "-m", "fuzz.worker", self.mode, str(req_r), str(rep_w)],
                                     cwd=ROOT, env=env, stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL,
                                     stderr=self.stderr, pass_fds=(req_r, rep_w))
        os.close(req_r)
        os.close(rep_w)
        self.requests = os.fdopen(req_w, "wb")
        self.replies = rep_r
        self.pending = b""
        self.started += 1

    def run(self, data: bytes, timeout: float) -> Dict[str, Any]:
        """The worker's reply for one input; raises WorkerDied for a crash or a hang."""
        if self.proc is None:
            self._start()
        assert self.proc is not None
        try:
            self.requests.write(struct.pack("<I", len(data)) + data)
            self.requests.flush()
        except BrokenPipeError:
            pass  # it died: found below
        deadline = time.monotonic() + timeout
        while b"\n" not in self.pending:
            left = deadline - time.monotonic()
            if left <= 0:
                self.stop()
                raise WorkerDied("hang", f"no answer in {timeout:.0f} s")
            ready, _, _ = select.select([self.replies], [], [], left)
            if ready:
                chunk = os.read(self.replies, 65536)
                if not chunk:
                    raise WorkerDied("crash", self._death())
                self.pending += chunk
        line, _, self.pending = self.pending.partition(b"\n")
        return json.loads(line)

    def _death(self) -> str:
        assert self.proc is not None
        code = self.proc.wait()
        self.stderr.seek(0)
        tail = self.stderr.read()[-1500:].decode(errors="replace")
        self._cleanup()
        how = f"killed by {signal.Signals(-code).name}" if code < 0 else f"exited with {code}"
        return f"worker {how}; its stderr ended with: {tail.strip()[-800:]}"

    def stop(self) -> None:
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait()
            self._cleanup()

    def _cleanup(self) -> None:
        self.requests.close()
        os.close(self.replies)
        self.stderr.close()
        self.proc = None

    def close(self) -> None:
        if self.proc is not None:
            self.requests.close()  # EOF: the worker returns
            try:
                self.proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
            os.close(self.replies)
            self.stderr.close()
            self.proc = None
        subprocess.run(["rm", "-rf", self.cache_dir])


def normalize(message: str) -> str:
    """An error message with its numbers and names of things taken out, so messages
    that differ only in an offset or a size count as one distinct error."""
    message = re.sub(r"0x[0-9a-fA-F]+|\d+", "N", message)
    message = re.sub(r"'[^']*'", "'…'", message)
    return message[:200]


def fuzz_in_worker(stats: Stats, mode: str, strategy: Any, seconds: float, crash_dir: Path, suffix: str,
                   timeout: float, classify: Callable[[Dict[str, Any]], Tuple[Optional[str], str]]) -> Stats:
    """Runs inputs (seed name, bytes, description) drawn from `strategy` in a worker.
    classify(reply) -> (finding kind or None, outcome). A crash is re-run alone in a
    fresh worker to tell whether that input reproduces it."""
    worker = Worker(mode)
    before = kernel_bpf_ids()

    def one(value: Tuple[str, bytes, str]) -> None:
        seed, data, how = value
        try:
            reply = worker.run(data, timeout)
        except WorkerDied as died:
            again = Worker(mode)
            try:
                again.run(data, timeout)
                reproduced = "not reproduced alone"
            except WorkerDied:
                reproduced = "reproduced alone"
            finally:
                again.close()
            path = save_input(crash_dir, stats, data, suffix)
            stats.findings.append(Finding(died.kind, f"{seed}: {how}: {died.detail} ({reproduced})", path))
            stats.outcome(f"{died.kind}")
            return
        kind, outcome = classify(reply)
        if reply.get("leaked"):
            kind, outcome = "leak", f"BPF fds held after the run: {reply['leaked']}"
        if kind is not None:
            path = save_input(crash_dir, stats, data, suffix)
            stats.findings.append(Finding(kind, f"{seed}: {how}: {outcome}"[:3000], path))
        stats.outcome(outcome)

    try:
        run_for(seconds, strategy, one, stats)
    finally:
        worker.close()
    left = leaked_since(before)
    if left:
        stats.findings.append(Finding("leak", f"BPF programs/links left in the kernel after the run: {sorted(left)}"))
    return stats
