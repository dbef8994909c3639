"""Ring buffers and perf event arrays, drained into the guest by the C shim.

Per record, the shim copies the record into guest memory and calls the guest's
callback through wasmtime's C API; no Python runs per record. The guest's polls are
host functions of the shim too (imports.py binds them); poll() here is their Python
implementation, for the calls the shim hands back (a bad argument to report)."""
from __future__ import annotations

import ctypes
import errno
from typing import Any, Iterator, NamedTuple, Optional

import wasmtime
from wasmtime import _ffi as wt_ffi
from wasmtime import _func as wt_func

from ._native import ffi, lib
from .errors import HostCallError


class PollTarget(NamedTuple):
    """Where one poll delivers: a guest callback and a buffer in guest memory."""

    caller: Any  # wasmtime.Caller of the polling host call
    memory: wasmtime.Memory
    callback: wasmtime.Func  # (ctx, data, size) -> i32, type-checked by the caller
    ctx: int
    data: int
    max_size: int
    batch: bool = False  # callback (ctx, data, used, count) once per batch of records
    watch: Any = None  # struct wbpf_call_watch * the CPU watchdog samples, or None


def _address(ptr: Any) -> int:
    """The address of a ctypes pointer (wasmtime-py) or a cffi pointer (the shim)."""
    if isinstance(ptr, ffi.CData):
        return int(ffi.cast("uintptr_t", ptr))
    return ctypes.cast(ptr, ctypes.c_void_p).value or 0


class BufferStats(NamedTuple):
    """What one event buffer delivered, for `wasm-bpf run --stats`."""

    object_handle: int
    map_name: str
    kind: str  # "ring buffer" or "perf buffer"
    delivered: int
    lost: Optional[int]  # None for ring buffers: the kernel does not count their drops

    def __str__(self) -> str:
        lost = "lost: not counted by the kernel (count drops in BPF)" if self.lost is None else f"{self.lost} lost"
        return (f"object {self.object_handle}, {self.kind} '{self.map_name}': "
                f"{self.delivered} records delivered, {lost}")


class EventBuffer:
    """A consumer of one ring buffer or perf event array map: for a guest (poll), or
    for the host itself (fileno and take_records, kernel-only runs)."""

    TAKE_CHUNK = 1 << 20  # bytes of queued records copied out at once

    def __init__(self, map_fd: int, map_name: str, perf_pages: int = 64) -> None:
        err = ffi.new("int *")
        self._buf: Optional[Any] = lib.wbpf_buffer_new(map_fd, perf_pages, err)
        if self._buf == ffi.NULL:
            self._buf = None
            raise HostCallError(-err[0] or errno.EINVAL, f"cannot open an event buffer on map {map_name!r}")
        self.map_fd = map_fd
        self.map_name = map_name
        self.is_ring = lib.wbpf_buffer_map_type(self._buf) == lib.BPF_MAP_TYPE_RINGBUF
        self._chunk: Optional[Any] = None  # take_records' copy buffer, made on first use

    def stats(self, object_handle: int) -> BufferStats:
        return BufferStats(object_handle, self.map_name, "ring buffer" if self.is_ring else "perf buffer",
                           self.delivered, None if self.is_ring else self.lost)

    @property
    def c_buffer(self) -> Any:
        """The shim's struct wbpf_buffer *, valid until close()."""
        return self._open()

    @property
    def busy(self) -> bool:
        """Is a poll of this buffer running (a callback inside it)?"""
        return self._buf is not None and bool(lib.wbpf_buffer_busy(self._buf))

    def poll(self, target: PollTarget, timeout_ms: int, stop: Any) -> int:
        """Delivers available records; returns their count, or the callback's negative
        result, or raises HostCallError. A trap in the callback is re-raised.
        stop: the struct wbpf_stop * that ends the wait."""
        buf = self._open()
        c_target = ffi.new("struct wbpf_guest_target *", {
            "context": ffi.cast("void *", _address(target.caller._context())),
            "memory": ffi.cast("void *", ctypes.addressof(target.memory._memory)),
            "func": ffi.cast("void *", ctypes.addressof(target.callback._func)),
            "ctx": target.ctx, "data": target.data, "max_size": target.max_size,
            "batch": int(target.batch), "watch": target.watch or ffi.NULL,
        })
        result = ffi.new("struct wbpf_poll_result *")
        rc = lib.wbpf_buffer_poll(buf, c_target, timeout_ms, stop, result)
        if result.status == lib.WBPF_POLL_WASM_ERROR:
            _raise_guest_failure(result)
        if result.status == lib.WBPF_POLL_CALLBACK_STOP:
            return int(rc)
        if rc < 0:
            raise HostCallError(-rc)
        return int(rc)

    def fileno(self) -> int:
        """An fd that polls readable when records are waiting (select.poll)."""
        return int(lib.wbpf_buffer_epoll_fd(self._open()))

    def take_chunks(self) -> Iterator[bytes]:
        """Every record available now, read without waiting, as chunks of whole
        records framed [u32 size][size bytes][padding to 8] (shim.h)."""
        lib.wbpf_buffer_collect(self._open(), 0)
        if self._chunk is None:
            self._chunk = ffi.new("char[]", self.TAKE_CHUNK)
        chunk = self._chunk
        # _open() at each step: the consumer runs between chunks, and may close the buffer
        while lib.wbpf_buffer_queued(self._open()):
            n = lib.wbpf_buffer_take(self._open(), chunk, self.TAKE_CHUNK)
            if n == 0:
                break
            yield ffi.buffer(chunk, n)[:]

    def take_records(self) -> Iterator[bytes]:
        """Every record available now, read without waiting."""
        for data in self.take_chunks():
            yield from split_records(data)

    def _open(self) -> Any:
        if self._buf is None:
            raise HostCallError(errno.EBADF, "event buffer is closed")
        return self._buf

    @property
    def delivered(self) -> int:
        return int(lib.wbpf_buffer_delivered(self._buf)) if self._buf else 0

    @property
    def lost(self) -> int:
        return int(lib.wbpf_buffer_lost(self._buf)) if self._buf else 0

    def close(self) -> None:
        if self._buf is not None:
            lib.wbpf_buffer_free(self._buf)
            self._buf = None


def split_records(data: bytes) -> Iterator[bytes]:
    """The records of one chunk of take_chunks()."""
    pos, n = 0, len(data)
    while pos + 4 <= n:
        size = int.from_bytes(data[pos:pos + 4], "little")
        yield data[pos + 4: pos + 4 + size]
        pos += 4 + ((size + 7) & ~7)


def _raise_guest_failure(result: Any) -> None:
    """Re-raises what ended the guest's callback: a Python exception from a nested host
    call (proc_exit included), else wasmtime's error or trap."""
    error, trap = _address(result.error), _address(result.trap)
    # Wrap both first so that wasmtime-py owns (and frees) them whatever is raised.
    err_obj = wasmtime.WasmtimeError._from_ptr(ctypes.cast(error, ctypes.POINTER(wt_ffi.wasmtime_error_t))) if error else None
    trap_obj = wasmtime.Trap._from_ptr(ctypes.cast(trap, ctypes.POINTER(wt_ffi.wasm_trap_t))) if trap else None
    wt_func.maybe_raise_last_exn()
    raise err_obj or trap_obj or wasmtime.WasmtimeError("guest callback failed")
