"""Attaching a loaded program: one small module per kind of attach target.

A program's SEC() name decides the kind. With no target, libbpf auto-attaches from the
SEC() name; a target is read by the kind that claims the section (host_abi/ABI.md has
the table). Every kind returns a Link (links.py) whose destroy() undoes it. New kinds
are added by writing one function and listing it in KINDS."""
import errno
from dataclasses import dataclass
from typing import Any, Callable

from .._native import ffi, lib
from ..errors import HostCallError
from . import cgroup, net, struct_ops, tracing
from .cgroup import cgroup2_mount, resolve_cgroup
from .links import Link

__all__ = ["KINDS", "AttachKind", "Link", "attach_program", "cgroup2_mount", "kind_of", "resolve_cgroup",
           "section_of"]

AttachFn = Callable[[Any, str, Any], Link]  # (program, target, struct bpf_object *) -> Link


@dataclass(frozen=True)
class AttachKind:
    name: str
    claims: Callable[[str], bool]  # section name -> does this kind take a target for it
    attach: AttachFn
    syntax: str


KINDS = (
    AttachKind("xdp", net.claims_xdp, net.attach_xdp, "IFNAME[,mode=generic|native]"),
    AttachKind("tc", net.claims_tc, net.attach_tc, "[tcx:]IFNAME:ingress|egress"),
    AttachKind("cgroup", cgroup.claims, cgroup.attach_cgroup, "CGROUP_PATH"),
    AttachKind("sockmap", net.claims_sockmap, net.attach_sockmap, "SOCKMAP_NAME"),
    AttachKind("socket", net.claims_socket, net.attach_socket, "PID:FD | IFNAME"),
    AttachKind("uretprobe", lambda s: s.startswith("uretprobe"),
               lambda p, t, o: tracing.attach_uprobe(p, t, True), "BINARY:FUNCTION[+OFFSET][,pid=PID]"),
    AttachKind("uprobe", lambda s: s.startswith("uprobe"),
               lambda p, t, o: tracing.attach_uprobe(p, t, False), "BINARY:FUNCTION[+OFFSET][,pid=PID]"),
    AttachKind("usdt", lambda s: s.startswith("usdt"), tracing.attach_usdt, "BINARY:PROVIDER:NAME[,pid=PID]"),
    AttachKind("kretprobe", lambda s: s.startswith("kretprobe"),
               lambda p, t, o: tracing.attach_kprobe(p, t, True), "FUNCTION[+OFFSET]"),
    AttachKind("kprobe", lambda s: s.startswith("kprobe"),
               lambda p, t, o: tracing.attach_kprobe(p, t, False), "FUNCTION[+OFFSET]"),
    AttachKind("perf_event", lambda s: s.startswith("perf_event"), tracing.attach_perf_event,
               "EVENT[,cpu=N|all][,freq=HZ|,period=N][,pid=PID]"),
    AttachKind("struct_ops", struct_ops.claims, lambda p, t, o: struct_ops.register(o, t), "[MAP_NAME]"),
)


def section_of(prog: Any) -> str:
    return ffi.string(lib.bpf_program__section_name(prog)).decode()


def kind_of(section: str) -> str:
    """The attach kind of a program by its SEC() name: a KINDS name, "iter", or "auto"
    (sections only libbpf's auto-attach serves: tracepoints, fentry, lsm...)."""
    if struct_ops.claims(section):
        return "struct_ops"
    if section.startswith("iter"):
        return "iter"
    return next((kind.name for kind in KINDS if kind.claims(section)), "auto")


def attach_program(prog: Any, target: str, obj: Any = None) -> Link:
    """Attaches prog (obj: its struct bpf_object *, needed by kinds that name a map of
    the object); returns a Link. Raises HostCallError."""
    section = section_of(prog)
    kind = kind_of(section)
    if kind == "struct_ops":
        if obj is None:
            raise HostCallError(errno.EINVAL, "struct_ops registration needs the program's object")
        return struct_ops.register(obj, target)
    if not target:
        return tracing.attach_iter(prog) if kind == "iter" else tracing.attach_auto(prog)
    for attach_kind in KINDS:
        if attach_kind.name == kind:
            return attach_kind.attach(prog, target, obj)
    raise HostCallError(errno.EINVAL, f"section '{section}' takes no attach target (got {target!r})")
