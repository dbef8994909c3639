"""Attach targets, parsed once: `parse(kind, text)` turns the string a guest (or a
kernel-only `--attach`) gives into one typed value per kind. The sandbox checks that
value and rewrites it (a binary path becomes the fd it opened, a socket the duplicate
it took), and the attach function takes it: nothing reads the string a second time.

The grammar (host_abi/ABI.md, "Target grammar"): options are the trailing
`,KEY=VALUE` pieces whose VALUE has no `,`, `:` or `/`; a main part that still holds
`,KEY=` for an option KEY of its kind is refused as ambiguous. A binary is all before
the last `:` (uprobe) or the last two (USDT), whose remaining parts hold no `:`, so a
path may contain `,` and `:` and still reads one way only.

The values are NamedTuples (immutable; `_replace` makes the sandbox's rewrite), not
dataclasses, whose creation at import costs every run's start-up milliseconds. Being
tuples, values of two kinds with equal fields compare equal: compare types too."""
from __future__ import annotations

import errno
import re
from typing import TYPE_CHECKING, Dict, Iterable, NamedTuple, Optional, Tuple, Union

from ..errors import HostCallError

if TYPE_CHECKING:
    import socket

INT_MIN, INT_MAX = -(1 << 31), (1 << 31) - 1
_OPTION = re.compile(r"([a-z]+)=([^,:/]*)")
_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_SOCKET = re.compile(r"([0-9]+):([0-9]+)")


class NoTarget(NamedTuple):
    """No target: libbpf attaches from the SEC() name (or an iterator link)."""


class Xdp(NamedTuple):
    ifname: str
    mode: Optional[str] = None  # "generic" | "native"; None: the kernel picks


class Tc(NamedTuple):
    ifname: str
    direction: str  # "ingress" | "egress"
    tcx: bool = False
    handle: int = 0  # a classic filter's handle and priority; 0: the kernel picks
    priority: int = 0


class Cgroup(NamedTuple):
    path: str    # as given
    fd: int = -1  # the directory the sandbox opened; the attach uses only this


class Sockmap(NamedTuple):
    map_name: str


class PacketSocket(NamedTuple):
    ifname: str  # a raw AF_PACKET socket the host opens on it


class ProcessSocket(NamedTuple):
    pid: int
    fd: int
    # The duplicate the sandbox took and checked; the attach uses only this.
    sock: Optional["socket.socket"] = None


class Uprobe(NamedTuple):
    binary: str  # a path or a library name; after the sandbox, /proc/self/fd/N
    function: Optional[str]  # None: offset is a file offset
    offset: int = 0
    pid: int = -1
    retprobe: bool = False


class Usdt(NamedTuple):
    binary: str  # as Uprobe.binary
    provider: str
    name: str
    pid: int = -1


class Kprobe(NamedTuple):
    function: str
    offset: int = 0
    retprobe: bool = False


class PerfEvent(NamedTuple):
    event: str
    cpu: Optional[int] = None  # None: every online CPU (or any CPU with a pid)
    freq: int = 0
    period: int = 0
    pid: int = -1


class StructOps(NamedTuple):
    map_name: str = ""  # "": the object's only struct_ops map


Target = Union[NoTarget, Xdp, Tc, Cgroup, Sockmap, PacketSocket, ProcessSocket, Uprobe, Usdt, Kprobe, PerfEvent,
               StructOps]
BINARY_KINDS = ("uprobe", "uretprobe", "usdt")


def _bad(text: str, syntax: str) -> HostCallError:
    return HostCallError(errno.EINVAL, f"target {text!r} is not {syntax}")


def split_options(text: str, allowed: Iterable[str]) -> Tuple[str, Dict[str, str]]:
    """'MAIN,key=value,...' -> (MAIN, {key: value})."""
    allowed = tuple(allowed)
    main, options = text, {}
    while True:
        head, sep, tail = main.rpartition(",")
        option = _OPTION.fullmatch(tail) if sep else None
        if option is None:
            break
        key, value = option.groups()
        if key not in allowed:
            raise HostCallError(errno.EINVAL, f"unknown option {key!r} in target {text!r} "
                                f"(options: {', '.join(sorted(allowed)) or 'none'})")
        if key in options:
            raise HostCallError(errno.EINVAL, f"option {key!r} is given twice in target {text!r}")
        options[key] = value
        main = head
    for key in allowed:
        if f",{key}=" in main:
            raise HostCallError(errno.EINVAL, f"target {text!r} is ambiguous: ',{key}=' inside it reads as an "
                                "option; a path must not contain ',KEY=' (rename or link it)")
    return main, options


def int_option(options: Dict[str, str], key: str, default: int) -> int:
    """A number option; a C int, as the kernel takes pids and cpus (a bigger one would
    be truncated to another pid)."""
    if key not in options:
        return default
    try:
        value = int(options[key], 0)
    except ValueError:
        raise HostCallError(errno.EINVAL, f"option {key}={options[key]!r} is not a number") from None
    if not INT_MIN <= value <= INT_MAX:
        raise HostCallError(errno.EINVAL, f"option {key}={options[key]!r} is out of range")
    return value


def _func_offset(spec: str, text: str) -> Tuple[Optional[str], int]:
    """'function', 'function+off' or 'off' -> (function or None, offset)."""
    func, plus, off = spec.partition("+")
    try:
        if not plus and func[:1].isdigit():
            result: Tuple[Optional[str], int] = None, int(func, 0)
        else:
            result = func, int(off, 0) if plus else 0
    except ValueError:
        raise HostCallError(errno.EINVAL, f"bad offset in target {text!r}") from None
    if not 0 <= result[1] < 1 << 63:  # the C side takes a size_t (host_abi/ABI.md, Bad input)
        raise HostCallError(errno.EINVAL, f"offset out of range in target {text!r}")
    return result


def _uprobe(text: str, retprobe: bool) -> Uprobe:
    main, options = split_options(text, ["pid"])
    binary, sep, spec = main.rpartition(":")
    if not sep or not binary or not spec:
        raise _bad(text, "'binary:function[+offset]'")
    func, offset = _func_offset(spec, text)
    if func is not None and (not func or "," in func):
        raise _bad(text, "'binary:function[+offset]'")
    return Uprobe(binary, func, offset, int_option(options, "pid", -1), retprobe)


def _usdt(text: str) -> Usdt:
    main, options = split_options(text, ["pid"])
    parts = main.rsplit(":", 2)
    if len(parts) != 3 or not parts[0] or not all(_IDENT.fullmatch(p) for p in parts[1:]):
        raise _bad(text, "'binary:provider:name' (provider and name are C identifiers)")
    return Usdt(parts[0], parts[1], parts[2], int_option(options, "pid", -1))


def _kprobe(text: str, retprobe: bool) -> Kprobe:
    if ":" in text or "," in text:
        raise _bad(text, "FUNCTION[+OFFSET]")
    func, offset = _func_offset(text, text)
    if not func:
        raise _bad(text, "FUNCTION[+OFFSET]")
    return Kprobe(func, offset, retprobe)


def _xdp(text: str) -> Xdp:
    ifname, options = split_options(text, ["mode"])
    mode = options.get("mode")
    if mode is not None and mode not in ("generic", "skb", "native", "drv"):
        raise HostCallError(errno.EINVAL, f"XDP mode {mode!r} is not generic or native")
    return Xdp(ifname, mode)


def _tc(text: str) -> Tc:
    tcx = text.startswith("tcx:")
    main, options = split_options(text, [] if tcx else ["handle", "priority"])
    ifname, _, direction = main.removeprefix("tcx:").rpartition(":")
    if not ifname or direction not in ("ingress", "egress"):
        raise _bad(text, "'[tcx:]ifname:ingress|egress' or 'ifname:ingress|egress,handle=H,priority=P'")
    handle, priority = int_option(options, "handle", 0), int_option(options, "priority", 0)
    if handle < 0 or not 0 <= priority <= 0xFFFF:
        raise HostCallError(errno.EINVAL, f"target {text!r}: handle must be 0..{INT_MAX} and priority 0..65535")
    return Tc(ifname, direction, tcx, handle, priority)


def _socket(text: str) -> Union[ProcessSocket, PacketSocket]:
    if ":" not in text:
        return PacketSocket(text)
    numbers = _SOCKET.fullmatch(text)
    if numbers is None or max(int(numbers[1]), int(numbers[2])) > INT_MAX:
        raise _bad(text, "'pid:fd' or an interface")
    return ProcessSocket(int(numbers[1]), int(numbers[2]))


PERF_DEFAULT_FREQ = 49  # Hz, when neither freq= nor period= is given (profile's default)


def _perf_event(text: str) -> PerfEvent:
    event, options = split_options(text, ["cpu", "freq", "period", "pid"])
    period = int_option(options, "period", 0)
    cpu = None if options.get("cpu", "all") == "all" else int_option(options, "cpu", -1)
    return PerfEvent(event, cpu, int_option(options, "freq", 0 if period else PERF_DEFAULT_FREQ), period,
                     int_option(options, "pid", -1))


def parse(kind: str, text: str) -> Target:
    """The target `text` of a program of attach kind `kind` (attach.kind_of);
    HostCallError(EINVAL) naming the expected syntax when it is malformed."""
    if kind == "struct_ops":
        return StructOps(text)
    if not text:
        return NoTarget()
    if kind == "xdp":
        return _xdp(text)
    if kind == "tc":
        return _tc(text)
    if kind == "cgroup":
        return Cgroup(text)
    if kind == "sockmap":
        return Sockmap(text)
    if kind == "socket":
        return _socket(text)
    if kind in ("uprobe", "uretprobe"):
        return _uprobe(text, kind == "uretprobe")
    if kind == "usdt":
        return _usdt(text)
    if kind in ("kprobe", "kretprobe"):
        return _kprobe(text, kind == "kretprobe")
    if kind == "perf_event":
        return _perf_event(text)
    raise HostCallError(errno.EINVAL, f"a {kind} program takes no attach target (got {text!r})")
