"""Helpers for tests/test_examples.py: run an example tool through the
`wasm-bpf run` CLI, follow its output line by line, and stop it like a user
would (Ctrl-C)."""
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
EXAMPLES_DIR = ROOT / "wasm_examples"
EXAMPLES = ("bootstrap", "sigsnoop", "execve", "opensnoop", "runqlat", "rust_bootstrap", "rust_runqlat")

# Generous: the VM is shared and a cold start (Python + wasmtime compile +
# BPF verification) can take seconds.
START_TIMEOUT = 60
EVENT_TIMEOUT = 20
STOP_TIMEOUT = 15


def wasm_bpf_command() -> list:
    exe = shutil.which("wasm-bpf")
    if exe:
        return [exe]
    return [sys.executable, "-m", "wasm_bpf.cli"]


def ensure_tracefs() -> None:
    """Tracepoint attach needs tracefs (libbpf reads the event ids there)."""
    if not os.path.isdir("/sys/kernel/tracing/events") and not os.path.isdir(
        "/sys/kernel/debug/tracing/events"
    ):
        subprocess.run(["mount", "-t", "tracefs", "nodev", "/sys/kernel/tracing"], check=False)


def build_examples(names: tuple = EXAMPLES) -> dict:
    """`make -C wasm_examples/X` for every example named; returns name -> .wasm path."""
    built = {}
    for name in names:
        res = subprocess.run(
            ["make", "-C", str(EXAMPLES_DIR / name)],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
            timeout=600,
        )
        if res.returncode != 0:
            raise RuntimeError(f"building example {name} failed:\n{res.stdout}")
        wasm = EXAMPLES_DIR / name / f"{name}.wasm"
        if not wasm.is_file():
            raise RuntimeError(f"make -C wasm_examples/{name} did not produce {wasm}")
        built[name] = wasm
    return built


class Tool:
    """One `wasm-bpf run X.wasm -- args` process with its output collected by
    reader threads, so that the test can wait for lines without blocking."""

    def __init__(self, wasm: Path, *args: str, run_opts: tuple = ()):
        self.argv = [*wasm_bpf_command(), "run", *run_opts, str(wasm), "--", *args]
        self.proc = subprocess.Popen(
            self.argv,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
            errors="replace",
            bufsize=1,
        )
        self.pid = self.proc.pid
        self.lines: list = []
        self.err_lines: list = []
        self._cond = threading.Condition()
        self._eof = 0
        self._threads = [
            threading.Thread(target=self._read, args=(self.proc.stdout, self.lines), daemon=True),
            threading.Thread(target=self._read, args=(self.proc.stderr, self.err_lines), daemon=True),
        ]
        for t in self._threads:
            t.start()

    def _read(self, stream, sink) -> None:
        for line in stream:
            with self._cond:
                sink.append(line.rstrip("\n"))
                self._cond.notify_all()
        with self._cond:
            self._eof += 1
            self._cond.notify_all()

    # -- output ---------------------------------------------------------
    @property
    def stdout(self) -> str:
        with self._cond:
            return "\n".join(self.lines)

    @property
    def stderr(self) -> str:
        with self._cond:
            return "\n".join(self.err_lines)

    def describe(self) -> str:
        return (
            f"command: {' '.join(self.argv)}\nexit status: {self.proc.poll()}\n"
            f"--- stdout ---\n{self.stdout}\n--- stderr ---\n{self.stderr}"
        )

    def wait_for(self, match, timeout: float = EVENT_TIMEOUT, what: str = "") -> object:
        """Wait until a stdout line satisfies `match` (a regex string, or a
        callable returning a truthy value). Returns the regex match or the
        callable's result. Fails early if the tool exits."""
        if isinstance(match, str):
            rx = re.compile(match)
            test = rx.search
            what = what or f"a line matching {match!r}"
        else:
            test = match
            what = what or "the expected line"
        deadline = time.monotonic() + timeout
        seen = 0
        with self._cond:
            while True:
                while seen < len(self.lines):
                    res = test(self.lines[seen])
                    seen += 1
                    if res:
                        return res
                if self._eof == 2:
                    break
                left = deadline - time.monotonic()
                if left <= 0:
                    break
                self._cond.wait(min(left, 0.5))
        raise AssertionError(f"timed out waiting for {what}\n{self.describe()}")

    def wait_ready(self, header_regex: str) -> None:
        """The examples print their header after the BPF programs are attached."""
        self.wait_for(header_regex, timeout=START_TIMEOUT, what="the header line (tool attached)")

    # -- lifecycle --------------------------------------------------------
    def wait_exit(self, timeout: float = STOP_TIMEOUT) -> int:
        try:
            rc = self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            raise AssertionError(f"did not exit within {timeout}s\n{self.describe()}")
        for t in self._threads:
            t.join(5)
        return rc

    def interrupt(self, timeout: float = STOP_TIMEOUT) -> int:
        """Ctrl-C: SIGINT, then the exit status (must come within `timeout`)."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
        return self.wait_exit(timeout)

    def terminate(self, timeout: float = STOP_TIMEOUT) -> int:
        """SIGTERM (e.g. from a service manager), then the exit status."""
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.wait_exit(timeout)

    def kill(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(10)

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        # Whatever happened, do not leave the tool (and its BPF links) behind.
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGINT)
            try:
                self.proc.wait(STOP_TIMEOUT)
            except subprocess.TimeoutExpired:
                self.kill()
        for stream in (self.proc.stdout, self.proc.stderr):
            try:
                stream.close()
            except Exception:
                pass
        return False


def this_comm() -> str:
    """The kernel's command name of the test process."""
    return Path("/proc/self/comm").read_text().strip()


def unused_pid() -> int:
    """A pid no process can have: at or above pid_max."""
    return int(Path("/proc/sys/kernel/pid_max").read_text())


def unique_name(prefix: str) -> str:
    """A short unique name (fits the 15-character kernel comm)."""
    return f"{prefix}{os.getpid() % 1000:03d}{os.urandom(3).hex()}"[:15]
