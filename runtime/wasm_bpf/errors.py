"""Exceptions of the host, and the translation of Linux errno values into the WASI
numbering guests are compiled against (wasi-libc's <errno.h>: EINTR is 27, not 4)."""
import errno as _linux
from typing import List

__all__ = ["WasmBpfError", "HostCallUnwind", "HostCallError", "GuestExit", "to_guest_errno"]


class WasmBpfError(Exception):
    """The base of every exception wasm-bpf raises. Raised as such: a failure of the
    host outside the guest (bad module, unknown import, missing kernel feature, libbpf
    too old); the message says what failed and what to do."""


class HostCallUnwind(WasmBpfError):
    """Raised inside a host function and answered there (by the import wrapper or the
    Instance): the guest gets an errno, a refusal or its exit. One that reaches a
    top-level `except WasmBpfError` is a bug of the host, let through as a traceback."""


class HostCallError(HostCallUnwind):
    """Raised inside an import's implementation; the guest receives -errno (WASI)."""

    def __init__(self, linux_errno: int, message: str = "") -> None:
        super().__init__(message or _linux.errorcode.get(linux_errno, str(linux_errno)))
        self.errno = linux_errno


class GuestExit(HostCallUnwind):
    """The guest called proc_exit: unwinds its calls, nested ones too (the status
    itself is kept by its Instance)."""

    def __init__(self, code: int) -> None:
        super().__init__(f"guest exited with {code}")


# WASI preview 1 errno values, in order (value = index), from wasi/api.h.
_WASI_ERRNO_ORDER = (
    "SUCCESS 2BIG ACCES ADDRINUSE ADDRNOTAVAIL AFNOSUPPORT AGAIN ALREADY BADF BADMSG BUSY "
    "CANCELED CHILD CONNABORTED CONNREFUSED CONNRESET DEADLK DESTADDRREQ DOM DQUOT EXIST "
    "FAULT FBIG HOSTUNREACH IDRM ILSEQ INPROGRESS INTR INVAL IO ISCONN ISDIR LOOP MFILE "
    "MLINK MSGSIZE MULTIHOP NAMETOOLONG NETDOWN NETRESET NETUNREACH NFILE NOBUFS NODEV "
    "NOENT NOEXEC NOLCK NOLINK NOMEM NOMSG NOPROTOOPT NOSPC NOSYS NOTCONN NOTDIR NOTEMPTY "
    "NOTRECOVERABLE NOTSOCK NOTSUP NOTTY NXIO OVERFLOW OWNERDEAD PERM PIPE PROTO "
    "PROTONOSUPPORT PROTOTYPE RANGE ROFS SPIPE SRCH STALE TIMEDOUT TXTBSY XDEV NOTCAPABLE"
).split()

_LINUX_TO_WASI = {
    getattr(_linux, "E" + name): value
    for value, name in enumerate(_WASI_ERRNO_ORDER)
    if hasattr(_linux, "E" + name)
}
# Linux aliases and near-synonyms that wasi-libc folds into one value.
_LINUX_TO_WASI[_linux.EOPNOTSUPP] = _WASI_ERRNO_ORDER.index("NOTSUP")
_LINUX_TO_WASI[_linux.EWOULDBLOCK] = _WASI_ERRNO_ORDER.index("AGAIN")
_LINUX_TO_WASI[_linux.EDEADLOCK] = _WASI_ERRNO_ORDER.index("DEADLK")
_LINUX_TO_WASI[524] = _WASI_ERRNO_ORDER.index("NOTSUP")  # kernel-internal ENOTSUPP
_WASI_EIO = _WASI_ERRNO_ORDER.index("IO")


def to_guest_errno(linux_errno: int) -> int:
    """The WASI errno a guest sees for a (positive) Linux errno; EIO if WASI has none."""
    return _LINUX_TO_WASI.get(abs(linux_errno), _WASI_EIO)


def guest_errno_table(size: int) -> List[int]:
    """[to_guest_errno(e) for e in range(size)], the shim's translation table, made
    from the mapping at once (4096 calls took ~1 ms of every run's start)."""
    table = [_WASI_EIO] * size
    for linux_errno, wasi_errno in _LINUX_TO_WASI.items():
        if 0 <= linux_errno < size:
            table[linux_errno] = wasi_errno
    return table
