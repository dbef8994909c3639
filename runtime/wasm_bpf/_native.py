"""The thin kernel boundary: the cffi shim over libbpf (host_abi/shim.c), checked once.

Everything that touches libbpf or the kernel goes through ``lib`` from here."""
from __future__ import annotations

import ctypes
import errno
import os
import threading
from typing import Any, Callable, Iterator, Optional, Tuple

from .errors import WasmBpfError

try:
    from ._shim import ffi, lib
except ImportError as exc:  # pragma: no cover - depends on the installation
    raise WasmBpfError(
        f"the wasm-bpf C shim is not built ({exc}); install the package with "
        "'make install' (it compiles host_abi/shim.c against libbpf)"
    ) from exc

__all__ = ["ffi", "lib", "MIN_LIBBPF", "libbpf_version", "check_libbpf", "capture_libbpf_log", "take_libbpf_log",
           "strerror", "error_name", "programs_in", "maps_in"]  # ffi and lib are the shim's, re-exported

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
    """Hands the shim the C entry points of the libwasmtime wasmtime-py loaded, each
    field of struct wbpf_wasmtime_api named after its function."""
    from wasmtime import _ffi as wt

    api = ffi.new("struct wbpf_wasmtime_api *")
    for name, _ in ffi.typeof("struct wbpf_wasmtime_api").fields:
        fn = getattr(wt.dll, name, None)  # a ctypes function of wasmtime's library
        setattr(api, name, 0 if fn is None else ctypes.cast(fn, ctypes.c_void_p).value or 0)
    if lib.wbpf_set_wasmtime_api(api) != 0:
        raise WasmBpfError("the wasmtime library does not export the C API wasm-bpf needs")


check_libbpf()
_bind_wasmtime()
lib.wbpf_log_capture(0)  # installs the shim's print hook before libbpf is first used

# libbpf logs in the thread that calls it, and the shim keeps a log per thread: so
# does this, for the sink, so that instances running in parallel stay apart.
_log_sink = threading.local()


def capture_libbpf_log(level: int, sink: Optional[Callable[[str], object]] = None) -> None:
    """What libbpf logs in the calling thread from now on: level 0 warnings, 1 info,
    2 debug; with a sink (-v), every message taken is also passed to it."""
    lib.wbpf_log_capture(level)
    _log_sink.sink = sink


def take_libbpf_log() -> str:
    """What libbpf logged in the calling thread since the last call."""
    buf = ffi.new("char[]", 65536)
    n = lib.wbpf_log_take(buf, 65536)
    text = ffi.unpack(buf, n).decode(errors="replace")
    sink = getattr(_log_sink, "sink", None)
    if text and sink is not None:
        sink(text)
    return text


def strerror(linux_errno: int) -> str:
    return os.strerror(abs(linux_errno)) if abs(linux_errno) < 4096 else f"error {linux_errno}"


def error_name(linux_errno: int) -> str:
    return errno.errorcode.get(abs(linux_errno), str(abs(linux_errno)))


def programs_in(obj: Any) -> Iterator[Tuple[str, Any]]:
    """(name, struct bpf_program *) of each program of a struct bpf_object *."""
    prog = lib.bpf_object__next_program(obj, ffi.NULL)
    while prog != ffi.NULL:
        yield ffi.string(lib.bpf_program__name(prog)).decode(), prog
        prog = lib.bpf_object__next_program(obj, prog)


def maps_in(obj: Any) -> Iterator[Tuple[str, Any]]:
    """(name, struct bpf_map *) of each map of a struct bpf_object *."""
    m = lib.bpf_object__next_map(obj, ffi.NULL)
    while m != ffi.NULL:
        yield ffi.string(lib.bpf_map__name(m)).decode(), m
        m = lib.bpf_object__next_map(obj, m)
