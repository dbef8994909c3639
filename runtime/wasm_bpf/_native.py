"""The thin kernel boundary: the cffi shim over libbpf (host_abi/shim.c), checked once.

Everything that touches libbpf or the kernel goes through ``lib`` from here."""
import ctypes
import errno
import os
from typing import Callable, Optional, Tuple

from .errors import WasmBpfError

try:
    from ._shim import ffi, lib
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise WasmBpfError(
        f"the wasm-bpf C shim is not built ({exc}); install the package with "
        "'make install' (it compiles host_abi/shim.c against libbpf)"
    ) from exc

MIN_LIBBPF = (1, 0)


def libbpf_version() -> Tuple[int, int]:
    return int(lib.libbpf_major_version()), int(lib.libbpf_minor_version())


def check_libbpf() -> None:
    found = libbpf_version()
    if found < MIN_LIBBPF:
        raise WasmBpfError(
            f"libbpf {found[0]}.{found[1]} is too old: wasm-bpf needs libbpf >= "
            f"{MIN_LIBBPF[0]}.{MIN_LIBBPF[1]} (Debian bookworm's libbpf1 is 1.1.2)"
        )


def _bind_wasmtime() -> None:
    """Hands the shim the C entry points of the libwasmtime wasmtime-py loaded."""
    from wasmtime import _ffi as wt

    def address(fn: object) -> int:
        return ctypes.cast(fn, ctypes.c_void_p).value or 0

    rc = lib.wbpf_set_wasmtime_api(
        address(wt.dll.wasmtime_func_call_unchecked),
        address(wt.dll.wasmtime_memory_data),
        address(wt.dll.wasmtime_memory_data_size),
    )
    if rc != 0:
        raise WasmBpfError("the wasmtime library does not export the C API wasm-bpf needs")


check_libbpf()
_bind_wasmtime()
lib.wbpf_log_capture(0)


def set_libbpf_log_level(level: int) -> None:
    """0: warnings, 1: info, 2: debug."""
    lib.wbpf_log_capture(level)


# With -v, everything libbpf logs is also passed here (libbpf's print hook is global).
libbpf_log_sink: Optional[Callable[[str], None]] = None


def take_libbpf_log() -> str:
    """What libbpf logged since the last call."""
    buf = ffi.new("char[]", 65536)
    n = lib.wbpf_log_take(buf, 65536)
    text = ffi.unpack(buf, n).decode(errors="replace")
    if text and libbpf_log_sink is not None:
        libbpf_log_sink(text)
    return text


def strerror(linux_errno: int) -> str:
    return os.strerror(abs(linux_errno)) if abs(linux_errno) < 4096 else f"error {linux_errno}"


def error_name(linux_errno: int) -> str:
    return errno.errorcode.get(abs(linux_errno), str(abs(linux_errno)))
