"""Pieces shared by the attach kinds: errors from libbpf calls, interfaces, program fds."""
from __future__ import annotations

import errno
import os
from typing import Any

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
