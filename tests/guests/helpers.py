"""Helpers shared by tests/test_abi.py and tests/test_cli.py."""
import os
import threading
import time

# WASI errno values (wasi-libc's <errno.h>), as host_abi/ABI.md's table gives them.
EBADF, EBUSY, EEXIST, EFAULT, EILSEQ = 8, 10, 20, 21, 25
EINTR, EINVAL, ENAMETOOLONG, ENODEV, ENOENT = 27, 28, 37, 43, 44


def parse(stdout: bytes) -> dict:
    """The guests' key=value lines -> dict, values as int where they are numbers."""
    out = {}
    for line in stdout.decode(errors="replace").splitlines():
        key, sep, value = line.partition("=")
        if sep:
            try:
                out[key] = int(value)
            except ValueError:
                out[key] = value
    return out


class Trigger:
    """Calls getppid() every millisecond from a thread of this process: the test BPF
    program (abi.bpf.c) emits records for getppid() calls of the pid a guest arms it
    with, and the guests are given os.getpid()."""

    def __init__(self, period=0.001):
        self.period = period
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)

    def _loop(self):
        while not self._stop.is_set():
            os.getppid()
            time.sleep(self.period)

    def __enter__(self):
        self._thread.start()
        return self

    def __exit__(self, *exc):
        self._stop.set()
        self._thread.join()


def wait_until(pred, timeout=5.0, period=0.01):
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(period)
    return pred()


