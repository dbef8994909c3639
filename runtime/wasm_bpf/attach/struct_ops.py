"""struct_ops: a program is reached by registering the struct_ops map that holds it.

libbpf 1.1 registers a map by updating it: the kernel then keeps the registration
(and the map) after the process is gone, SIGKILL included. Where the kernel has
struct_ops links (>= 6.4), the maps are created with BPF_F_LINK instead and the
registration is a link fd, which goes with the process however that ends."""
from __future__ import annotations

import errno
import os
from typing import Any, Dict

from .._native import ffi, lib, maps_in
from ..errors import HostCallError
from .common import check_rc, libbpf_link
from .links import FdLink, Link, MultiLink
from .targets import StructOps


def _kernel_has_links() -> bool:
    release = os.uname().release.split("-")[0].split(".")
    try:
        return (int(release[0]), int(release[1])) >= (6, 4)
    except (IndexError, ValueError):
        return False


def prepare(obj: Any) -> None:
    """Before the object is loaded: its struct_ops maps are to be registered by links."""
    if not _kernel_has_links():
        return
    for bpf_map in struct_ops_maps(obj).values():
        lib.bpf_map__set_map_flags(bpf_map, lib.bpf_map__map_flags(bpf_map) | lib.WBPF_F_LINK)


def struct_ops_maps(obj: Any) -> Dict[str, Any]:
    return {name: m for name, m in maps_in(obj) if lib.bpf_map__type(m) == lib.BPF_MAP_TYPE_STRUCT_OPS}


def register(prog: Any, struct_ops: StructOps, obj: Any) -> Link:
    """Registers the struct_ops map named by the target (or the object's only one)."""
    if obj is None:
        raise HostCallError(errno.EINVAL, "struct_ops registration needs the program's object")
    target = struct_ops.map_name
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
    # On a BPF_F_LINK map this update only makes it ready; the link registers it.
    update = libbpf_link(lib.bpf_map__attach_struct_ops(bpf_map), "struct_ops registration")
    if not lib.bpf_map__map_flags(bpf_map) & lib.WBPF_F_LINK:
        return update
    fd = lib.bpf_link_create(lib.bpf_map__fd(bpf_map), 0, lib.WBPF_STRUCT_OPS, ffi.NULL)  # a struct_ops link
    if fd < 0:
        update.destroy()
        check_rc(fd, "struct_ops registration (link)")
    return MultiLink([FdLink(fd), update])
