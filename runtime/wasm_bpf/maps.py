"""Every map operation a guest runs (wasm_bpf_map_operate, batches, live mirrors, user
ring buffer records) on the map fds it was handed, and the rules for map keys and
values that are file descriptors."""
from __future__ import annotations

import errno
from typing import TYPE_CHECKING, Any, Dict, NamedTuple

from ._native import ffi, lib
from .errors import HostCallError, to_guest_errno
from .guest_memory import GuestMemory

if TYPE_CHECKING:
    from .bpf_object import BpfObject
    from .sandbox import Sandbox

LOOKUP, UPDATE, DELETE, GET_NEXT_KEY = (
    lib.BPF_MAP_LOOKUP_ELEM, lib.BPF_MAP_UPDATE_ELEM, lib.BPF_MAP_DELETE_ELEM, lib.BPF_MAP_GET_NEXT_KEY,
)
LOOKUP_AND_DELETE = lib.BPF_MAP_LOOKUP_AND_DELETE_ELEM
UPDATES = (lib.BPF_MAP_UPDATE_ELEM, lib.BPF_MAP_UPDATE_BATCH)
BATCH_CMDS = {
    lib.BPF_MAP_LOOKUP_BATCH: "lookup", lib.BPF_MAP_LOOKUP_AND_DELETE_BATCH: "lookup_and_delete",
    lib.BPF_MAP_UPDATE_BATCH: "update", lib.BPF_MAP_DELETE_BATCH: "delete",
}
PERCPU_TYPES = frozenset({
    lib.BPF_MAP_TYPE_PERCPU_HASH, lib.BPF_MAP_TYPE_PERCPU_ARRAY,
    lib.BPF_MAP_TYPE_LRU_PERCPU_HASH, lib.BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE,
})
MAP_IN_MAP_TYPES = frozenset({lib.BPF_MAP_TYPE_ARRAY_OF_MAPS, lib.BPF_MAP_TYPE_HASH_OF_MAPS})
# Values that are fds of sockets, perf events or cgroups: none of them a guest's.
FD_VALUED_TYPES = frozenset({
    lib.BPF_MAP_TYPE_PERF_EVENT_ARRAY, lib.BPF_MAP_TYPE_CGROUP_ARRAY, lib.BPF_MAP_TYPE_SOCKMAP,
    lib.BPF_MAP_TYPE_XSKMAP, lib.BPF_MAP_TYPE_SOCKHASH, lib.BPF_MAP_TYPE_REUSEPORT_SOCKARRAY,
})
# An 8-byte value {u32 ifindex or queue size; int prog_fd} carries a program fd.
XDP_REDIRECT_TYPES = frozenset({lib.BPF_MAP_TYPE_DEVMAP, lib.BPF_MAP_TYPE_CPUMAP, lib.BPF_MAP_TYPE_DEVMAP_HASH})
# Keyed by the fd of a socket, inode, task or cgroup.
FD_KEYED_TYPES = frozenset({
    lib.BPF_MAP_TYPE_SK_STORAGE, lib.BPF_MAP_TYPE_INODE_STORAGE, lib.BPF_MAP_TYPE_TASK_STORAGE,
    lib.WBPF_MAP_TYPE_CGRP_STORAGE,
})


class MapInfo(NamedTuple):
    """What the kernel says about a map fd."""

    fd: int
    type: int
    key_size: int
    value_size: int
    max_entries: int
    id: int

    @classmethod
    def of_fd(cls, fd: int) -> "MapInfo":
        out = ffi.new("uint32_t[5]")
        rc = lib.wbpf_map_info(fd, out, out + 1, out + 2, out + 3, out + 4)
        if rc < 0:
            raise HostCallError(-rc, f"cannot read info of map fd {fd}")
        return cls(fd, *(int(v) for v in out))

    @property
    def value_bytes(self) -> int:
        """Bytes of one value as user space sees it: per-CPU maps hold one 8-byte
        aligned slot per possible CPU (the layout libbpf uses)."""
        if self.type in PERCPU_TYPES:
            return (self.value_size + 7) // 8 * 8 * lib.libbpf_num_possible_cpus()
        return self.value_size


def map_operate(mem: GuestMemory, info: MapInfo, cmd: int, key: int, value: int,
                next_key: int, flags: int) -> int:
    """Runs one map command against guest buffers; returns 0 or raises HostCallError."""
    fd, ksz, vsz = info.fd, info.key_size, info.value_bytes

    def key_ptr() -> Any:
        if key == 0 and ksz:
            raise HostCallError(errno.EFAULT, "key pointer is NULL")
        return mem.pointer(key, ksz) if ksz else ffi.NULL

    if cmd == LOOKUP:
        rc = lib.bpf_map_lookup_elem_flags(fd, key_ptr(), mem.pointer(value, vsz), flags)
    elif cmd == UPDATE:
        rc = lib.bpf_map_update_elem(fd, key_ptr(), mem.pointer(value, vsz), flags)
    elif cmd == DELETE:
        rc = lib.bpf_map_delete_elem_flags(fd, key_ptr(), flags)
    elif cmd == LOOKUP_AND_DELETE:  # also pop for queues and stacks (no key)
        rc = lib.bpf_map_lookup_and_delete_elem_flags(fd, key_ptr(), mem.pointer(value, vsz), flags)
    elif cmd == GET_NEXT_KEY:
        first = ffi.NULL if key == 0 else mem.pointer(key, ksz)  # NULL: the first key
        rc = lib.bpf_map_get_next_key(fd, first, mem.pointer(next_key, ksz))
    else:
        raise HostCallError(errno.EINVAL, f"unknown map command {cmd}")
    if rc == -errno.ENOENT and cmd == GET_NEXT_KEY:
        return -to_guest_errno(errno.ENOENT)  # the normal end of a key iteration: not an error to log
    if rc < 0:
        raise HostCallError(-rc)
    return 0


def map_batch(mem: GuestMemory, info: MapInfo, cmd: int, in_batch: int, out_batch: int, keys: int,
              values: int, count: int, elem_flags: int, flags: int) -> int:
    """One batch command (BPF_MAP_*_BATCH). *count (a u32 in guest memory) is the number
    of elements in, and the number processed out; in_batch may be NULL (start), the
    batch tokens are max(key_size, 4) bytes. Returns 0 or raises HostCallError (ENOENT
    also when a lookup reached the end: *count is still set)."""
    what = BATCH_CMDS.get(cmd)
    if what is None:
        raise HostCallError(errno.EINVAL, f"unknown batch command {cmd}")
    if count == 0:
        raise HostCallError(errno.EFAULT, "count pointer is NULL")
    count_ptr = ffi.cast("uint32_t *", mem.pointer(count, 4))
    n = int(count_ptr[0])
    ksz, vsz, token = info.key_size, info.value_bytes, max(info.key_size, 4)
    opts = ffi.new("struct bpf_map_batch_opts *")
    opts.sz = ffi.sizeof("struct bpf_map_batch_opts")
    opts.elem_flags, opts.flags = elem_flags, flags
    keys_p = mem.pointer(keys, n * ksz)
    if what == "delete":
        rc = lib.bpf_map_delete_batch(info.fd, keys_p, count_ptr, opts)
    elif what == "update":
        rc = lib.bpf_map_update_batch(info.fd, keys_p, mem.pointer(values, n * vsz), count_ptr, opts)
    else:
        fn = lib.bpf_map_lookup_batch if what == "lookup" else lib.bpf_map_lookup_and_delete_batch
        in_p = ffi.NULL if in_batch == 0 else mem.pointer(in_batch, token)
        rc = fn(info.fd, in_p, mem.pointer(out_batch, token), keys_p, mem.pointer(values, n * vsz), count_ptr, opts)
    if rc < 0:
        raise HostCallError(-rc)
    return 0


class HandedMap(NamedTuple):
    """A map fd handed to a guest, and the object (handle) that owns it."""

    handle: int
    obj: "BpfObject"
    info: MapInfo


class GuestMaps:
    """The map fds and program fds one guest instance was handed, and the map imports
    run on them. A guest names maps by fd; each is checked here against what it holds."""

    def __init__(self, sandbox: "Sandbox", c_host: Any) -> None:
        self._sandbox = sandbox
        self._c_host = c_host  # struct wbpf_host *: keeps the mirrors (its polls refresh them)
        self._maps: Dict[int, HandedMap] = {}
        self._prog_fds: Dict[int, int] = {}  # program fd -> object handle

    def __contains__(self, fd: int) -> bool:
        return fd in self._maps

    def hand_out(self, handle: int, obj: "BpfObject", info: MapInfo) -> None:
        """Map info.fd of object `handle` is the guest's from now on."""
        self._maps[info.fd] = HandedMap(handle, obj, info)

    def hand_out_program(self, handle: int, fd: int) -> None:
        """A program fd the guest may store in a map (prog array, devmap/cpumap value)."""
        self._prog_fds[fd] = handle

    def get(self, fd: int) -> HandedMap:
        entry = self._maps.get(fd)
        if entry is None:
            raise HostCallError(errno.EBADF, f"fd {fd} is not a map fd handed to this module")
        return entry

    def forget(self, handle: int) -> None:
        """The object `handle` is closing: its map fds and program fds become invalid
        (its mirrors end with wbpf_host_forget)."""
        self._maps = {fd: m for fd, m in self._maps.items() if m.handle != handle}
        self._prog_fds = {fd: h for fd, h in self._prog_fds.items() if h != handle}

    # ---- imports ----------------------------------------------------------------------
    def operate(self, mem: GuestMemory, fd: int, cmd: int, key: int, value: int, next_key: int,
                flags: int) -> int:
        entry = self.get(fd)
        self._sandbox.check_map_command(entry.obj.maps(), fd, cmd)
        self._check_fds(mem, entry.info, cmd, value)
        return map_operate(mem, entry.info, cmd, key, value, next_key, flags)

    def batch(self, mem: GuestMemory, fd: int, cmd: int, in_batch: int, out_batch: int, keys: int,
              values: int, count: int, elem_flags: int, flags: int) -> int:
        entry = self.get(fd)
        self._sandbox.check_map_command(entry.obj.maps(), fd, cmd)
        if cmd == lib.BPF_MAP_UPDATE_BATCH and entry.info.type in MAP_IN_MAP_TYPES:
            raise HostCallError(errno.EINVAL, "batch updates of a map-in-map are not supported: update one by one")
        self._check_fds(mem, entry.info, cmd, values)
        return map_batch(mem, entry.info, cmd, in_batch, out_batch, keys, values, count, elem_flags, flags)

    def user_ringbuf_submit(self, mem: GuestMemory, fd: int, data: int, size: int) -> int:
        """Publishes [data, data + size) as one record of user ring buffer map fd."""
        entry = self.get(fd)
        if entry.info.type != lib.BPF_MAP_TYPE_USER_RINGBUF:
            raise HostCallError(errno.EINVAL, f"map fd {fd} is not a user ring buffer (type {entry.info.type})")
        if size <= 0:
            raise HostCallError(errno.EINVAL, f"record size {size} is out of range")
        self._sandbox.check_map_write(entry.obj.maps(), fd, "submit")
        entry.obj.user_ring(fd).submit(mem.read(data, size))
        return 0

    def mirror(self, mem: GuestMemory, fd: int, ptr: int, size: int) -> int:
        """Keeps [ptr, ptr + size) a copy of one-entry array map fd (.bss, .data),
        refreshed from the kernel at the end of every host call; size 0 stops it."""
        entry = self.get(fd)
        if size == 0:
            lib.wbpf_host_mirror(self._c_host, entry.handle, fd, 0, 0)
            return 0
        info = entry.info
        if info.type != lib.BPF_MAP_TYPE_ARRAY or info.max_entries != 1 or info.value_size != size:
            raise HostCallError(errno.EINVAL, f"map fd {fd} is not a one-entry array of {size} bytes "
                                f"(type {info.type}, {info.max_entries} entries of {info.value_size})")
        mem.check(ptr, size)
        if lib.wbpf_host_mirror(self._c_host, entry.handle, fd, ptr, size):
            raise HostCallError(errno.ENOMEM, "cannot record the mirror")
        self.refresh_mirrors(mem)
        return 0

    def refresh_mirrors(self, mem: GuestMemory) -> None:
        """Copies the mirrored maps into guest memory (the shim does it after its polls)."""
        lib.wbpf_host_refresh_mirrors(self._c_host, mem.pointer(0, 0), mem.size)

    def _check_fds(self, mem: GuestMemory, info: MapInfo, cmd: int, value: int) -> None:
        """Map values and keys that are file descriptors are the host's fds. A guest
        holds only the map fds and program fds it was handed, so: a map-in-map stores
        one of its map fds, a prog array (and a devmap/cpumap value) one of its program
        fds. Maps of other fds (sockets, perf events, cgroups) cannot be updated by a
        guest, and maps keyed by fds (task, socket, inode, cgroup storage) cannot be
        used by one: any number it passed would name one of the host's fds."""
        if info.type in FD_KEYED_TYPES:
            raise HostCallError(errno.EBADF, f"map fd {info.fd} is keyed by file descriptors, which a guest does not have")
        if cmd not in UPDATES:
            return
        if info.type in FD_VALUED_TYPES:
            raise HostCallError(errno.EBADF, f"map fd {info.fd} holds file descriptors, which a guest does not have")
        prog_at = None  # where the value holds a program fd
        if info.type == lib.BPF_MAP_TYPE_PROG_ARRAY:
            prog_at = value
        elif info.type in XDP_REDIRECT_TYPES and info.value_size >= 8:
            prog_at = value + 4
        if prog_at is not None:
            if cmd == lib.BPF_MAP_UPDATE_BATCH:
                raise HostCallError(errno.EINVAL, "batch updates with program fds are not supported: update one by one")
            prog = int.from_bytes(mem.read(prog_at, 4), "little", signed=True)
            if info.type in XDP_REDIRECT_TYPES and prog <= 0:
                return  # no program
            if prog not in self._prog_fds:
                raise HostCallError(errno.EBADF, f"program fd {prog} was not handed to this module "
                                    "(wasm_bpf_prog_fd_by_name)")
        if info.type in MAP_IN_MAP_TYPES:
            inner = int.from_bytes(mem.read(value, 4), "little")
            if inner not in self._maps:
                raise HostCallError(errno.EBADF, f"inner map fd {inner} was not handed to this module")
