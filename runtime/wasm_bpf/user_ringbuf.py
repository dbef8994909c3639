"""The producer side of a BPF_MAP_TYPE_USER_RINGBUF map: records a guest submits
(wasm_bpf_user_ringbuf_submit) for BPF programs to drain with bpf_user_ringbuf_drain."""
from __future__ import annotations

import errno

from ._native import ffi, lib
from .errors import HostCallError


class UserRingBuffer:
    """libbpf's user_ring_buffer over one map fd; owned by the map's BpfObject."""

    def __init__(self, map_fd: int) -> None:
        ffi.errno = 0
        rb = lib.user_ring_buffer__new(map_fd, ffi.NULL)
        if rb == ffi.NULL:
            code = ffi.errno or errno.EINVAL
            raise HostCallError(code, f"cannot map user ring buffer fd {map_fd}")
        self._rb = rb

    def submit(self, data: bytes) -> None:
        """Copies one record into the ring and publishes it. ENOSPC: the ring is full
        (the BPF side has not drained it); E2BIG: the record can never fit."""
        if self._rb is None:
            raise HostCallError(errno.EBADF, "the user ring buffer is closed")
        ffi.errno = 0
        sample = lib.user_ring_buffer__reserve(self._rb, len(data))
        if sample == ffi.NULL:
            raise HostCallError(ffi.errno or errno.ENOSPC, f"cannot reserve {len(data)} bytes")
        ffi.memmove(sample, data, len(data))
        lib.user_ring_buffer__submit(self._rb, sample)

    def close(self) -> None:
        if self._rb is not None:
            lib.user_ring_buffer__free(self._rb)
            self._rb = None
