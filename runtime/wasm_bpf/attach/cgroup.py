"""Cgroup programs of every kind (cgroup_skb, cgroup/sock*, cgroup/connect*, sockops,
cgroup/sysctl, cgroup/dev, cgroup/{get,set}sockopt): target = a cgroup v2 directory."""
import errno
import os
from typing import Any, Optional

from .._native import lib
from ..errors import HostCallError
from .common import shim_link
from .links import Link


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


def claims(section: str) -> bool:
    return section == "sockops" or section.startswith("cgroup")


def attach_cgroup(prog: Any, path: str, obj: Any = None) -> Link:
    resolved = resolve_cgroup(path)
    try:
        fd = os.open(resolved, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise HostCallError(exc.errno or errno.ENOENT, f"cannot open cgroup {resolved}: {exc.strerror}") from None
    try:
        return shim_link(lib.wbpf_attach_cgroup, prog, fd, what=f"cgroup attach to {resolved}")
    finally:
        os.close(fd)  # the link holds its own reference to the cgroup
