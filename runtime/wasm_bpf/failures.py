"""Why a load or an attach failed, in one line, from libbpf's log and the kernel's
errno (bpf_object.py raises with these). A module of its own, imported at the first
failure: a run that loads and attaches does not compile its patterns (issue 19)."""
from __future__ import annotations

import contextlib
import errno
import os
import re
from typing import List

from . import _native
from .attach.targets import Kprobe, NoTarget, Uprobe, parse
from .errors import HostCallError
from .objspec import DeclaredProgram


def with_log(reason: str) -> str:
    """The reason plus libbpf's last own messages, which usually say what failed and why."""
    detail = _libbpf_detail(_native.take_libbpf_log())
    return f"{reason}: {detail}" if detail else reason


def _libbpf_detail(log: str) -> str:
    """libbpf's last two messages of its own, without the generic ones."""
    own = [line.strip() for line in log.splitlines() if line.startswith("libbpf:") and not _GENERIC.search(line)]
    return "; ".join(line[len("libbpf: "):] for line in own[-2:])


# A program libbpf failed to load, and one the kernel refused (its log follows this line).
_FAILED_PROGRAM = re.compile(r"libbpf: prog '([^']+)': (?:failed to load|BPF program load failed)")
_KERNEL_REFUSED = re.compile(r"libbpf: prog '([^']+)': BPF program load failed")
_UNKNOWN_SECTION = re.compile(r"libbpf: prog '([^']+)': missing BPF prog type, check ELF section name '([^']*)'")
_NO_KERNEL_FUNCTION = re.compile(r"libbpf: prog '([^']+)': failed to find kernel BTF type ID of '([^']+)'")
# libbpf's generic lines: the ones that follow the reason, and its RLIMIT_MEMLOCK guess.
_GENERIC = re.compile(r"failed to load( object|: -\d+)|PROG LOAD LOG|RLIMIT_MEMLOCK|Couldn't load trivial")
# Verifier lines that are not the reason: instructions, source lines, state, the summary.
_VERIFIER_TRACE = re.compile(r"^(\d+: |; |processed \d+ insns|from \d+ to \d+|R\d+=|verification time|"
                             r"stack depth|mark_precise|last_idx |regs=|parent |func#|\[\.\.\. |\s*$)")


def load_failure(err: int, log: str, programs: List[DeclaredProgram]) -> str:
    """Why a bpf_object__load failed, in one line, from libbpf's log: who refused
    (libbpf, the kernel's verifier, the kernel), which program, and the reason. The
    whole log is printed with -v."""
    from .probe import NETWORK_PROGRAM_TYPES, missing_privileges, unsupported_reason
    if err == errno.EPERM:  # root without capabilities, or a user: every bpf() call is refused
        problem = missing_privileges(networking=any(p.type in NETWORK_PROGRAM_TYPES for p in programs))
        if problem:
            return problem
    missing = _NO_KERNEL_FUNCTION.search(log)
    if missing:
        declared = next((p.section for p in programs if p.name == missing[1]), "")
        if declared.split("/")[0] == "tp_btf":  # a tracepoint, found by its BTF type
            return (f"libbpf refused program {missing[1]!r}: the kernel has no tracepoint {missing[2]!r} "
                    f"(SEC(\"{declared}\"); it is not in the kernel's BTF)")
        return (f"libbpf refused program {missing[1]!r}: the kernel has no function {missing[2]!r} to attach to "
                "(it is not in the kernel's BTF)")
    section = _UNKNOWN_SECTION.search(log)
    if section:
        return (f"libbpf refused program {section[1]!r}: SEC(\"{section[2]}\") is not a section name "
                "libbpf knows (see libbpf's program types: kprobe/FUNC, tracepoint/CAT/NAME, xdp, ...)")
    failed = _FAILED_PROGRAM.findall(log)
    name = failed[-1] if failed else ""
    reason = _verifier_reason(log, name) if name else ""
    if reason:
        return f"the kernel's verifier rejected program {name!r}: {reason} (-v shows the verifier's log)"
    if name and name in _KERNEL_REFUSED.findall(log):
        spec = next((p for p in programs if p.name == name), None)
        kind = spec.section.split("/")[0].split(".")[0] if spec else ""
        if spec and err == errno.EPERM and kind in ("fentry", "fexit", "fmod_ret", "lsm") \
                and unsupported_reason(kind):
            what = "LSM" if kind == "lsm" else kind
            return (f"the kernel refused program {name!r} (SEC(\"{spec.section}\")): this kernel does not "
                    f"allow {what} programs; see `wasm-bpf probe`")
        return f"the kernel refused program {name!r} ({_native.strerror(err)})"
    detail = _libbpf_detail(log)
    who = "libbpf" if name else "the kernel"  # a program libbpf failed before the kernel saw it
    return f"{who} refused it ({_native.strerror(err)})" + (f": {detail}" if detail else "") + \
        " (-v shows libbpf's log)"


def _verifier_reason(log: str, program: str) -> str:
    """The last lines of the verifier's log of `program` that say why, not what it ran."""
    begin = f"libbpf: prog '{program}': -- BEGIN PROG LOAD LOG --"
    if begin not in log:
        return ""
    text = log.split(begin, 1)[1].split("-- END PROG LOAD LOG --", 1)[0]
    lines = text.strip().splitlines()
    reasons: List[str] = []
    for line in reversed(lines):
        if _VERIFIER_TRACE.match(line):
            if reasons:
                break
            continue
        reasons.insert(0, line.strip())
    return "; ".join(reasons[-2:])


_TRACEFS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")


def attach_failure(kind: str, section: str, parsed: object, shown: str, exc: HostCallError) -> str:
    """exc's message, naming the tracepoint, kernel function or uprobe symbol the
    attach asked for when it does not exist (the kernel only says ENOENT). parsed is
    the target the attach took; shown, the guest's text, only for the message. A probe
    kind this kernel has no support for at all says so instead (kprobes without
    CONFIG_KPROBES fail with a bare ENOENT)."""
    probed = {"kprobe": "kprobe", "kretprobe": "kprobe", "uprobe": "uprobe", "uretprobe": "uprobe",
              "usdt": "uprobe"}.get(kind)
    if probed:
        from .probe import unsupported_reason

        reason = unsupported_reason(probed)
        if reason:
            return f"this kernel cannot attach {probed}s: {reason}; see `wasm-bpf probe`"
    if exc.errno != errno.ENOENT:
        return str(exc)
    if isinstance(parsed, NoTarget) and kind in ("uprobe", "uretprobe", "kprobe", "kretprobe") and "/" in section:
        shown = section.split("/", 1)[1]  # libbpf attached by the SEC() name: read it the same way
        with contextlib.suppress(HostCallError):
            parsed = parse(kind, shown)
    if isinstance(parsed, Kprobe):
        known = next((f"{d}/available_filter_functions" for d in _TRACEFS
                      if os.path.exists(f"{d}/available_filter_functions")), None)
        try:
            with open(known or "") as f:  # unreadable (no ftrace) or absent: no better message
                listed = any(line.split()[0] == parsed.function for line in f if line.strip())
        except OSError:
            listed = True
        if not listed:
            return f"kernel function {parsed.function!r} does not exist or cannot be probed (see {known})"
    elif isinstance(parsed, Uprobe) and parsed.function:
        return f"no function {parsed.function!r} in {shown or section} ({exc})"
    else:
        kind, _, where = section.partition("/")
        if kind in ("tp", "tracepoint") and where.count("/") == 1 \
                and not any(os.path.isdir(f"{d}/events/{where}") for d in _TRACEFS):
            return f"tracepoint {where!r} does not exist (see /sys/kernel/tracing/events/)"
    return str(exc)
