"""Helpers shared by the tests that run purpose-built guests (tests/guests/)."""
import os
import subprocess
import sys
import threading
import time

import wasm_bpf

# WASI errno values (wasi-libc's <errno.h>), as host_abi/ABI.md's table gives them.
EACCES, EBADF, EBUSY, EEXIST, EFAULT, EILSEQ = 2, 8, 10, 20, 21, 25
EINTR, EINVAL, ENAMETOOLONG, ENODEV, ENOENT, EPERM = 27, 28, 37, 43, 44, 63
LIBC_DIR = "/lib/x86_64-linux-gnu"  # where this Debian system keeps libc.so.6


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


def granted(*dirs):
    """A RunConfig granting host directories (--dir DIR), as cgroup and uprobe targets need."""
    return wasm_bpf.RunConfig(dirs=[(str(d), str(d)) for d in dirs])


class GuestThread:
    """A guest (wasm_bpf.Instance, output captured) running in a thread until stop();
    waits until the guest has printed `ready_key`=... (it has attached). Keyword
    arguments go to the Instance (config, report)."""

    def __init__(self, wasm, args, ready_key, **instance_options):
        self.inst = wasm_bpf.Instance(str(wasm), [str(a) for a in args], capture_output=True,
                                      **instance_options)
        self.status = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        deadline = time.monotonic() + 20
        while ready_key not in self.out and self.thread.is_alive():
            assert time.monotonic() < deadline, "the guest did not attach in time"
            time.sleep(0.02)

    def _run(self):
        self.status = self.inst.run()

    @property
    def out(self):
        return parse(self.inst.stdout)

    def wait(self, timeout=15):
        """Waits for the run to end on its own and returns its exit status."""
        self.thread.join(timeout)
        assert not self.thread.is_alive(), "the guest did not stop"
        return self.status

    def stop(self):
        """Stops the guest (its poll returns -EINTR) and returns its key=value output."""
        self.inst.stop()
        status = self.wait()
        self.inst.close()
        assert status == 0, self.inst.stdout
        return self.out


def run_in_cgroup(cgroup_path, code):
    """A trigger: runs Python `code` in a child process that is in the cgroup before it starts."""
    def trigger():
        child = subprocess.Popen([sys.executable, "-c", f"import sys; sys.stdin.read(1)\n{code}"],
                                 stdin=subprocess.PIPE)
        with open(os.path.join(cgroup_path, "cgroup.procs"), "w") as procs:
            procs.write(str(child.pid))
        child.communicate(b"x", timeout=20)
        assert child.returncode == 0
    return trigger
