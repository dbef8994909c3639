"""The wasm_bpf_ext imports for links, iterators, user ring buffers, program fds and
the map API beyond the four upstream commands (host_abi/ABI.md). Mixed into
imports.WasmBpfHost, which provides _object(), _map() and the map fds handed out."""
import errno
from typing import Dict, Tuple

from ._native import ffi, lib
from .attach import Link
from .errors import HostCallError
from .guest_memory import GuestMemory
from .maps import map_batch

MAX_ITER_READ = 1 << 24


class ExtImports:
    """Link handles are positive i64 values local to one instance, separate from
    object handles; a link dies with its object."""

    _links: Dict[int, Tuple[int, Link]]

    def _ext_state(self) -> None:
        if not hasattr(self, "_links"):
            self._links = {}
            self._next_link = 1
            self._mirrors: Dict[int, Tuple[int, int, int]] = {}
            self._prog_fds: Dict[int, int] = {}  # program fd -> object handle

    def attach_link(self, mem: GuestMemory, handle: int, name: int, target: int) -> int:
        self._ext_state()
        obj = self._object(handle)  # type: ignore[attr-defined]
        prog_name, target_str = mem.string(name), mem.optional_string(target)
        try:
            link = obj.attach(prog_name, target_str)
        except HostCallError as exc:
            raise HostCallError(exc.errno, f"cannot attach program {prog_name!r}: {exc}") from None
        link_handle = self._next_link
        self._next_link += 1
        self._links[link_handle] = (handle, link)
        return link_handle

    def link_destroy(self, mem: GuestMemory, link_handle: int) -> int:
        self._ext_state()
        entry = self._links.pop(link_handle, None)
        if entry is None:
            raise HostCallError(errno.EINVAL, f"unknown link handle {link_handle:#x}")
        owner, link = entry
        obj = self.objects.get(owner)  # type: ignore[attr-defined]
        if obj is not None:
            obj.destroy_link(link)
        return 0

    def forget_links(self, handle: int) -> None:
        """The object `handle` is closing: its link handles, mirrors and program fds
        become invalid."""
        self._ext_state()
        self._links = {k: v for k, v in self._links.items() if v[0] != handle}
        self._prog_fds = {fd: h for fd, h in self._prog_fds.items() if h != handle}
        self._mirrors = {fd: m for fd, m in self._mirrors.items() if m[2] != handle}

    # ---- live mirrors of internal maps ----
    def map_mirror(self, mem: GuestMemory, fd: int, ptr: int, size: int) -> int:
        """Keeps [ptr, ptr + size) a copy of one-entry array map fd (.bss, .data),
        refreshed from the kernel at the end of every host call; size 0 stops it."""
        self._ext_state()
        owner, info = self._map(fd)  # type: ignore[attr-defined]
        if size == 0:
            self._mirrors.pop(fd, None)
            return 0
        if info.type != 2 or info.max_entries != 1 or info.value_size != size:  # BPF_MAP_TYPE_ARRAY
            raise HostCallError(errno.EINVAL, f"map fd {fd} is not a one-entry array of {size} bytes "
                                f"(type {info.type}, {info.max_entries} entries of {info.value_size})")
        mem.check(ptr, size)
        self._mirrors[fd] = (ptr, size, owner)
        self.refresh_mirrors(mem)
        return 0

    def refresh_mirrors(self, mem: GuestMemory) -> None:
        mirrors = getattr(self, "_mirrors", None)
        if not mirrors:
            return
        key = ffi.new("uint32_t *", 0)
        for fd, (ptr, size, _) in list(mirrors.items()):
            try:
                dest = mem.pointer(ptr, size)
            except HostCallError:
                del mirrors[fd]
                continue
            lib.bpf_map_lookup_elem_flags(fd, key, dest, 0)

    def iter_read(self, mem: GuestMemory, handle: int, name: int, buf: int, size: int) -> int:
        obj = self._object(handle)  # type: ignore[attr-defined]
        prog_name = mem.string(name)
        if size <= 0 or size > MAX_ITER_READ:
            raise HostCallError(errno.EINVAL, f"buffer size {size} is out of range")
        mem.check(buf, size)
        data = obj.iter_read(prog_name, size)
        mem.write(buf, data)
        return len(data)

    def user_ringbuf_submit(self, mem: GuestMemory, fd: int, data: int, size: int) -> int:
        """Publishes [data, data + size) as one record of user ring buffer map fd."""
        owner, info = self._map(fd)  # type: ignore[attr-defined]
        if info.type != lib.BPF_MAP_TYPE_USER_RINGBUF:
            raise HostCallError(errno.EINVAL, f"map fd {fd} is not a user ring buffer (type {info.type})")
        if size <= 0:
            raise HostCallError(errno.EINVAL, f"record size {size} is out of range")
        self.sandbox.check_map_write(self.objects[owner].maps(), fd, "submit")  # type: ignore[attr-defined]
        record = mem.read(data, size)
        self._object(owner).user_ring(fd).submit(record)  # type: ignore[attr-defined]
        return 0

    def prog_fd_by_name(self, mem: GuestMemory, handle: int, name: int) -> int:
        """The fd of a program of one of the guest's objects: the only program fds a
        guest may store in a map (prog array, devmap/cpumap value)."""
        self._ext_state()
        fd = self._object(handle).program_fd(mem.string(name))  # type: ignore[attr-defined]
        self._prog_fds[fd] = handle
        return fd

    def map_batch(self, mem: GuestMemory, fd: int, cmd: int, in_batch: int, out_batch: int, keys: int,
                  values: int, count: int, elem_flags: int, flags: int) -> int:
        owner, info = self._map(fd)  # type: ignore[attr-defined]
        self.sandbox.check_map_command(self.objects[owner].maps(), fd, cmd)  # type: ignore[attr-defined]
        if cmd == lib.BPF_MAP_UPDATE_BATCH and info.type in (lib.BPF_MAP_TYPE_ARRAY_OF_MAPS,
                                                            lib.BPF_MAP_TYPE_HASH_OF_MAPS):
            raise HostCallError(errno.EINVAL, "batch updates of a map-in-map are not supported: update one by one")
        self.check_inner_map_fd(mem, info, cmd, values)
        return map_batch(mem, info, cmd, in_batch, out_batch, keys, values, count, elem_flags, flags)

    def num_possible_cpus(self, mem: GuestMemory) -> int:
        n = int(lib.libbpf_num_possible_cpus())
        if n < 0:
            raise HostCallError(-n, "cannot read the number of possible CPUs")
        return n

    def check_inner_map_fd(self, mem: GuestMemory, info, cmd: int, value: int) -> None:
        """Map values and keys that are file descriptors are the host's fds. A guest
        holds only the map fds and program fds it was handed, so: a map-in-map stores
        one of its map fds, a prog array (and a devmap/cpumap value) one of its program
        fds. Maps of other fds (sockets, perf events, cgroups) cannot be updated by a
        guest, and maps keyed by fds (task, socket, inode, cgroup storage) cannot be
        used by one: any number it passed would name one of the host's fds."""
        self._ext_state()
        if info.type in FD_KEYED_TYPES:
            raise HostCallError(errno.EBADF, f"map fd {info.fd} is keyed by file descriptors, which a guest does not have")
        if cmd not in (lib.BPF_MAP_UPDATE_ELEM, lib.BPF_MAP_UPDATE_BATCH):
            return
        if info.type in FD_VALUED_TYPES:
            raise HostCallError(errno.EBADF, f"map fd {info.fd} holds file descriptors, which a guest does not have")
        prog_at = None  # where the value holds a program fd
        if info.type == lib.BPF_MAP_TYPE_PROG_ARRAY:
            prog_at = value
        elif info.type in XDP_REDIRECT_TYPES and info.value_size >= 8:
            prog_at = value + 4  # devmap / cpumap values {u32 ifindex or qsize; int prog_fd}
        if prog_at is not None:
            if cmd == lib.BPF_MAP_UPDATE_BATCH:
                raise HostCallError(errno.EINVAL, "batch updates with program fds are not supported: update one by one")
            prog = int.from_bytes(mem.read(prog_at, 4), "little", signed=True)
            if info.type in XDP_REDIRECT_TYPES and prog <= 0:
                return  # no program
            if prog not in self._prog_fds:
                raise HostCallError(errno.EBADF, f"program fd {prog} was not handed to this module "
                                    "(wasm_bpf_prog_fd_by_name)")
        if info.type in (lib.BPF_MAP_TYPE_ARRAY_OF_MAPS, lib.BPF_MAP_TYPE_HASH_OF_MAPS):
            inner = int.from_bytes(mem.read(value, 4), "little")
            if inner not in self._map_fds:  # type: ignore[attr-defined]
                raise HostCallError(errno.EBADF, f"inner map fd {inner} was not handed to this module")


# BPF_MAP_TYPE_*: PERF_EVENT_ARRAY, CGROUP_ARRAY, SOCKMAP, XSKMAP, SOCKHASH, REUSEPORT_SOCKARRAY
FD_VALUED_TYPES = frozenset({4, 8, 15, 17, 18, 20})
# DEVMAP, CPUMAP, DEVMAP_HASH: an 8-byte value carries a program fd
XDP_REDIRECT_TYPES = frozenset({14, 16, 25})
# SK_STORAGE, INODE_STORAGE, TASK_STORAGE, CGRP_STORAGE
FD_KEYED_TYPES = frozenset({24, 28, 29, 32})
