"""Cgroup programs of every kind (cgroup_skb, cgroup/sock*, cgroup/connect*, sockops,
cgroup/sysctl, cgroup/dev, cgroup/{get,set}sockopt): target = a cgroup v2 directory."""
from __future__ import annotations

import errno
import os
from typing import Any, Optional

from .._native import lib
from ..errors import HostCallError
from .common import shim_link
from .links import Link
from .targets import Cgroup


def cgroup2_mount() -> Optional[str]:
    """Where cgroup v2 is mounted (/sys/fs/cgroup, or /sys/fs/cgroup/unified on hybrid systems)."""
    with open("/proc/self/mounts") as mounts:
        for line in mounts:
            fields = line.split()
            if len(fields) > 2 and fields[2] == "cgroup2":
                return fields[1].replace("\\040", " ")
    return None


def resolve_cgroup(path: str) -> str:
    """The cgroup v2 directory a guest's path means: a path on the v2 mount as it is;
    a path under /sys/fs/cgroup that is not (hybrid layout) or a relative path, under
    the v2 root, so the upstream examples' "/sys/fs/cgroup/" is the v2 root."""
    root = cgroup2_mount()
    if root is None:
        raise HostCallError(errno.ENOENT, "cgroup v2 is not mounted (mount -t cgroup2 none /sys/fs/cgroup/unified)")
    real = os.path.realpath(path)
    if os.path.isabs(path) and (real == root or real.startswith(root.rstrip("/") + "/")):
        return path
    rel = os.path.relpath(path, "/sys/fs/cgroup") if path.startswith("/sys/fs/cgroup") else path.lstrip("/")
    return os.path.normpath(os.path.join(root, rel))


def attach_cgroup(prog: Any, target: Cgroup, obj: Any = None) -> Link:
    """target.fd: the cgroup directory the sandbox opened (hostpaths.py)."""
    if target.fd < 0:
        raise HostCallError(errno.EBADF, f"cgroup {target.path!r} was not opened")
    return shim_link(lib.wbpf_attach_cgroup, prog, target.fd, what=f"cgroup attach to {target.path}")
