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
_PERCPU_TYPES = frozenset({
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
        if self.type in _PERCPU_TYPES:
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
    elif cmd == GET_NEXT_KEY:
        first = ffi.NULL if key == 0 else mem.pointer(key, ksz)  # NULL: the first key
        rc = lib.bpf_map_get_next_key(fd, first, mem.pointer(next_key, ksz))
    else:
        raise HostCallError(errno.EINVAL, f"unknown map command {cmd}")
    if rc < 0:
        raise HostCallError(-rc)
    return 0
