"""Attaching a loaded program: one small module per kind of attach target.

A program's kind follows from the type libbpf loads it as (bpf_program__type, which
libbpf derives from the SEC() name), so every section libbpf knows is governed by the
rule of its real type: SEC("ksyscall/...") is a kprobe, SEC("uprobe.multi/...") a
uprobe. A target string is parsed once (targets.py) into the value the sandbox checks
and the kind's attach function takes (host_abi/ABI.md has the table). Every kind
returns a Link (links.py) whose destroy() undoes it. A new kind is a value and its
parse in targets.py, an attach function listed in KINDS, and its program type in
_BY_TYPE. A kind's module is imported when a program of that kind is first attached,
so that a run imports only what it attaches with (net.py and its sockets for network
kinds only)."""
from __future__ import annotations

import importlib
from typing import Any, Callable, NamedTuple

from .._native import ffi, lib
from . import tracing
from .cgroup import cgroup2_mount, resolve_cgroup
from .links import Link
from .targets import NoTarget, Target, parse

__all__ = ["KINDS", "AttachKind", "Link", "Target", "attach_program", "cgroup2_mount", "kind_of", "kind_of_program",
           "parse", "resolve_cgroup", "section_of"]

AttachFn = Callable[[Any, Any, Any], Link]  # (program, parsed target, struct bpf_object *) -> Link


class AttachKind(NamedTuple):
    name: str
    function: str  # "MODULE:FUNCTION" in this package, imported on first use
    syntax: str

    @property
    def attach(self) -> AttachFn:
        module, _, function = self.function.partition(":")
        return getattr(importlib.import_module(f".{module}", __name__), function)


KINDS = (
    AttachKind("xdp", "net:attach_xdp", "IFNAME[,mode=generic|native]"),
    AttachKind("tc", "net:attach_tc", "[tcx:]IFNAME:ingress|egress"),
    AttachKind("cgroup", "cgroup:attach_cgroup", "CGROUP_PATH"),
    AttachKind("sockmap", "net:attach_sockmap", "SOCKMAP_NAME"),
    AttachKind("socket", "net:attach_socket", "PID:FD | IFNAME"),
    AttachKind("uretprobe", "tracing:attach_uprobe", "BINARY:FUNCTION[+OFFSET][,pid=PID]"),
    AttachKind("uprobe", "tracing:attach_uprobe", "BINARY:FUNCTION[+OFFSET][,pid=PID]"),
    AttachKind("usdt", "tracing:attach_usdt", "BINARY:PROVIDER:NAME[,pid=PID]"),
    AttachKind("kretprobe", "tracing:attach_kprobe", "FUNCTION[+OFFSET]"),
    AttachKind("kprobe", "tracing:attach_kprobe", "FUNCTION[+OFFSET]"),
    AttachKind("perf_event", "tracing:attach_perf_event", "EVENT[,cpu=N|all][,freq=HZ|,period=N][,pid=PID]"),
    AttachKind("struct_ops", "struct_ops:register", "[MAP_NAME]"),
)

# libbpf's program type name -> attach kind; types not listed are "auto" (libbpf
# attaches them from the SEC() name alone: tracepoints, fentry/fexit, LSM...).
_BY_TYPE = {
    "xdp": "xdp", "sched_cls": "tc", "sched_act": "tc", "socket_filter": "socket", "sk_msg": "sockmap",
    "sk_skb": "sockmap", "perf_event": "perf_event", "struct_ops": "struct_ops",
    **{t: "cgroup" for t in ("cgroup_skb", "cgroup_sock", "cgroup_sock_addr", "sock_ops", "cgroup_device",
                             "cgroup_sysctl", "cgroup_sockopt")},
}
# Every section libbpf loads as a kprobe-type program, by what it probes. A kprobe-type
# section not listed (libbpf may add one) is a kprobe: governed by the strictest rule.
_KPROBE_FAMILIES = (("uretprobe", "uretprobe"), ("uprobe", "uprobe"), ("usdt", "usdt"),
                    ("kretprobe", "kretprobe"), ("kretsyscall", "kretprobe"))


def section_of(prog: Any) -> str:
    return ffi.string(lib.bpf_program__section_name(prog)).decode()


def kind_of(prog_type: str, section: str) -> str:
    """The attach kind of a program of libbpf type `prog_type` ("kprobe", "xdp"...)
    and SEC() name `section`: a KINDS name, "iter", or "auto"."""
    if prog_type == "kprobe":
        return next((kind for prefix, kind in _KPROBE_FAMILIES if section.startswith(prefix)), "kprobe")
    if prog_type == "tracing" and section.startswith("iter"):
        return "iter"
    return _BY_TYPE.get(prog_type, "auto")


def kind_of_program(prog: Any) -> str:
    """kind_of() for an opened struct bpf_program *."""
    name = lib.libbpf_bpf_prog_type_str(lib.bpf_program__type(prog))
    return kind_of(ffi.string(name).decode() if name != ffi.NULL else "", section_of(prog))


def attach_program(prog: Any, target: Target, obj: Any = None) -> Link:
    """Attaches prog to the parsed target (obj: its struct bpf_object *, needed by kinds
    that name a map of the object); returns a Link. Raises HostCallError."""
    kind = kind_of_program(prog)
    if isinstance(target, NoTarget):
        return tracing.attach_iter(prog) if kind == "iter" else tracing.attach_auto(prog)
    return next(k for k in KINDS if k.name == kind).attach(prog, target, obj)
