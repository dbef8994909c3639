"""Pieces shared by the attach kinds: errors from libbpf calls, target options."""
import errno
import os
from typing import Any, Dict, Iterable, Tuple

from .._native import ffi, lib
from ..errors import HostCallError
from .links import LibbpfLink


def libbpf_link(ptr: Any, what: str) -> LibbpfLink:
    """Wraps a struct bpf_link * a libbpf attach call returned (NULL: errno says why)."""
    if ptr == ffi.NULL:
        code = ffi.errno or errno.EINVAL
        raise HostCallError(code, f"{what}: {os.strerror(code)}")
    return LibbpfLink(ptr)


def shim_link(fn: Any, *args: Any, what: str) -> LibbpfLink:
    """Calls a wbpf_attach_* shim function (its last argument is int *err)."""
    err = ffi.new("int *")
    ptr = fn(*args, err)
    if ptr == ffi.NULL:
        code = -err[0] or errno.EINVAL
        raise HostCallError(code, f"{what}: {os.strerror(code)}")
    return LibbpfLink(ptr)


def check_rc(rc: int, what: str) -> int:
    """A libbpf call returning 0/fd or -errno."""
    if rc < 0:
        raise HostCallError(-rc, f"{what}: {os.strerror(-rc)}")
    return rc


def split_options(target: str, allowed: Iterable[str]) -> Tuple[str, Dict[str, str]]:
    """'MAIN,key=value,...' -> (MAIN, {key: value}); only trailing ',key=value' pieces
    with a known key are options, so a comma elsewhere stays part of MAIN."""
    allowed = set(allowed)
    options: Dict[str, str] = {}
    main = target
    while "," in main:
        head, _, tail = main.rpartition(",")
        key, sep, value = tail.partition("=")
        if not sep:
            break
        if key not in allowed:
            raise HostCallError(errno.EINVAL, f"unknown option {key!r} in target {target!r} "
                                f"(options: {', '.join(sorted(allowed)) or 'none'})")
        options[key] = value
        main = head
    return main, options


INT_MIN, INT_MAX = -(1 << 31), (1 << 31) - 1


def int_option(options: Dict[str, str], key: str, default: int) -> int:
    """A number option; a C int, as the kernel takes pids and cpus (a bigger one would
    escape as a Python OverflowError, or be truncated to another pid)."""
    if key not in options:
        return default
    try:
        value = int(options[key], 0)
    except ValueError:
        raise HostCallError(errno.EINVAL, f"option {key}={options[key]!r} is not a number") from None
    if not INT_MIN <= value <= INT_MAX:
        raise HostCallError(errno.EINVAL, f"option {key}={options[key]!r} is out of range")
    return value


def ifindex(ifname: str) -> int:
    import socket
    try:
        return socket.if_nametoindex(ifname)
    except OSError:
        raise HostCallError(errno.ENODEV, f"no network interface named {ifname!r}") from None


def prog_fd(prog: Any) -> int:
    fd = int(lib.bpf_program__fd(prog))
    if fd < 0:
        raise HostCallError(errno.EINVAL, "the program is not loaded")
    return fd
