"""What this kernel supports: program types, attach kinds and map types, and why not
where it does not (`wasm-bpf probe`). Program and map types come from libbpf's
probes; attach kinds are checked by loading a two-instruction program the way the
kind needs it, or by looking for the kernel interface the kind uses, so a refusal
carries the kernel's errno."""
import errno
import functools
import os
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Callable, Dict, List, Optional

from ._native import ffi, lib

if TYPE_CHECKING:
    import click

_RETURN_0 = bytes.fromhex("b700000000000000" "9500000000000000")  # r0 = 0; exit



# Capability numbers (linux/capability.h).
CAP_NET_ADMIN, CAP_SYS_ADMIN, CAP_PERFMON, CAP_BPF = 12, 21, 38, 39
# Program types whose load or attach also needs CAP_NET_ADMIN (libbpf's names).
NETWORK_PROGRAM_TYPES = frozenset((
    "socket_filter", "sched_cls", "sched_act", "xdp", "cgroup_skb", "cgroup_sock", "lwt_in", "lwt_out",
    "lwt_xmit", "sock_ops", "sk_skb", "cgroup_sock_addr", "lwt_seg6local", "sk_msg", "flow_dissector",
    "cgroup_sockopt", "sk_reuseport", "sk_lookup", "netfilter"))


def _effective_capabilities() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("CapEff:"):
                return int(line.split()[1], 16)
    return 0


def missing_privileges(networking: bool = False) -> str:
    """Empty when this process may load (and, with networking, attach) BPF programs,
    else one line naming what it needs."""
    caps = _effective_capabilities()
    wanted = {"CAP_BPF": CAP_BPF, "CAP_PERFMON": CAP_PERFMON}
    if networking:
        wanted["CAP_NET_ADMIN"] = CAP_NET_ADMIN
    lacking = [name for name, cap in wanted.items() if not caps >> cap & 1]
    if caps >> CAP_SYS_ADMIN & 1:  # it stands for CAP_BPF and CAP_PERFMON
        lacking = [name for name in lacking if name == "CAP_NET_ADMIN"]
    if not lacking:
        return ""
    return ("BPF needs root, or CAP_BPF + CAP_PERFMON (+ CAP_NET_ADMIN for networking programs); "
            f"this process lacks {', '.join(lacking)}")


@dataclass(frozen=True)
class Result:
    name: str
    supported: bool
    reason: str = ""  # why not (empty when supported)


def _load(prog_type: int, attach_type: int = 0, btf_func: str = "") -> int:
    """Loads r0 = 0; exit as prog_type; returns the fd or -errno."""
    opts = ffi.new("struct bpf_prog_load_opts *")
    opts.sz = ffi.sizeof("struct bpf_prog_load_opts")
    opts.expected_attach_type = attach_type
    if btf_func:
        btf = lib.btf__load_vmlinux_btf()
        if btf == ffi.NULL:
            return -errno.ENOENT
        btf_id = lib.btf__find_by_name_kind(btf, btf_func.encode(), lib.BTF_KIND_FUNC)
        lib.btf__free(btf)
        if btf_id < 0:
            return btf_id
        opts.attach_btf_id = btf_id
    insns = ffi.from_buffer(_RETURN_0)
    return int(lib.bpf_prog_load(prog_type, b"wbpf_probe", b"GPL", insns, 2, opts))


def _load_check(what: str, prog_type: int, attach_type: int = 0, btf_func: str = "") -> str:
    fd = _load(prog_type, attach_type, btf_func)
    if fd >= 0:
        os.close(fd)
        return ""
    return f"the kernel refuses to load {what} programs (BPF_PROG_LOAD: {os.strerror(-fd)})"


def _pmu(name: str) -> str:
    if os.path.exists(f"/sys/bus/event_source/devices/{name}"):
        return ""
    tracefs = next((d for d in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")
                    if os.path.exists(f"{d}/{name}_events")), None)
    if tracefs:
        return ""
    return (f"the kernel has no {name} PMU (/sys/bus/event_source/devices/{name}) and no "
            f"tracefs {name}_events (CONFIG_{name.upper()}S is not set)")


def _tracepoints() -> str:
    if any(os.path.isdir(f"{d}/events") for d in ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")):
        return ""
    return "tracefs is not mounted (mount -t tracefs nodev /sys/kernel/tracing)"


def _hardware_perf() -> str:
    from .attach.tracing import perf_event_open
    from .errors import HostCallError
    try:
        os.close(perf_event_open("cycles", 0, -1, 0, 100000))
        return ""
    except HostCallError as exc:
        return f"no hardware perf events: {exc}"


def _tcx() -> str:
    fd = _load(lib.BPF_PROG_TYPE_SCHED_CLS)
    if fd < 0:
        return f"cannot load a sched_cls program: {os.strerror(-fd)}"
    try:
        import socket
        link = lib.bpf_link_create(fd, socket.if_nametoindex("lo"), lib.WBPF_TCX_INGRESS, ffi.NULL)
        if link < 0:
            return f"the kernel refuses tcx links (BPF_LINK_CREATE: {os.strerror(-link)})"
        os.close(link)
        return ""
    finally:
        os.close(fd)


def _cgroup2() -> str:
    from .attach.cgroup import cgroup2_mount
    return "" if cgroup2_mount() else "cgroup v2 is not mounted"


def _prog_type(type_id: int) -> Callable[[], str]:
    def check() -> str:
        rc = lib.libbpf_probe_bpf_prog_type(type_id, ffi.NULL)
        name = ffi.string(lib.libbpf_bpf_prog_type_str(type_id)).decode()
        return "" if rc == 1 else f"the kernel does not load {name} programs (libbpf probe: {rc})"
    return check


ATTACH_CHECKS: Dict[str, Callable[[], str]] = {
    "tracepoint": _tracepoints,
    "raw_tp": _prog_type(lib.BPF_PROG_TYPE_RAW_TRACEPOINT),
    "tp_btf": lambda: "" if os.path.exists("/sys/kernel/btf/vmlinux") else "the kernel has no BTF",
    "uprobe": lambda: _pmu("uprobe"),
    "usdt": lambda: _pmu("uprobe"),
    "kprobe": lambda: _pmu("kprobe"),
    "fentry": lambda: _load_check("fentry", lib.BPF_PROG_TYPE_TRACING, lib.BPF_TRACE_FENTRY, "do_unlinkat"),
    "fexit": lambda: _load_check("fexit", lib.BPF_PROG_TYPE_TRACING, lib.BPF_TRACE_FEXIT, "do_unlinkat"),
    "fmod_ret": lambda: _load_check("fmod_ret", lib.BPF_PROG_TYPE_TRACING, lib.BPF_MODIFY_RETURN, "security_file_open"),
    "lsm": lambda: _load_check("lsm", lib.BPF_PROG_TYPE_LSM, lib.BPF_LSM_MAC, "bpf_lsm_file_open"),
    "xdp": _prog_type(lib.BPF_PROG_TYPE_XDP),
    "tc": _prog_type(lib.BPF_PROG_TYPE_SCHED_CLS),
    "tcx": _tcx,
    "cgroup": _cgroup2,
    "sk_msg": _prog_type(lib.BPF_PROG_TYPE_SK_MSG),
    "sk_skb": _prog_type(lib.BPF_PROG_TYPE_SK_SKB),
    "socket": _prog_type(lib.BPF_PROG_TYPE_SOCKET_FILTER),
    "perf_event": _prog_type(lib.BPF_PROG_TYPE_PERF_EVENT),
    "perf_event_hardware": _hardware_perf,
    "iter": lambda: _load_check("iter", lib.BPF_PROG_TYPE_TRACING, lib.BPF_TRACE_ITER, "bpf_iter_task"),
    "struct_ops": _prog_type(lib.BPF_PROG_TYPE_STRUCT_OPS),
}


@functools.lru_cache(maxsize=None)
def unsupported_reason(kind: str) -> Optional[str]:
    """None when attach kind `kind` works here, else why not."""
    return ATTACH_CHECKS[kind]() or None


def _types(str_fn: Callable[[int], object], probe: Callable[[int, object], int], what: str) -> List[Result]:
    results = []
    for type_id in range(1, 64):
        name_p = str_fn(type_id)
        if name_p == ffi.NULL:
            break
        name = ffi.string(name_p).decode()
        rc = probe(type_id, ffi.NULL)
        reason = "" if rc == 1 else (f"the kernel does not support this {what} type" if rc == 0
                                     else f"probe failed: {os.strerror(-rc)}")
        results.append(Result(name, rc == 1, reason))
    return results


def program_types() -> List[Result]:
    return _types(lib.libbpf_bpf_prog_type_str, lib.libbpf_probe_bpf_prog_type, "program")


def map_types() -> List[Result]:
    return _types(lib.libbpf_bpf_map_type_str, lib.libbpf_probe_bpf_map_type, "map")


def attach_kinds() -> List[Result]:
    return [Result(k, not unsupported_reason(k), unsupported_reason(k) or "") for k in ATTACH_CHECKS]


def report() -> Dict[str, List[Result]]:
    return {"program types": program_types(), "attach kinds": attach_kinds(), "map types": map_types()}


def report_text(results: Dict[str, List[Result]]) -> str:
    lines = []
    for title, rows in results.items():
        lines.append(f"{title}:")
        for r in rows:
            lines.append(f"  {r.name:<26} {'yes' if r.supported else 'no'}" + (f"  ({r.reason})" if r.reason else ""))
    return "\n".join(lines)


def _command() -> "click.Command":
    import json

    import click

    @click.command("probe", short_help="Show which program types, attach kinds and map types work here.")
    @click.option("--kind", metavar="KIND", help="Check one attach kind; exit status 1 if unsupported.")
    @click.option("--json", "as_json", is_flag=True,
                  help='One JSON object: {"program types": [{"name", "supported", "reason"}...], ...}.')
    def probe(kind: Optional[str], as_json: bool) -> None:
        """Print which program types, attach kinds and map types this kernel supports,
        and why not where it does not. Needs the privileges of a BPF load (root, or
        CAP_BPF + CAP_PERFMON + CAP_NET_ADMIN)."""
        if kind and kind not in ATTACH_CHECKS:
            raise click.BadParameter(f"unknown kind (kinds: {', '.join(ATTACH_CHECKS)})", param_hint="--kind")
        problem = missing_privileges(networking=True)
        if problem:  # every load would fail with EPERM: that says nothing about the kernel
            click.echo(f"wasm-bpf: error: cannot probe: {problem}", err=True)
            raise SystemExit(1)
        if kind:
            reason = unsupported_reason(kind)
            if as_json:
                click.echo(json.dumps(asdict(Result(kind, not reason, reason or ""))))
            else:
                click.echo(f"{kind}: " + (f"no ({reason})" if reason else "yes"))
            raise SystemExit(1 if reason else 0)
        results = report()
        if as_json:
            click.echo(json.dumps({title: [asdict(r) for r in rows] for title, rows in results.items()}, indent=1))
        else:
            click.echo(report_text(results))

    return probe


probe_command = _command()
