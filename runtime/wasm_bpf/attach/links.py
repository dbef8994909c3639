"""What an attachment leaves behind, and how to undo it.

Every attach kind returns a Link; destroy() undoes the attachment and is idempotent.
Kinds whose kernel object is a libbpf link use LibbpfLink; the others (tc filters,
raw kernel links libbpf 1.1 cannot create, sockmap and socket-filter attachments)
have their own small class."""
from __future__ import annotations

import os
from typing import Any, Callable, List, Optional

from .._native import ffi, lib


class Link:
    """One attachment of one program."""

    kind = "link"

    def __init__(self) -> None:
        self.alive = True

    def destroy(self) -> None:
        if self.alive:
            self.alive = False
            self._destroy()

    def _destroy(self) -> None:  # pragma: no cover - overridden
        pass

    def fd(self) -> int:
        """The kernel link fd, or -1 when the attachment is not a BPF link."""
        return -1


class LibbpfLink(Link):
    kind = "libbpf"

    def __init__(self, ptr: Any) -> None:
        super().__init__()
        self.ptr = ptr

    def _destroy(self) -> None:
        lib.bpf_link__destroy(self.ptr)
        self.ptr = ffi.NULL

    def fd(self) -> int:
        return int(lib.bpf_link__fd(self.ptr)) if self.alive else -1


class FdLink(Link):
    """A kernel BPF link created with bpf_link_create (tcx, XDP with mode flags)."""

    kind = "fd"

    def __init__(self, link_fd: int) -> None:
        super().__init__()
        self.link_fd = link_fd

    def _destroy(self) -> None:
        os.close(self.link_fd)

    def fd(self) -> int:
        return self.link_fd if self.alive else -1


class CallbackLink(Link):
    """An attachment undone by a function (tc filters, sockmap and socket attachments)."""

    kind = "callback"

    def __init__(self, undo: Callable[[], None]) -> None:
        super().__init__()
        self._undo = undo

    def _destroy(self) -> None:
        self._undo()


class MultiLink(Link):
    """Several attachments made by one call (a perf event per CPU); destroyed together."""

    kind = "multi"

    def __init__(self, parts: List[Link]) -> None:
        super().__init__()
        self.parts = parts

    def _destroy(self) -> None:
        for part in self.parts:
            part.destroy()


class SharedLink(Link):
    """A second attach of something registered once per object (a struct_ops map):
    destroying it does nothing, the first link keeps the registration."""

    kind = "shared"
