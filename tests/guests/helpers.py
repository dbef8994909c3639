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


def held_bpf_ids(pid="self"):
    """(program ids, link ids) of the BPF fds a process holds, from /proc/PID/fdinfo.
    Unlike the kernel-wide id lists this ignores what other processes on the machine
    load meanwhile."""
    progs, links = set(), set()
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(f"{fd_dir}/{fd}")
            if target not in ("anon_inode:bpf-prog", "anon_inode:bpf_link"):
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                info = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:  # closed meanwhile
            continue
        if target == "anon_inode:bpf_link" and "link_id" in info:
            links.add(int(info["link_id"]))
        elif "prog_id" in info:
            progs.add(int(info["prog_id"]))
    return progs, links


def bpf_ids_held_by_other_processes():
    """(program ids, link ids) held through fds by processes other than this one."""
    progs, links = set(), set()
    me = str(os.getpid())
    for pid in os.listdir("/proc"):
        if pid.isdigit() and pid != me:
            try:
                p, l = held_bpf_ids(pid)
            except OSError:  # gone, or not ours to read
                continue
            progs |= p
            links |= l
    return progs, links
