"""Map operations on behalf of a guest: wasm_bpf_map_operate."""
import errno
from dataclasses import dataclass
from typing import Any

from ._native import ffi, lib
from .errors import HostCallError
from .guest_memory import GuestMemory

LOOKUP, UPDATE, DELETE, GET_NEXT_KEY = (
    lib.BPF_MAP_LOOKUP_ELEM, lib.BPF_MAP_UPDATE_ELEM, lib.BPF_MAP_DELETE_ELEM, lib.BPF_MAP_GET_NEXT_KEY,
)
LOOKUP_AND_DELETE = lib.BPF_MAP_LOOKUP_AND_DELETE_ELEM
BATCH_CMDS = {
    lib.BPF_MAP_LOOKUP_BATCH: "lookup", lib.BPF_MAP_LOOKUP_AND_DELETE_BATCH: "lookup_and_delete",
    lib.BPF_MAP_UPDATE_BATCH: "update", lib.BPF_MAP_DELETE_BATCH: "delete",
}
PERCPU_TYPES = frozenset({
    lib.BPF_MAP_TYPE_PERCPU_HASH, lib.BPF_MAP_TYPE_PERCPU_ARRAY,
    lib.BPF_MAP_TYPE_LRU_PERCPU_HASH, lib.BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE,
})


@dataclass(frozen=True)
class MapInfo:
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
