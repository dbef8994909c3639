"""A BPF object loaded on a guest's behalf, and everything attached to it.

Lifecycle: open (libbpf parses the ELF) -> configure (autoload) -> load (the kernel
verifies and creates maps) -> attach (links) -> poll (event buffers) -> close (links
detached, buffers freed, object closed)."""
from __future__ import annotations

import errno
import os
from typing import Any, Callable, Dict, Iterable, Iterator, List, Optional, Tuple

from . import _native
from ._native import ffi, lib
from .attach import Link, attach_program, kind_of_program, section_of
from .attach.links import SharedLink
from .attach import struct_ops
from .attach.targets import StructOps
from .buffers import EventBuffer
from .errors import HostCallError
from .objspec import maps_of, open_object, programs_of
from .sandbox import Sandbox
from .user_ringbuf import UserRingBuffer

INTERNAL_SECTIONS = (".rodata", ".data", ".bss", ".kconfig")
PAGE_SIZE = os.sysconf("SC_PAGE_SIZE")


class BpfObject:
    """Opens and loads a BPF ELF object; owns its links and event buffers."""

    def __init__(self, elf: bytes, no_load: Iterable[str] = (), sandbox: Optional[Sandbox] = None,
                 name: str = "", prepare: Optional[Callable[["BpfObject"], None]] = None) -> None:
        """name (the module's or file's, e.g. "bootstrap") is libbpf's object name: its
        log and the names of internal maps use it. prepare(self) runs between open and
        load (to size maps, as a skeleton's user space does)."""
        _native.take_libbpf_log()  # start this object's log afresh
        self.elf = elf  # its BTF types the maps for the host (Instance.maps())
        self._elf = ffi.from_buffer(elf)  # libbpf reads it until load finishes
        try:
            obj = open_object(self._elf, name)
        except HostCallError as exc:
            from .failures import with_log
            raise HostCallError(exc.errno, with_log(str(exc))) from None
        self._obj: Any = obj
        self._sandbox = sandbox or Sandbox()
        self.links: List[Link] = []
        self._struct_ops: Dict[str, Link] = {}  # registered struct_ops, by target
        self._iters: Dict[str, Tuple[Link, Optional[int]]] = {}  # iterator link, open iterator fd
        self.buffers: Dict[int, EventBuffer] = {}
        self._rings: List[Tuple[str, int]] = []  # (map, bytes) of the perf buffers created
        self._pinned: List[Tuple[str, Any]] = []  # (path, struct bpf_map *) of the pins this object made
        self.user_rings: Dict[int, UserRingBuffer] = {}
        try:
            for name in no_load:
                lib.bpf_program__set_autoload(self._program(name), False)
            if prepare is not None:
                prepare(self)
            self._sandbox.check_object(obj, elf)  # before the first bpf() call
            pins = self._claim_pins()
            struct_ops.prepare(obj)  # registrations as links: they go with the process
            rc = lib.bpf_object__load(obj)
            if rc < 0:
                from .failures import load_failure
                raise HostCallError(-rc, load_failure(-rc, _native.take_libbpf_log(), programs_of(obj)))
            self._pin(pins)
        except BaseException:
            self.close()
            raise
        # Taken here, on the loading thread: another thread (the daemon's metrics) reads
        # their kernel stats through the fds without walking libbpf's object.
        self.program_fds = {n: fd for n, p in self.programs() if (fd := lib.bpf_program__fd(p)) >= 0}
        self.map_fds = {n: fd for n, m in self.maps() if (fd := lib.bpf_map__fd(m)) >= 0}
        self._elf = None
        _native.take_libbpf_log()  # with -v, this load's log is printed now, not at the next one

    # ---- pins ----
    def _claim_pins(self) -> List[Tuple[str, Any, str]]:
        """(name, map, path) of the maps the object pins by name, each path in the
        policy's pin_root. libbpf would reuse a map already pinned at the path (anyone's
        map, read and written by this guest); so the host clears libbpf's pin paths
        and pins the maps itself after the load, where an existing path is refused.
        The host loading for itself (no --dir confinement) keeps libbpf's pinning."""
        if self._sandbox.paths is None:
            return []
        pins = []
        for name, m in self.maps():
            if lib.bpf_map__pin_path(m) != ffi.NULL:
                pins.append((name, m, self._sandbox.policy.pin_path(name)))
                lib.bpf_map__set_pin_path(m, ffi.NULL)
        return pins

    def _pin(self, pins: List[Tuple[str, Any, str]]) -> None:
        for name, m, path in pins:
            os.makedirs(os.path.dirname(path), mode=0o700, exist_ok=True)
            rc = lib.bpf_map__pin(m, path.encode())
            if rc == -errno.EEXIST:
                raise HostCallError(errno.EEXIST, f"map {name!r}: {path} is already pinned, and a guest never "
                                    "reuses a pin it did not create (remove it, or grant another [maps] pin_root)")
            if rc < 0:
                raise HostCallError(-rc, f"cannot pin map {name!r} at {path}: {_native.strerror(rc)} "
                                    "([maps] pin_root must be a directory on the BPF filesystem, /sys/fs/bpf)")
            self._pinned.append((path, m))

    # ---- programs ----
    def programs(self) -> Iterator[Tuple[str, Any]]:
        return _native.programs_in(self._obj)

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
                try:
                    link = attach_program(prog, parsed, self._obj)
                except HostCallError as exc:
                    from .failures import attach_failure
                    raise HostCallError(exc.errno, attach_failure(kind_of_program(prog), section_of(prog), parsed, target, exc)) from None
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
        return _native.maps_in(self._obj)

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
        """The event buffer of map fd, created on first use. A perf event array's
        buffer is one ring of perf_pages (+1 header page) per CPU that the host
        creates: it counts against --max-map-memory with the object's maps."""
        buf = self.buffers.get(fd)
        if buf is None:
            name, m = next(((n, m) for n, m in self.maps() if lib.bpf_map__fd(m) == fd), (str(fd), None))
            rings = 0
            if m is not None and lib.bpf_map__type(m) == lib.BPF_MAP_TYPE_PERF_EVENT_ARRAY:
                cpus = int(lib.libbpf_num_possible_cpus())
                rings = min(cpus, int(lib.bpf_map__max_entries(m)) or cpus) * (perf_pages + 1) * PAGE_SIZE
                self._sandbox.limits.check_map_memory(maps_of(self._obj), [*self._rings, (name, rings)])
            buf = self.buffers[fd] = EventBuffer(fd, name, perf_pages)
            if rings:
                self._rings.append((name, rings))
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
        for path, m in self._pinned:
            lib.bpf_map__unpin(m, path.encode())
        self._pinned.clear()
        if self._obj is not None:
            lib.bpf_object__close(self._obj)
            self._obj = None
