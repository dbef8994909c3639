"""Tracing kinds: auto-attach from SEC() (tracepoint, raw_tp, tp_btf, fentry/fexit,
lsm, iter, kprobe/uprobe with the target in SEC), uprobe/uretprobe, USDT, kprobe,
perf_event."""
import ctypes
import errno
import os
from typing import Any, List, Optional, Tuple

from .._native import ffi, lib
from ..errors import HostCallError
from .common import int_option, libbpf_link, prog_fd, shim_link, split_options
from .links import Link, MultiLink


def attach_auto(prog: Any, target: str = "", obj: Any = None) -> Link:
    return shim_link(lib.wbpf_attach, prog, what="auto-attach")


def _func_offset(spec: str, target: str) -> Tuple[Optional[str], int]:
    """'function', 'function+off' or 'off' -> (function or None, offset)."""
    func, plus, off = spec.partition("+")
    try:
        if not plus and func[:1].isdigit():
            result: Tuple[Optional[str], int] = None, int(func, 0)
        else:
            result = func, int(off, 0) if plus else 0
    except ValueError:
        raise HostCallError(errno.EINVAL, f"bad offset in target {target!r}") from None
    if not 0 <= result[1] < 1 << 63:  # the C side takes a size_t (host_abi/ABI.md, Bad input)
        raise HostCallError(errno.EINVAL, f"offset out of range in target {target!r}")
    return result


def attach_uprobe(prog: Any, target: str, retprobe: bool) -> Link:
    """BINARY:FUNCTION[+OFFSET][,pid=PID] (BINARY: a path, or a library name such as libc.so.6)."""
    spec, opts = split_options(target, ["pid"])
    binary, sep, func_spec = spec.rpartition(":")
    if not sep or not binary or not func_spec:
        raise HostCallError(errno.EINVAL, f"uprobe target {target!r} is not 'binary:function[+offset]'")
    func, offset = _func_offset(func_spec, target)
    pid = int_option(opts, "pid", -1)
    return shim_link(lib.wbpf_attach_uprobe, prog, int(retprobe), pid, binary.encode(),
                     func.encode() if func else ffi.NULL, offset, what=f"uprobe attach to {target}")


def attach_usdt(prog: Any, target: str, obj: Any = None) -> Link:
    """BINARY:PROVIDER:NAME[,pid=PID]."""
    spec, opts = split_options(target, ["pid"])
    parts = spec.rsplit(":", 2)
    if len(parts) != 3 or not all(parts):
        raise HostCallError(errno.EINVAL, f"USDT target {target!r} is not 'binary:provider:name'")
    binary, provider, name = parts
    pid = int_option(opts, "pid", -1)
    ffi.errno = 0
    return libbpf_link(lib.bpf_program__attach_usdt(prog, pid, binary.encode(), provider.encode(),
                                                     name.encode(), ffi.NULL), f"USDT attach to {target}")


def kprobe_target(target: str) -> Tuple[str, int]:
    """FUNCTION[+OFFSET] -> (function, offset); a kernel function is required."""
    if not target or ":" in target or "," in target:
        raise HostCallError(errno.EINVAL, f"kprobe target {target!r} is not FUNCTION[+OFFSET]")
    func, offset = _func_offset(target, target)
    if not func or offset < 0:
        raise HostCallError(errno.EINVAL, f"kprobe target {target!r} is not FUNCTION[+OFFSET]")
    return func, offset


def attach_kprobe(prog: Any, target: str, retprobe: bool) -> Link:
    """FUNCTION[+OFFSET] (a kernel function, an offset into it)."""
    func, offset = kprobe_target(target)
    opts = ffi.new("struct bpf_kprobe_opts *")
    opts.sz = ffi.sizeof("struct bpf_kprobe_opts")
    opts.offset, opts.retprobe = offset, retprobe
    ffi.errno = 0
    return libbpf_link(lib.bpf_program__attach_kprobe_opts(prog, func.encode(), opts),
                       f"kprobe attach to {target}")


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
        raise HostCallError(code, f"perf_event_open({event}, pid={pid}, cpu={cpu}): {os.strerror(code)}")
    return fd


def online_cpus() -> List[int]:
    cpus: List[int] = []
    with open("/sys/devices/system/cpu/online") as f:
        for part in f.read().strip().split(","):
            lo, _, hi = part.partition("-")
            cpus.extend(range(int(lo), int(hi or lo) + 1))
    return cpus


def attach_perf_event(prog: Any, target: str, obj: Any = None) -> Link:
    """EVENT[,cpu=N|all][,freq=HZ|,period=N][,pid=PID]; EVENT: cpu-clock, task-clock,
    page-faults, context-switches, ... or a hardware event (cycles, instructions, ...)."""
    event, opts = split_options(target, ["cpu", "freq", "period", "pid"])
    if event not in PERF_EVENTS:
        raise HostCallError(errno.EINVAL, f"unknown perf event {event!r} (known: {', '.join(PERF_EVENTS)})")
    pid = int_option(opts, "pid", -1)
    period = int_option(opts, "period", 0)
    freq = int_option(opts, "freq", 0 if period else 49)
    if opts.get("cpu", "all") == "all":
        cpus = online_cpus() if pid == -1 else [-1]
    else:
        cpus = [int_option(opts, "cpu", -1)]
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


def attach_iter(prog: Any, target: str = "", obj: Any = None) -> Link:
    prog_fd(prog)
    ffi.errno = 0
    return libbpf_link(lib.bpf_program__attach_iter(prog, ffi.NULL), "iterator attach")
