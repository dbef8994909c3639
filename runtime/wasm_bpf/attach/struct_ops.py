"""struct_ops: a program is reached by registering the struct_ops map that holds it."""
import errno
from typing import Any, Dict

from .._native import ffi, lib
from ..errors import HostCallError
from .common import libbpf_link
from .links import Link

BPF_MAP_TYPE_STRUCT_OPS = 26


def claims(section: str) -> bool:
    return section.startswith("struct_ops")


def struct_ops_maps(obj: Any) -> Dict[str, Any]:
    found = {}
    m = lib.bpf_object__next_map(obj, ffi.NULL)
    while m != ffi.NULL:
        if lib.bpf_map__type(m) == BPF_MAP_TYPE_STRUCT_OPS:
            found[ffi.string(lib.bpf_map__name(m)).decode()] = m
        m = lib.bpf_object__next_map(obj, m)
    return found


def register(obj: Any, target: str) -> Link:
    """Registers struct_ops map `target` (or the object's only one when target is empty)."""
    maps = struct_ops_maps(obj)
    if target:
        if target not in maps:
            raise HostCallError(errno.ENOENT, f"no struct_ops map named {target!r} "
                                f"(struct_ops maps: {', '.join(maps) or 'none'})")
        bpf_map = maps[target]
    elif len(maps) == 1:
        bpf_map = next(iter(maps.values()))
    else:
        raise HostCallError(errno.EINVAL, f"name the struct_ops map to register (maps: {', '.join(maps) or 'none'})")
    ffi.errno = 0
    return libbpf_link(lib.bpf_map__attach_struct_ops(bpf_map), "struct_ops registration")
