"""Attaching a loaded program: one small piece per kind of attach target.

A program's SEC() name decides the kind. With no target, libbpf auto-attaches from the
SEC() name; a target is interpreted by the kind that claims the section. New kinds are
added by writing one function and listing it in KINDS."""
import errno
import os
import socket
from dataclasses import dataclass
from typing import Any, Callable, Optional

from ._native import ffi, lib
from .errors import HostCallError

AttachFn = Callable[[Any, str], Any]  # (program, target) -> struct bpf_link *


def _link(link: Any, err: Any, what: str) -> Any:
    if link == ffi.NULL:
        code = -err[0] or errno.EINVAL
        raise HostCallError(code, f"{what}: {os.strerror(code)}")
    return link


def attach_auto(prog: Any, target: str) -> Any:
    err = ffi.new("int *")
    return _link(lib.wbpf_attach(prog, err), err, "auto-attach")


def attach_xdp(prog: Any, ifname: str) -> Any:
    try:
        ifindex = socket.if_nametoindex(ifname)
    except OSError:
        raise HostCallError(errno.ENODEV, f"no network interface named {ifname!r}") from None
    err = ffi.new("int *")
    return _link(lib.wbpf_attach_xdp(prog, ifindex, err), err, f"XDP attach to {ifname}")


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


def attach_cgroup(prog: Any, path: str) -> Any:
    resolved = resolve_cgroup(path)
    try:
        fd = os.open(resolved, os.O_RDONLY | os.O_DIRECTORY)
    except OSError as exc:
        raise HostCallError(exc.errno or errno.ENOENT, f"cannot open cgroup {resolved}: {exc.strerror}") from None
    try:
        err = ffi.new("int *")
        return _link(lib.wbpf_attach_cgroup(prog, fd, err), err, f"cgroup attach to {resolved}")
    finally:
        os.close(fd)  # the link holds its own reference to the cgroup


def attach_uprobe(prog: Any, target: str, retprobe: bool) -> Any:
    binary, sep, func = target.rpartition(":")
    if not sep or not binary or not func:
        raise HostCallError(errno.EINVAL, f"uprobe target {target!r} is not 'binary:function'")
    err = ffi.new("int *")
    link = lib.wbpf_attach_uprobe(prog, int(retprobe), -1, binary.encode(), func.encode(), 0, err)
    return _link(link, err, f"uprobe attach to {target}")


@dataclass(frozen=True)
class AttachKind:
    name: str
    claims: Callable[[str], bool]  # section name -> does this kind take a target for it
    attach: AttachFn


KINDS = (
    AttachKind("xdp", lambda sec: sec == "xdp" or sec.startswith("xdp/") or sec.startswith("xdp."), attach_xdp),
    AttachKind("cgroup", lambda sec: sec == "sockops" or sec.startswith("cgroup"), attach_cgroup),
    AttachKind("uretprobe", lambda sec: sec.startswith("uretprobe"), lambda p, t: attach_uprobe(p, t, True)),
    AttachKind("uprobe", lambda sec: sec.startswith("uprobe"), lambda p, t: attach_uprobe(p, t, False)),
)


def attach_program(prog: Any, target: str) -> Any:
    """Attaches prog; returns its struct bpf_link *. Raises HostCallError."""
    if not target:
        return attach_auto(prog, target)
    section = ffi.string(lib.bpf_program__section_name(prog)).decode()
    for kind in KINDS:
        if kind.claims(section):
            return kind.attach(prog, target)
    raise HostCallError(errno.EINVAL, f"section '{section}' takes no attach target (got {target!r})")
