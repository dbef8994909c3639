"""Target "attach": attach target strings, SEC() names and policies, through the
sandbox's own check (Sandbox.check_target), in this process (no kernel call).

A temporary tree holds a grant (files and directories whose names contain `,`, `:`
and `,pid=`, symlinks that stay inside and that lead out, absolute and relative) and
a directory outside it. Targets are drawn from those names joined with `/`, `..`,
`:`, `,` and options. Properties:
- nothing outside a grant is opened: every file hostpaths opens (recorded at
  open_beneath) resolves inside a granted directory;
- the check and the attach see the same value: the value yielded for the attach is
  parse(kind, text) with only the host file replaced by the fd that was opened, and
  that fd is the file the policy check was shown (its resolved path);
- a SEC() name is governed by its real program type: kind_of() of libbpf's type for
  it (libbpf_prog_type_by_name) is a kprobe kind for every kprobe-type section, and a
  policy without that kind refuses it;
- a policy text is read or refused with PolicyError, nothing else."""
import os
import tempfile
from pathlib import Path
from typing import Any, Callable, Dict, List, Tuple

from hypothesis import strategies as st

from .common import Finding, Stats, run_for
from .subproc import normalize

KINDS = ("uprobe", "uretprobe", "usdt", "cgroup", "xdp", "tc", "socket", "kprobe", "perf_event", "sockmap",
         "struct_ops", "auto", "iter")
NAMES = ("bin", "a,b", "c:d", "d,pid=1", "e,x", "in-link", "out-abs", "out-rel", "dir-link", "..", ".", "",
         "outside", "nothing", "libc.so.6")
SEC_PREFIXES = ("kprobe", "kretprobe", "ksyscall", "kretsyscall", "kprobe.multi", "kretprobe.multi", "uprobe",
                "uretprobe", "uprobe.s", "uprobe.multi", "uretprobe.multi.s", "usdt", "usdt.s", "tp", "tracepoint",
                "raw_tp", "tp_btf", "fentry", "fentry.s", "fexit", "fmod_ret", "lsm", "lsm.s", "lsm_cgroup", "iter",
                "iter.s", "xdp", "xdp.frags", "tc", "tcx/ingress", "classifier", "socket", "sk_msg", "sk_skb",
                "sockops", "cgroup_skb/ingress", "cgroup/connect4", "cgroup/dev", "cgroup/sysctl", "perf_event",
                "struct_ops", "struct_ops.s", "syscall", "netfilter", "flow_dissector", "sk_lookup", "junk")
POLICY_LINES = ("[programs]", "[attach]", "[maps]", "[files]", "[helpers]", "[nope]", 'types = ["*"]',
                'types = ["kprobe", "xdp"]', 'kinds = ["auto"]', 'kinds = ["kprobe", "usdt"]', 'processes = ["self"]',
                'processes = ["nginx", "1"]', 'allowed = ["*", "bpf_send_signal"]', 'allowed = ["bpf_nope"]',
                'allowed = "x"', 'binaries = ["rel"]', 'binaries = ["/usr/bin/*"]', 'dirs = ["<DIR>"]',
                'access = "read-only"', 'access = "rw"', 'read-only = ["m"]', 'read-write = ["m"]', "x = 1", "[[a]]",
                "= =", '"')


def build_tree(root: Path) -> Tuple[Path, Path]:
    grant, outside = root / "grant", root / "outside"
    for d in (grant / "a,b", grant / "c:d", grant / "d,pid=1", grant / "e,x", outside):
        d.mkdir(parents=True)
    for d in (grant, grant / "a,b", grant / "c:d", grant / "d,pid=1", outside):
        (d / "bin").write_bytes(b"\x7fELF")
    (grant / "in-link").symlink_to("a,b/bin")
    (grant / "out-abs").symlink_to(outside / "bin")
    (grant / "out-rel").symlink_to("../outside/bin")
    (grant / "dir-link").symlink_to(outside)
    return grant, outside


def targets(grant: Path) -> Any:
    name = st.sampled_from(NAMES)
    part = st.one_of(name, name, name, st.text(alphabet=",:/.=+ab0", max_size=6))  # mostly names in the tree
    path = st.lists(part, min_size=1, max_size=5).map("/".join)
    prefix = st.sampled_from([f"{grant}/", f"{grant}/", "", "/", f"{grant}/../"])
    tail = st.sampled_from([":main", ":main", ":prov:name", ":prov:name", "", ":0x10", ":main+4", ":a:b:c",
                            ":ingress", ":egress"])
    options = st.lists(st.sampled_from([",pid=1", ",pid=x", ",mode=generic", ",cpu=all", ",freq=9", ",x=1", ","]),
                       max_size=3).map("".join)
    return st.tuples(prefix, path, tail, options).map("".join) | st.text(max_size=40)


def fuzz(seconds: float, crash_dir: Path) -> Stats:
    from wasm_bpf import hostpaths
    from wasm_bpf._native import ffi, lib
    from wasm_bpf.attach import kind_of
    from wasm_bpf.attach.targets import Cgroup, Uprobe, Usdt, parse
    from wasm_bpf.errors import HostCallError
    from wasm_bpf.policy import Policy, PolicyError, PolicyRefusal, program_type_name
    from wasm_bpf.sandbox import Sandbox

    stats = Stats("attach")
    opened: List[str] = []
    checked: List[dict] = []
    open_beneath, check_attach = hostpaths.open_beneath, Policy.check_attach

    def recording_open(dir_fd: int, rel: str, flags: int) -> int:
        fd = open_beneath(dir_fd, rel, flags)
        opened.append(os.readlink(f"/proc/self/fd/{fd}"))
        return fd

    def recording_check(self: Policy, prog: str, kind: str, **names: Any) -> None:
        checked.append(names)
        check_attach(self, prog, kind, **names)

    def finding(kind: str, detail: str) -> None:
        stats.findings.append(Finding(kind, detail))

    with tempfile.TemporaryDirectory() as tmp:
        grant, _ = build_tree(Path(tmp))
        granted = os.path.realpath(grant)
        sandbox = Sandbox(dirs=[(str(grant), str(grant))])

        def one_target(value: Tuple[str, str]) -> None:
            kind, text = value
            opened.clear()
            checked.clear()
            try:
                with sandbox.check_target("p", kind, kind, text) as target:
                    expected = parse(kind, text)
                    if isinstance(target, (Uprobe, Usdt)) and isinstance(expected, (Uprobe, Usdt)):
                        real = os.readlink(target.binary)
                        if type(target) is not type(expected) or target._replace(binary=expected.binary) != expected:
                            finding("mismatch", f"{kind} {text!r}: attach sees {target}, parsed {expected}")
                        if real != checked[-1]["binary"][1]:
                            finding("mismatch", f"{kind} {text!r}: attaches {real}, checked {checked[-1]}")
                    elif isinstance(target, Cgroup):
                        if os.readlink(f"/proc/self/fd/{target.fd}") != checked[-1]["cgroup"][1]:
                            finding("mismatch", f"{kind} {text!r}: cgroup fd is not what was checked")
                    elif type(target) is not type(expected) or target != expected:
                        finding("mismatch", f"{kind} {text!r}: attach sees {target}, parsed {expected}")
                stats.outcome(f"ok: {kind} {type(target).__name__}")
            except (HostCallError, PolicyRefusal) as exc:
                stats.outcome(f"{kind}: {normalize(str(exc))}")
            except Exception as exc:  # noqa: BLE001 - any other exception is a finding
                finding("python exception", f"{kind} {text!r}: {type(exc).__name__}: {exc}")
            for path in opened:
                if path != granted and not path.startswith(granted + "/"):
                    finding("escape", f"{kind} {text!r} opened {path}, outside the grant {granted}")

        def one_section(section: str) -> None:
            prog_type, attach_type = ffi.new("int *"), ffi.new("int *")
            if lib.libbpf_prog_type_by_name(section.encode(), prog_type, attach_type) < 0:
                stats.outcome("section: unknown to libbpf")
                return
            type_name = program_type_name(prog_type[0])
            kind = kind_of(type_name, section)
            if type_name == "kprobe" and kind not in ("kprobe", "kretprobe", "uprobe", "uretprobe", "usdt"):
                finding("misclassified", f"SEC({section!r}) loads as a kprobe but is kind {kind}")
            others = [k for k in KINDS if k != kind]
            strict = Policy.parse(f"[attach]\nkinds = {others!r}\n".replace("'", '"'), "fuzz")
            try:
                strict.check_attach("p", kind)
                finding("not refused", f"SEC({section!r}) kind {kind} passed a policy without it")
            except PolicyRefusal:
                stats.outcome(f"ok: section {type_name} -> {kind}")

        def one_policy(text: str) -> None:
            try:
                Policy.parse(text, "fuzz")
                stats.outcome("ok: policy")
            except PolicyError as exc:
                stats.outcome(f"policy: {normalize(str(exc))}")
            except Exception as exc:  # noqa: BLE001
                finding("python exception", f"policy {text!r}: {type(exc).__name__}: {exc}")

        bodies: Dict[str, Callable[[Any], None]] = {"target": one_target, "section": one_section,
                                                     "policy": one_policy}
        strategy = (st.tuples(st.just("target"), st.tuples(st.sampled_from(KINDS), targets(grant)))
                    | st.tuples(st.just("section"), st.tuples(st.sampled_from(SEC_PREFIXES),
                                                              st.sampled_from(["", "/", "/x", "/a/b", "+"]))
                                .map("".join))
                    | st.tuples(st.just("policy"), st.lists(st.sampled_from(POLICY_LINES), max_size=8)
                                .map("\n".join)))
        hostpaths.open_beneath, Policy.check_attach = recording_open, recording_check  # type: ignore
        try:
            run_for(seconds, strategy, lambda pair: bodies[pair[0]](pair[1]), stats)
        finally:
            hostpaths.open_beneath, Policy.check_attach = open_beneath, check_attach  # type: ignore
    return stats
