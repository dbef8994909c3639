"""A BPF object loaded on a guest's behalf, and everything attached to it.

Lifecycle: open (libbpf parses the ELF) -> configure (autoload) -> load (the kernel
verifies and creates maps) -> attach (links) -> poll (event buffers) -> close (links
detached, buffers freed, object closed)."""
import errno
import os
from typing import Any, Dict, Iterable, Iterator, List, Optional, Tuple

from . import _native
from ._native import ffi, lib
from .attach import Link, attach_program, section_of
from .attach.links import SharedLink
from .attach import struct_ops
from .attach.targets import StructOps
from .buffers import EventBuffer
from .errors import HostCallError
from .objspec import open_object
from .sandbox import Sandbox
from .user_ringbuf import UserRingBuffer

INTERNAL_SECTIONS = (".rodata", ".data", ".bss", ".kconfig")


class BpfObject:
    """Opens and loads a BPF ELF object; owns its links and event buffers."""

    def __init__(self, elf: bytes, no_load: Iterable[str] = (), sandbox: Optional[Sandbox] = None) -> None:
        _native.take_libbpf_log()  # start this object's log afresh
        self._elf = ffi.from_buffer(elf)  # libbpf reads it until load finishes
        try:
            obj = open_object(self._elf)
        except HostCallError as exc:
            raise HostCallError(exc.errno, _with_log(str(exc))) from None
        self._obj: Any = obj
        self._sandbox = sandbox or Sandbox()
        self.links: List[Link] = []
        self._struct_ops: Dict[str, Link] = {}  # registered struct_ops, by target
        self._iters: Dict[str, Tuple[Link, Optional[int]]] = {}  # iterator link, open iterator fd
        self.buffers: Dict[int, EventBuffer] = {}
        self.user_rings: Dict[int, UserRingBuffer] = {}
        try:
            for name in no_load:
                lib.bpf_program__set_autoload(self._program(name), False)
            self._sandbox.check_object(obj, elf)  # before the first bpf() call
            struct_ops.prepare(obj)  # registrations as links: they go with the process
            rc = lib.bpf_object__load(obj)
            if rc < 0:
                raise HostCallError(-rc, _with_log(f"the kernel refused it ({_native.strerror(rc)})"))
        except BaseException:
            self.close()
            raise
        self._elf = None
        _native.take_libbpf_log()  # with -v, this load's log is printed now, not at the next one

    # ---- programs ----
    def programs(self) -> Iterator[Tuple[str, Any]]:
        prog = lib.bpf_object__next_program(self._obj, ffi.NULL)
        while prog != ffi.NULL:
            yield ffi.string(lib.bpf_program__name(prog)).decode(), prog
            prog = lib.bpf_object__next_program(self._obj, prog)

    def _program(self, name: str) -> Any:
        prog = lib.bpf_object__find_program_by_name(self._obj, name.encode())
        if prog == ffi.NULL:
            known = ", ".join(n for n, _ in self.programs()) or "none"
            raise HostCallError(errno.ENOENT, f"no program named {name!r} (programs: {known})")
        return prog

    def program_fd(self, name: str) -> int:
        """The fd of loaded program `name` (a prog array entry, a devmap program)."""
        prog = self._program(name)
        fd = int(lib.bpf_program__fd(prog))
        if fd < 0:
            raise HostCallError(errno.EINVAL, f"program {name!r} was not loaded (autoload is off)")
        return fd

    def attach(self, name: str, target: str) -> Link:
        """Attaches program `name`; the link is the object's until destroy_link()."""
        prog = self._program(name)
        if not lib.bpf_program__autoload(prog):
            raise HostCallError(errno.EINVAL, f"program {name!r} was not loaded (autoload is off)")
        self._sandbox.limits.check_links(self._sandbox.links_alive)
        with self._sandbox.attach_target(name, prog, target) as parsed:
            if isinstance(parsed, StructOps):
                # One registration of a struct_ops map serves all its programs: the
                # skeleton attaches each of them.
                first = self._struct_ops.get(parsed.map_name)
                if first is not None and first.alive:
                    link: Link = SharedLink()
                    self._add_link(link)
                    return link
                link = attach_program(prog, parsed, self._obj)
                self._struct_ops[parsed.map_name] = link
            else:
                link = attach_program(prog, parsed, self._obj)
        self._add_link(link)
        return link

    def _add_link(self, link: Link) -> None:
        self.links.append(link)
        self._sandbox.links_alive += 1

    def destroy_link(self, link: Link) -> None:
        link.destroy()
        if link in self.links:
            self.links.remove(link)
            self._sandbox.links_alive -= 1

    # ---- iterators ----
    def iter_read(self, name: str, size: int) -> bytes:
        """Up to `size` bytes of iterator program `name`'s output. The first call
        attaches the program if needed and starts an iteration; b"" ends it, and the
        next call starts a new one."""
        prog = self._program(name)
        if not section_of(prog).startswith("iter"):
            raise HostCallError(errno.EINVAL, f"program {name!r} is not an iterator (SEC(\"iter/...\"))")
        link, fd = self._iters.get(name, (None, None))
        if link is None or not link.alive:  # first read, or the guest destroyed the link
            if fd is not None:
                os.close(fd)
            link, fd = self.attach(name, ""), None
        if fd is None:
            fd = lib.bpf_iter_create(link.fd())
            if fd < 0:
                raise HostCallError(-fd, f"cannot create an iterator of {name!r}: {_native.strerror(fd)}")
        self._iters[name] = (link, fd)
        try:
            data = os.read(fd, size) if size > 0 else b""
        except OSError as exc:
            os.close(fd)
            self._iters[name] = (link, None)
            raise HostCallError(exc.errno or errno.EIO, f"reading iterator {name!r}: {exc.strerror}") from None
        if not data:
            os.close(fd)
            self._iters[name] = (link, None)
        return data

    # ---- maps ----
    def maps(self) -> Iterator[Tuple[str, Any]]:
        m = lib.bpf_object__next_map(self._obj, ffi.NULL)
        while m != ffi.NULL:
            yield ffi.string(lib.bpf_map__name(m)).decode(), m
            m = lib.bpf_object__next_map(self._obj, m)

    def map_fd(self, name: str) -> int:
        """The fd of map `name`; internal maps also match by section suffix, so the
        skeleton's "bootstra.rodata" finds this object's ".rodata" map."""
        maps = list(self.maps())
        found = [m for n, m in maps if n == name]
        if not found and "." in name:
            suffix = name[name.index("."):]
            if suffix.startswith(INTERNAL_SECTIONS):
                found = [m for n, m in maps if lib.bpf_map__is_internal(m) and n.endswith(suffix)]
        if not found:
            known = ", ".join(n for n, _ in maps) or "none"
            raise HostCallError(errno.ENOENT, f"no map named {name!r} (maps: {known})")
        fd = lib.bpf_map__fd(found[0])
        if fd < 0:
            raise HostCallError(-fd, f"map {name!r} was not created")
        return int(fd)

    def buffer(self, fd: int, perf_pages: int) -> EventBuffer:
        """The event buffer of map fd, created on first use."""
        buf = self.buffers.get(fd)
        if buf is None:
            name = next((n for n, m in self.maps() if lib.bpf_map__fd(m) == fd), str(fd))
            buf = self.buffers[fd] = EventBuffer(fd, name, perf_pages)
        return buf

    def user_ring(self, fd: int) -> UserRingBuffer:
        """The producer of user ring buffer map fd, created on first use."""
        ring = self.user_rings.get(fd)
        if ring is None:
            ring = self.user_rings[fd] = UserRingBuffer(fd)
        return ring

    def close(self) -> None:
        """Detaches every link, frees the buffers and closes the object. Idempotent."""
        for buf in self.buffers.values():
            buf.close()
        self.buffers.clear()
        for ring in self.user_rings.values():
            ring.close()
        self.user_rings.clear()
        for _, fd in self._iters.values():
            if fd is not None:
                os.close(fd)
        self._iters.clear()
        for link in self.links:
            link.destroy()
        self._sandbox.links_alive -= len(self.links)
        self.links.clear()
        if self._obj is not None:
            lib.bpf_object__close(self._obj)
            self._obj = None


def _with_log(reason: str) -> str:
    """The reason plus libbpf's last own messages, which usually say which program or
    map failed and why (the verifier's log itself is shown with -v)."""
    lines = [line.strip() for line in _native.take_libbpf_log().splitlines()]
    own = [line for line in lines if line.startswith("libbpf:") and "PROG LOAD LOG" not in line]
    detail = "; ".join(own[-2:])
    return f"{reason}: {detail}" if detail else reason
