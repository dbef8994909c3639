"""Which programs of an object run, the way libbpf-tools' user space chooses.

Tools ship several variants of one probe and load only the one the kernel supports:
a `tp_btf/X` program and its `raw_tp/X` twin (and sometimes `tp/CAT/X`), `fentry/F`
and `kprobe/F` (`fexit/F` and `kretprobe/F`). Running every variant counts each
event once per variant, and a variant this kernel lacks aborts the load. So:

 1. `--only PROG...` runs exactly those programs (no rule below applies);
    `--skip PROG...` leaves those out;
 2. a program whose event does not exist here is skipped: a tracepoint absent from
    tracefs, a `tp_btf`/`raw_tp` event without `btf_trace_X` in the kernel's BTF, an
    `fentry`/`fexit` function absent from the kernel's BTF, a kprobe function absent
    from /proc/kallsyms;
 3. of the programs left on one event, only the preferred flavour runs:
    tp_btf > raw_tp > tp, fentry > kprobe, fexit > kretprobe. Several programs of
    the same flavour on one event all run (they are not variants of each other).
Each skip is reported under -v; a program skipped because this kernel cannot run its
kind (no kprobes, fentry refused) while no variant of its event runs is reported
without -v too, as a warning: that part of the tool does nothing here. When no
program's event exists here, rule 2 is dropped: the preferred variants are loaded and their failure names what is missing
("this kernel does not allow fentry programs", "the kernel has no function X")."""
from __future__ import annotations

import os
from dataclasses import dataclass, field
from typing import Dict, List, Optional, Sequence, Set, Tuple

from wasm_bpf import probe
from wasm_bpf_sdk import btf as B

from .spec import ProgramSpec, SpecError

# section prefix -> (event family, flavour rank: lower is preferred)
_FLAVOURS: Sequence[Tuple[str, str, int]] = (
    ("tp_btf/", "tp", 0), ("raw_tp/", "tp", 1), ("raw_tracepoint/", "tp", 1), ("raw_tp.w/", "tp", 1),
    ("raw_tracepoint.w/", "tp", 1), ("tp/", "tp", 2), ("tracepoint/", "tp", 2),
    ("fentry/", "entry", 0), ("fentry.s/", "entry", 0), ("kprobe/", "entry", 1),
    ("fexit/", "exit", 0), ("fexit.s/", "exit", 0), ("kretprobe/", "exit", 1),
)
_TRACEFS = ("/sys/kernel/tracing", "/sys/kernel/debug/tracing")


@dataclass(frozen=True)
class Variant:
    family: str  # "tp", "entry" or "exit"
    event: str  # tracepoint name (no category) or kernel function
    flavour: str  # the section prefix, without "/"
    rank: int
    category: str = ""  # tp/CAT/NAME's CAT


def variant_of(section: str) -> Optional[Variant]:
    """The event a program's SEC() names, when it is one that has variants."""
    for prefix, family, rank in _FLAVOURS:
        if section.startswith(prefix):
            rest = section[len(prefix):]
            if not rest:
                return None
            if family == "tp" and rank == 2:
                cat, _, name = rest.partition("/")
                return Variant(family, name, prefix[:-1], rank, cat) if name else None
            if family != "tp":
                rest = rest.split("+", 1)[0].split(":")[-1]  # kprobe/F+OFF, fentry/MODULE:F
            return Variant(family, rest, prefix[:-1], rank)
    return None


class Kernel:
    """What this kernel offers, each source read once and only when asked."""

    def __init__(self) -> None:
        self._btf: Optional[Tuple[Set[str], Set[str]]] = None
        self._kallsyms: Optional[Set[str]] = None
        self._tracefs = next((d for d in _TRACEFS if os.path.isdir(os.path.join(d, "events"))), "")

    def _btf_names(self) -> Tuple[Set[str], Set[str]]:
        """(functions, btf_trace_* typedefs) of the kernel's BTF; empty without one."""
        if self._btf is None:
            funcs: Set[str] = set()
            traces: Set[str] = set()
            try:
                with B.Btf.vmlinux() as btf:
                    for tid in btf.ids():
                        kind = btf.kind(tid)
                        if kind == B.FUNC:
                            funcs.add(btf.name(tid))
                        elif kind == B.TYPEDEF:
                            name = btf.name(tid)
                            if name.startswith("btf_trace_"):
                                traces.add(name[len("btf_trace_"):])
            except B.BtfError:
                pass
            self._btf = (funcs, traces)
        return self._btf

    def _symbols(self) -> Set[str]:
        if self._kallsyms is None:
            names: Set[str] = set()
            try:
                with open("/proc/kallsyms") as f:
                    for line in f:
                        parts = line.split()
                        if len(parts) >= 3 and parts[1] in "tTwW":
                            names.add(parts[2])
            except OSError:
                pass
            self._kallsyms = names
        return self._kallsyms

    def absent(self, v: Variant) -> str:
        """Why v's event does not exist here ("" when it does, or cannot be told)."""
        if v.flavour in ("tp", "tracepoint"):
            if self._tracefs and not os.path.isdir(os.path.join(self._tracefs, "events", v.category, v.event)):
                return f"no tracepoint {v.category}/{v.event} on this kernel"
            return ""
        funcs, traces = self._btf_names()
        if v.family == "tp":
            if v.flavour == "tp_btf" and not traces:
                return "the kernel has no BTF (/sys/kernel/btf/vmlinux), which tp_btf needs"
            if traces and v.event not in traces:
                return f"no tracepoint {v.event} on this kernel"
            return ""
        if v.rank == 0:
            funcs = self._btf_names()[0]
            return "" if not funcs or v.event in funcs else f"{v.event} is not a function in the kernel's BTF"
        syms = self._symbols()
        if syms and v.event not in syms and not any(s.startswith(v.event + ".") for s in syms):
            return f"no kernel function {v.event} (/proc/kallsyms)"
        return ""

    def unsupported(self, v: Variant) -> str:
        """Why this kernel cannot run v's kind of program at all ("" when it can)."""
        if v.family == "tp":
            return ""
        kind = ("fexit" if v.family == "exit" else "fentry") if v.rank == 0 else "kprobe"
        return probe.unsupported_reason(kind) or ""


@dataclass
class Choice:
    run: List[str] = field(default_factory=list)
    skipped: List[Tuple[str, str]] = field(default_factory=list)  # (program, why)
    # the skipped programs whose event no variant covers, because the kernel cannot run their kind
    uncovered: List[str] = field(default_factory=list)


def choose(programs: List[ProgramSpec], only: Sequence[str] = (), skip: Sequence[str] = (),
           kernel: Optional[Kernel] = None) -> Choice:
    """The programs to load and attach. When rule 2 leaves none, the preferred variants
    are loaded anyway: their load or attach failure says in one line what is missing."""
    names = [p.name for p in programs]
    for opt, given in (("--only", only), ("--skip", skip)):
        unknown = [n for n in given if n not in names]
        if unknown:
            raise SpecError(f"{opt} {' '.join(unknown)}: no such program (programs: {', '.join(names)})")
    if only:
        return Choice([n for n in names if n in only], [(n, "not named by --only") for n in names if n not in only])
    choice = _pick(programs, skip, kernel or Kernel())
    if not choice.run:  # nothing exists here: load the preferred variants, whose failure names the cause
        choice = _pick(programs, skip, None)
    if not choice.run:
        raise SpecError(f"--skip leaves no program to run (programs: {', '.join(names)})")
    return choice


def _pick(programs: List[ProgramSpec], skip: Sequence[str], kernel: Optional[Kernel]) -> Choice:
    """Rules 2 (when a kernel is given) and 3."""
    choice = Choice()
    left: List[Tuple[ProgramSpec, Optional[Variant]]] = []
    cannot: Dict[Tuple[str, str], List[str]] = {}  # event -> its programs of a kind the kernel cannot run
    for p in programs:
        v = variant_of(p.section)
        why = "--skip" if p.name in skip else (kernel.absent(v) if v and kernel else "")
        if not why and v and kernel:
            why = kernel.unsupported(v)
            if why:
                cannot.setdefault((v.family, v.event), []).append(p.name)
        if why:
            choice.skipped.append((p.name, why))
        else:
            left.append((p, v))
    covered = {(v.family, v.event) for _, v in left if v is not None}
    choice.uncovered = [n for event, names in cannot.items() if event not in covered for n in names]
    best: Dict[Tuple[str, str], Tuple[int, str]] = {}
    for p, v in left:
        if v is not None:
            key = (v.family, v.event)
            best[key] = min(best.get(key, (v.rank, p.name)), (v.rank, p.name))
    for p, v in left:
        if v is not None and best[(v.family, v.event)][0] < v.rank:
            winner = best[(v.family, v.event)][1]
            choice.skipped.append((p.name, f"the same event as {winner}, which is preferred here"))
        else:
            choice.run.append(p.name)
    return choice
