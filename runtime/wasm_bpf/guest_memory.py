"""Bounds-checked access to a guest's linear memory during one host call.

Offsets come from the guest; each range is checked against the memory's size at the
moment of use (the guest may have grown it since the last call)."""
from __future__ import annotations

import ctypes
import errno
from typing import Any

import wasmtime

from ._native import ffi
from .errors import HostCallError

MAX_STRING = 4096


class GuestMemory:
    """The guest's exported ``memory`` as seen from inside a host call."""

    def __init__(self, caller: Any, memory: wasmtime.Memory) -> None:
        self.caller = caller  # the wasmtime.Caller of the current host call
        self.memory = memory

    @property
    def size(self) -> int:
        return self.memory.data_len(self.caller)

    def _base(self) -> int:
        return ctypes.cast(self.memory.data_ptr(self.caller), ctypes.c_void_p).value or 0

    def check(self, offset: int, length: int) -> None:
        if offset < 0 or length < 0 or offset + length > self.size:
            raise HostCallError(
                errno.EFAULT, f"guest range [{offset:#x}, +{length}) is outside its memory"
            )

    def pointer(self, offset: int, length: int) -> Any:
        """A C pointer to [offset, offset + length), for passing to libbpf."""
        self.check(offset, length)
        return ffi.cast("void *", self._base() + offset)

    def read(self, offset: int, length: int) -> bytes:
        self.check(offset, length)
        return ctypes.string_at(self._base() + offset, length)

    def write(self, offset: int, data: bytes) -> None:
        self.check(offset, len(data))
        ctypes.memmove(self._base() + offset, data, len(data))

    def string(self, offset: int) -> str:
        """A NUL-terminated UTF-8 string of at most MAX_STRING bytes (NUL included)."""
        size = self.size
        if offset < 0 or offset >= size:
            raise HostCallError(errno.EFAULT, f"string pointer {offset:#x} is outside guest memory")
        window = self.read(offset, min(MAX_STRING, size - offset))
        end = window.find(b"\0")
        if end < 0:
            if len(window) == MAX_STRING:
                raise HostCallError(errno.ENAMETOOLONG, f"string at {offset:#x} is longer than {MAX_STRING - 1} bytes")
            raise HostCallError(errno.EFAULT, f"string at {offset:#x} runs past the end of guest memory")
        try:
            return window[:end].decode("utf-8")
        except UnicodeDecodeError:
            raise HostCallError(errno.EILSEQ, f"string at {offset:#x} is not UTF-8") from None

    def optional_string(self, offset: int) -> str:
        """Like string(), but offset 0 (NULL) is the empty string."""
        return "" if offset == 0 else self.string(offset)
