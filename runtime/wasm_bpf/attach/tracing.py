"""Tracing kinds: auto-attach from SEC() (tracepoint, raw_tp, tp_btf, fentry/fexit,
lsm, iter, kprobe/uprobe with the target in SEC), uprobe/uretprobe, USDT, kprobe,
perf_event."""
from __future__ import annotations

import ctypes
import errno
import os
from typing import Any, List

from .._native import ffi, lib
from ..errors import HostCallError
from .common import libbpf_link, prog_fd, shim_link
from .links import Link, MultiLink
from .targets import Kprobe, PerfEvent, Uprobe, Usdt


def attach_auto(prog: Any) -> Link:
    return shim_link(lib.wbpf_attach, prog, what="auto-attach")


def attach_uprobe(prog: Any, target: Uprobe, obj: Any = None) -> Link:
    """target.binary: a library name, a path, or (from a guest) the /proc/self/fd/N of
    the binary the sandbox opened."""
    func = target.function.encode() if target.function is not None else ffi.NULL
    return shim_link(lib.wbpf_attach_uprobe, prog, int(target.retprobe), target.pid, target.binary.encode(),
                     func, target.offset, what=f"uprobe attach to {target.binary}:{target.function or target.offset}")


def attach_usdt(prog: Any, target: Usdt, obj: Any = None) -> Link:
    ffi.errno = 0
    return libbpf_link(lib.bpf_program__attach_usdt(prog, target.pid, target.binary.encode(),
                                                     target.provider.encode(), target.name.encode(), ffi.NULL),
                       f"USDT attach to {target.binary}:{target.provider}:{target.name}")


def attach_kprobe(prog: Any, target: Kprobe, obj: Any = None) -> Link:
    opts = ffi.new("struct bpf_kprobe_opts *")
    opts.sz = ffi.sizeof("struct bpf_kprobe_opts")
    opts.offset, opts.retprobe = target.offset, target.retprobe
    ffi.errno = 0
    return libbpf_link(lib.bpf_program__attach_kprobe_opts(prog, target.function.encode(), opts),
                       f"kprobe attach to {target.function}+{target.offset}")


# ---- perf_event ----------------------------------------------------------------------
_SW, _HW = lib.PERF_TYPE_SOFTWARE, lib.PERF_TYPE_HARDWARE
PERF_EVENTS = {
    "cpu-clock": (_SW, lib.PERF_COUNT_SW_CPU_CLOCK), "task-clock": (_SW, lib.PERF_COUNT_SW_TASK_CLOCK),
    "page-faults": (_SW, lib.PERF_COUNT_SW_PAGE_FAULTS), "context-switches": (_SW, lib.PERF_COUNT_SW_CONTEXT_SWITCHES),
    "cpu-migrations": (_SW, lib.PERF_COUNT_SW_CPU_MIGRATIONS), "minor-faults": (_SW, lib.PERF_COUNT_SW_PAGE_FAULTS_MIN),
    "major-faults": (_SW, lib.PERF_COUNT_SW_PAGE_FAULTS_MAJ),
    "cycles": (_HW, lib.PERF_COUNT_HW_CPU_CYCLES), "instructions": (_HW, lib.PERF_COUNT_HW_INSTRUCTIONS),
    "cache-references": (_HW, lib.PERF_COUNT_HW_CACHE_REFERENCES),
    "cache-misses": (_HW, lib.PERF_COUNT_HW_CACHE_MISSES),
    "branches": (_HW, lib.PERF_COUNT_HW_BRANCH_INSTRUCTIONS), "branch-misses": (_HW, lib.PERF_COUNT_HW_BRANCH_MISSES),
}
_ATTR_SIZE = 128
_libc = ctypes.CDLL(None, use_errno=True)


def perf_event_open(event: str, pid: int, cpu: int, freq: int, period: int) -> int:
    ev_type, config = PERF_EVENTS[event]
    attr = (ctypes.c_uint8 * _ATTR_SIZE)()
    ctypes.c_uint32.from_buffer(attr, 0).value = ev_type
    ctypes.c_uint32.from_buffer(attr, 4).value = _ATTR_SIZE
    ctypes.c_uint64.from_buffer(attr, 8).value = config
    ctypes.c_uint64.from_buffer(attr, 16).value = freq or period
    ctypes.c_uint64.from_buffer(attr, 40).value = (1 << 10) if freq else 0  # .freq
    fd = _libc.syscall(lib.SYS_perf_event_open, attr, ctypes.c_int(pid), ctypes.c_int(cpu),
                       ctypes.c_int(-1), ctypes.c_ulong(lib.PERF_FLAG_FD_CLOEXEC))
    if fd < 0:
        code = ctypes.get_errno()
        why = os.strerror(code)
        if ev_type == _HW and code in (errno.ENOENT, errno.EOPNOTSUPP):  # no PMU: most VMs
            why += f" (this machine has no hardware {event} counter; software events such as cpu-clock work)"
        raise HostCallError(code, f"perf_event_open({event}, pid={pid}, cpu={cpu}): {why}")
    return fd


def online_cpus() -> List[int]:
    cpus: List[int] = []
    with open("/sys/devices/system/cpu/online") as f:
        for part in f.read().strip().split(","):
            lo, _, hi = part.partition("-")
            cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus


def attach_perf_event(prog: Any, target: PerfEvent, obj: Any = None) -> Link:
    """EVENT: cpu-clock, task-clock, page-faults, context-switches, ... or a hardware
    event (cycles, instructions, ...)."""
    event, pid, period, freq = target.event, target.pid, target.period, target.freq
    if event not in PERF_EVENTS:
        raise HostCallError(errno.EINVAL, f"unknown perf event {event!r} (known: {', '.join(PERF_EVENTS)})")
    if target.cpu is None:
        cpus = online_cpus() if pid == -1 else [-1]
    else:
        cpus = [target.cpu]
    links: List[Link] = []
    try:
        for cpu in cpus:
            pfd = perf_event_open(event, pid, cpu, freq, period)
            ffi.errno = 0
            ptr = lib.bpf_program__attach_perf_event(prog, pfd)
            if ptr == ffi.NULL:
                code = ffi.errno or errno.EINVAL
                os.close(pfd)
                raise HostCallError(code, f"perf_event attach ({event}, cpu {cpu}): {os.strerror(code)}")
            links.append(libbpf_link(ptr, "perf_event attach"))  # the link closes pfd
    except BaseException:
        for link in links:
            link.destroy()
        raise
    return MultiLink(links)


def attach_iter(prog: Any) -> Link:
    prog_fd(prog)
    ffi.errno = 0
    return libbpf_link(lib.bpf_program__attach_iter(prog, ffi.NULL), "iterator attach")
