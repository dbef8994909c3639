"""`wasm-bpf run prog.bpf.o|prog.bpf.c|prog.json [options] [program flags]`: load,
attach every program, print every ring buffer / perf event array record and the
maps, until Ctrl-C, SIGTERM or --timeout."""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import select
import shlex
import signal
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import IO, Any, Callable, Dict, List, Optional, Sequence, Tuple, Union

from wasm_bpf._native import capture_libbpf_log, lib
from wasm_bpf.attach import kind_of_program
from wasm_bpf.attach.targets import PERF_DEFAULT_FREQ
from wasm_bpf.buffers import EventBuffer
from wasm_bpf.errors import HostCallError, WasmBpfError
from wasm_bpf.limits import Limits
from wasm_bpf.bpf_object import BpfObject
from wasm_bpf.maps import MapInfo
from wasm_bpf.objspec import target_need
from wasm_bpf.sandbox import Sandbox

from . import annotations as A
from . import flags as F
from .clang import compile_bpf
from . import package as P
from .decode import Hints, RecordDecoder
from .mapprint import MapPrinter, hist_member, hist_variables, print_hints, read_stacks, unit_in
from .output import Writer, add_options, writer
from .spec import TABLE_MAP_TYPES, MapSpec, ObjectSpec, SpecError, inspect
from .variants import Choice, choose

PERF_PAGES = 64  # per CPU, for perf event arrays


class RunError(WasmBpfError):
    pass


@dataclass
class Build:
    """How a .bpf.c is compiled: -I DIR (repeatable) and --cflags."""

    includes: List[str] = field(default_factory=list)
    cflags: str = ""

    def __bool__(self) -> bool:
        return bool(self.includes or self.cflags)

    def dirs(self) -> List[Path]:
        for d in self.includes:
            if not os.path.isdir(d):
                raise SpecError(f"-I {d}: no such directory")
        return [Path(d).resolve() for d in self.includes]

    def flags(self) -> List[str]:
        try:
            return shlex.split(self.cflags)
        except ValueError as e:
            raise SpecError(f"--cflags {self.cflags!r}: {e} (quote it as a shell would)") from None


def build_object(src: Path, verbose: bool = False, build: Optional[Build] = None) -> bytes:
    """Compiles prog.bpf.c (CO-RE, -g: BTF and DWARF kept, so record types are found)."""
    from wasm_bpf_sdk.build import _TARGET_ARCH, BuildConfig, BuildError, is_bpf_source, vmlinux_header

    if not is_bpf_source(src):
        sibling = src.with_name(src.name[:-len(src.suffix)] + ".bpf.c")
        bpf = sibling.name if sibling.is_file() else "X.bpf.c"
        raise RunError(f"{src} has no BPF program (no SEC(...)): if it is the user-space half of a wasm-bpf "
                       f"program, build it with `wasm-bpf build {bpf} {src.name}` and run the .wasm")
    build = build or Build()
    dirs, cflags = build.dirs(), build.flags()
    cfg = BuildConfig(bpf_source=src, sources=[], output=Path("/dev/null"), verbose=verbose)
    try:
        vmlinux = vmlinux_header(cfg)
    except BuildError as e:
        raise RunError(e.report()) from None
    arch = _TARGET_ARCH.get(platform.machine(), platform.machine())
    with tempfile.TemporaryDirectory(prefix="wasm-bpf-ko-") as tmp:
        obj = Path(tmp) / "prog.bpf.o"
        compile_bpf(cfg.clang, src, obj, vmlinux.parent, [f"-D__TARGET_ARCH_{arch}"], dirs, verbose, cflags)
        return obj.read_bytes()


def _header_for(path: Path) -> Optional[Path]:
    name = path.name
    for suffix in (".bpf.o", ".bpf.c", ".o"):
        if name.endswith(suffix):
            return path.with_name(name[: -len(suffix)] + ".h")
    return None


def load_input(path: str, event_type: str = "", verbose: bool = False,
               build: Optional[Build] = None) -> Tuple[ObjectSpec, Optional[P.Package]]:
    """The spec of a .bpf.o, a .bpf.c (built first, as `build` says) or a package, with
    its annotations (the source's or the package's) checked and their flag defaults applied."""
    if build and not path.endswith(".c"):
        raise SpecError(f"-I and --cflags build a .bpf.c source; {path} is already built")
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as e:
        raise SpecError(f"cannot read {path}: {e.strerror}") from None
    pkg = None
    ann = A.Annotations()
    if path.endswith(".c"):
        ann = A.parse_source(data.decode(errors="replace"), p.name)  # before the build: its errors come first
        data = build_object(p, verbose, build)
    elif P.is_package(data):
        pkg = P.read(data.decode(errors="replace"), path)
        data = pkg.elf
        ann = pkg.annotations
        event_type = event_type or (pkg.event_type if not pkg.records else "")
    spec = inspect(data, path if pkg is None else (pkg.name or p.stem) + ".bpf.o", event_type,
                   _header_for(p) if pkg is None else None)
    spec.annotations = ann
    A.check(ann, spec)
    if pkg is not None:
        for m in spec.buffers():
            if m.name in pkg.records and not event_type:
                m.record = pkg.records[m.name]
    changed = {}
    defaults = ann.defaults()
    for g in spec.globals:
        if g.name in defaults:
            value, where = defaults[g.name]
            try:
                g.default = changed[g.name] = F.encode(F.Flag(g, "--" + g.name), value)
            except SpecError as e:
                raise SpecError(f"{where}: the default of {g.name}: {e}") from None
    spec.elf = F.patch_rodata(spec.elf, spec.globals, changed)  # the annotated defaults apply
    return spec, pkg


class _Parser(argparse.ArgumentParser):
    def error(self, message: str):  # one line, like every other error of the runner
        raise SpecError(f"{message} (the options and the program's flags: {self.prog} --help)")


def _parser(spec: ObjectSpec, prog: str, flags: List[F.Flag]) -> argparse.ArgumentParser:
    progs = ", ".join(f"{p.name} ({p.section})" for p in spec.programs) or "none"
    bufs = ", ".join(f"{m.name} ({m.type_name}, record {m.record.get('name') if m.record else '?'})"
                     for m in spec.buffers()) or "none"
    about = spec.annotations.description if spec.annotations else ""
    parser = _Parser(
        prog=prog, formatter_class=argparse.RawDescriptionHelpFormatter,
        description=(f"{spec.name}: {about}\n\n" if about else "") +
                    f"Run {spec.name}: attach its programs and print what it outputs.\n"
                    f"programs: {progs}\nevent buffers: {bufs}")
    _add_early(parser)
    out = parser.add_argument_group("output")
    fmt = out.add_mutually_exclusive_group()
    fmt.add_argument("--json", dest="fmt", action="store_const", const="json", help="JSON lines")
    fmt.add_argument("--csv", dest="fmt", action="store_const", const="csv", help="CSV with a header row")
    out.add_argument("--no-timestamp", action="store_true", help="no time column")
    out.add_argument("--raw", action="store_true", help="numbers as they are (no errno/signal/address names)")
    out.add_argument("--interval", type=float, metavar="S",
                     help="print maps every S seconds (default: a map's /// @sample interval, else 1)")
    out.add_argument("--map", dest="maps", action="append", default=[], metavar="NAME",
                     help="also print this map every interval (repeatable; .bss/.data: the globals; "
                          "default: histograms only, or every hash/array map and the globals when the "
                          "program has no event buffer and no histogram)")
    out.add_argument("--clear", action="store_true", help="clear printed maps after each interval")
    add_options(out)  # --union, --kstack/--ustack, --syscall-names
    run = parser.add_argument_group("run")
    run.add_argument("--attach", action="append", default=[], metavar="PROG=TARGET",
                     help="attach target of a program (XDP interface, cgroup path, binary:function)")
    run.add_argument("--trace-pipe", action="store_true",
                     help="also print trace_pipe, where bpf_printk() writes (every program's lines, not only these)")
    run.add_argument("--only", nargs="+", action="extend", default=[], metavar="PROG",
                     help="run only these programs (no variant is chosen for you)")
    run.add_argument("--skip", nargs="+", action="extend", default=[], metavar="PROG",
                     help="do not run these programs")
    run.add_argument("--map-size", action="append", default=[], metavar="NAME=N",
                     help="max_entries of a map (what a tool's user space would set)")
    if any(A.prog_net_kind(p) for p in spec.programs):
        where = run.add_mutually_exclusive_group()
        where.add_argument("--ifname", metavar="NAME",
                           help="attach the tc and XDP programs to this interface (over /// @tchook, @ifindex)")
        where.add_argument("--ifindex", type=int, metavar="N", help="the same, by interface index")
    run.add_argument("--timeout", type=float, metavar="S", help="stop after S seconds")
    try:
        F.add_to_parser(parser, flags)
    except argparse.ArgumentError as e:  # a global's flag spelled like an option of ours
        raise SpecError(f"the program's flag {e.argument_name} is also an option of wasm-bpf run: rename it "
                        "with /// @cmdarg {\"long\": \"...\"} on the global") from None
    return parser


def _add_early(parser: argparse.ArgumentParser) -> None:
    """The options needed before the parser of a program exists: they build it and
    decide its record types."""
    early = parser.add_argument_group("build and record type (read before the program is opened)")
    early.add_argument("--event-type", metavar="NAME", help="record type of the event buffers (e.g. 'struct event')")
    early.add_argument("-I", dest="includes", action="append", default=[], metavar="DIR",
                       help="a .bpf.c may include headers from DIR too (repeatable)")
    early.add_argument("--cflags", default="", metavar="FLAGS",
                       help="more clang flags for a .bpf.c (e.g. '-DDEBUG -mcpu=v2'; default -mcpu: what the "
                            "kernel supports)")
    early.add_argument("-v", "--verbose", action="store_true",
                       help="libbpf's log, the compile command, and where things were found")


def _early_options(args: Sequence[str]) -> argparse.Namespace:
    parser = _Parser(prog="wasm-bpf run", add_help=False, allow_abbrev=False)
    _add_early(parser)
    return parser.parse_known_args(list(args))[0]


def _glued(args: Sequence[str]) -> List[str]:
    """`--cflags VALUE` as `--cflags=VALUE`: argparse takes a VALUE that starts with
    `-` ("-DDEBUG") for an option otherwise."""
    out: List[str] = []
    for a in args:
        if out and out[-1] == "--cflags":
            out[-1] = "--cflags=" + a
        else:
            out.append(a)
    return out


class _Stop:
    """SIGINT/SIGTERM in the main thread, or the event a caller (wasm-bpf serve) sets."""

    def __init__(self, event: Optional[threading.Event] = None) -> None:
        self.event = event or threading.Event()

    @property
    def flag(self) -> bool:
        return self.event.is_set()

    def __call__(self, *_a) -> None:
        self.event.set()


def run(path: str, args: Sequence[str], out: Optional[IO[str]] = None, err: Optional[IO[str]] = None,
        timeout: Optional[float] = None, verbose: bool = False, stop: Optional[threading.Event] = None,
        attached: Optional[Callable[[BpfObject, ObjectSpec], None]] = None) -> int:
    """The command: returns the exit status. `stop` ends a run in another thread;
    `attached` is called with the object and its spec once every program is attached."""
    out = out or sys.stdout
    err = err or sys.stderr
    args = _glued([a for a in args if a != "--"])
    try:
        early = _early_options(args)
        spec, pkg = load_input(path, early.event_type or "", verbose or early.verbose,
                               Build(early.includes, early.cflags))
        if not spec.programs:  # it would attach nothing and print nothing, until Ctrl-C
            raise SpecError(f"{path} has no BPF programs (functions in a SEC(\"...\") section): nothing to run")
        flags = F.flags_of(spec.globals, spec.annotations.flag_overrides() if spec.annotations else None)
        parser = _parser(spec, f"wasm-bpf run {os.path.basename(path)}", flags)
        ns = parser.parse_args(list(args))
        if ns.timeout is None:
            ns.timeout = timeout
        ns.verbose = ns.verbose or verbose
        elf = F.patch_rodata(spec.elf, spec.globals, F.values_from_args(flags, ns))
        return _run_loaded(spec, pkg, elf, ns, out, err, _Stop(stop), attached)
    except (SpecError, RunError) as e:
        print(f"wasm-bpf: error: {e}", file=err)
        return 1


# What a tool's user space sets before load, when the object leaves it to it.
DEFAULT_ENTRIES = 10240
DEFAULT_RINGBUF = 256 << 10
PERF_EVENT_DEFAULT = "cpu-clock"  # every online CPU, at the attach parser's default frequency
# --attach TARGET syntax, by attach kind
TARGET_SYNTAX = {"xdp": "IFACE", "tc": "[tcx:]IFACE:ingress|egress", "cgroup": "CGROUP_PATH",
                 "uprobe": "BINARY:FUNCTION[+OFFSET]", "uretprobe": "BINARY:FUNCTION[+OFFSET]",
                 "usdt": "BINARY:PROVIDER:NAME", "kprobe": "FUNCTION[+OFFSET]", "kretprobe": "FUNCTION[+OFFSET]",
                 "socket": "IFACE or PID:FD", "sockmap": "MAP", "perf_event": "EVENT[,cpu=N][,freq=HZ]"}


def hist_unit(m: MapSpec, ns: argparse.Namespace) -> str:
    """The unit a histogram counts, as libbpf-tools name it: from the map's or its
    value type's name (hist_ns, usecs...), else the `targ_ms` flag's choice
    (milliseconds or microseconds) or `targ_ns`'s (nanoseconds or microseconds, as
    softirqs and hardirqs have it), else "" (plain values)."""
    unit = unit_in(f"{m.name} {(m.value or {}).get('name', '')}")
    if unit:
        return unit
    ms, nsec = getattr(ns, "flag_targ_ms", None), getattr(ns, "flag_targ_ns", None)
    if ms is not None:
        return "msecs" if ms else "usecs"
    return "" if nsec is None else ("nsecs" if nsec else "usecs")


def max_stack_depth() -> int:
    """The kernel's limit on stack frames, which sizes a stack map's value."""
    try:
        return int(Path("/proc/sys/kernel/perf_event_max_stack").read_text())
    except (OSError, ValueError):
        return 127


def _map_sizes(spec: ObjectSpec, items: List[str]) -> Dict[str, int]:
    sizes = {}
    for item in items:
        name, sep, n = item.partition("=")
        if not sep or not n.isdigit() or int(n) == 0 or int(n) >= 1 << 32:
            raise SpecError(f"--map-size {item!r}: expected NAME=N with N a positive number (e.g. {name or 'counts'}=4096)")
        spec.map(name)  # unknown names fail here, with the list of maps
        sizes[name] = int(n)
    return sizes


# map types whose max_entries is 0 by design: one slot per CPU, or storage per object
_ZERO_ENTRIES = frozenset({lib.BPF_MAP_TYPE_PERF_EVENT_ARRAY, lib.BPF_MAP_TYPE_CGROUP_STORAGE,
                           lib.BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE, lib.BPF_MAP_TYPE_SK_STORAGE,
                           lib.BPF_MAP_TYPE_INODE_STORAGE, lib.BPF_MAP_TYPE_TASK_STORAGE,
                           lib.WBPF_MAP_TYPE_CGRP_STORAGE})


def _sizer(sizes: Dict[str, int]) -> Callable[[BpfObject], None]:
    """Sizes the maps whose shape the object leaves to user space: --map-size, else
    max_entries 0 -> DEFAULT_ENTRIES (a ring buffer DEFAULT_RINGBUF bytes; a perf event
    array and the storage maps stay 0), a stack map's value_size 0 -> max_stack_depth() frames."""
    def prepare(obj: BpfObject) -> None:
        for name, m in obj.maps():
            mtype = lib.bpf_map__type(m)
            if name in sizes:
                lib.bpf_map__set_max_entries(m, sizes[name])
            elif lib.bpf_map__max_entries(m) == 0 and mtype not in _ZERO_ENTRIES:
                rings = (lib.BPF_MAP_TYPE_RINGBUF, lib.BPF_MAP_TYPE_USER_RINGBUF)
                lib.bpf_map__set_max_entries(m, DEFAULT_RINGBUF if mtype in rings else DEFAULT_ENTRIES)
            if mtype == lib.BPF_MAP_TYPE_STACK_TRACE and lib.bpf_map__value_size(m) == 0:
                lib.bpf_map__set_value_size(m, max_stack_depth() * 8)
    return prepare


def _targets(spec: ObjectSpec, pkg: Optional[P.Package], ns: argparse.Namespace, err: IO[str]) -> Dict[str, str]:
    """Program -> attach target: --attach, else --ifname/--ifindex or the annotations
    for tc and XDP programs, else the package's."""
    targets = dict(pkg.attach) if pkg else {}
    interface = A.override_interface(getattr(ns, "ifname", None), getattr(ns, "ifindex", None))
    for name, (target, why) in A.net_targets(spec.annotations or A.Annotations(), spec, interface).items():
        targets[name] = target
        if ns.verbose:
            err.write(f"wasm-bpf: note: {name} attaches to {target} ({why})\n")
    names = {p.name for p in spec.programs}
    for item in ns.attach:
        name, sep, target = item.partition("=")
        if not sep or name not in names:
            raise SpecError(f"--attach {item!r}: expected PROG=TARGET with PROG one of {', '.join(sorted(names))}")
        targets[name] = target
    if ns.verbose:
        for p in spec.programs:
            if p.section.split("/")[0] == "perf_event" and p.name not in targets:
                err.write(f"wasm-bpf: note: {p.name} samples {PERF_EVENT_DEFAULT} at {PERF_DEFAULT_FREQ} Hz on every online CPU "
                          f"(the default; --attach {p.name}={TARGET_SYNTAX['perf_event']} chooses)\n")
    return targets


@dataclass
class _Outputs:
    """What a run prints: the event buffers whose record type is known, and the maps
    (histograms, tables) printed every interval."""

    buffers: List[MapSpec]
    maps: List[MapSpec]


def _choose_outputs(spec: ObjectSpec, samples: Dict[str, Dict[str, Any]], ns: argparse.Namespace,
                    err: IO[str]) -> _Outputs:
    buffers = [m for m in spec.buffers() if m.record is not None]
    untyped = [m for m in spec.buffers() if m.record is None]
    hist_maps = [m for m in spec.maps if m.type in TABLE_MAP_TYPES and
                 (hist_member(m.value)[0] or samples.get(m.name, {}).get("type") in ("log2_hist", "linear_hist"))]
    hist_maps += [m for m in spec.data_maps if hist_variables(m)]  # histograms kept in globals
    table_names = set(ns.maps) | {n for n, s in samples.items() if s.get("type", "default_kv") == "default_kv"}
    for name in ns.maps:
        spec.map(name)  # unknown names fail here, with the list of maps
    if not buffers and not hist_maps and not table_names:
        if untyped:
            names = ", ".join(m.name for m in untyped)
            raise SpecError(f"cannot tell the record type of {names}: pass --event-type NAME (the struct the "
                            "program submits), keep DWARF (clang -g) so the reserve/output call is found, "
                            "or put PROG.h defining only that struct next to PROG.bpf.o")
        # nothing else to print: every table, and the results kept in globals; not the
        # maps whose entries the program deletes (offcputime's and syscount's start
        # times), unless nothing else is left
        tables = {m.name for m in spec.maps if m.type in TABLE_MAP_TYPES}
        results = tables - spec.staging
        if ns.verbose and results and tables & spec.staging:
            err.write(f"wasm-bpf: note: not printing {', '.join(sorted(tables & spec.staging))}: the program "
                      "deletes its entries (staging, not results); --map NAME prints it\n")
        table_names = (results or tables) | {m.name for m in spec.data_maps}
    if ns.verbose and untyped and buffers:
        err.write(f"wasm-bpf: note: not printing {', '.join(m.name for m in untyped)} (no record type found)\n")
    return _Outputs(buffers, [m for m in spec.maps + spec.data_maps if m in hist_maps or m.name in table_names])


def _load_and_attach(spec: ObjectSpec, elf: bytes, targets: Dict[str, str], choice: Choice,
                     sizes: Dict[str, int]) -> BpfObject:
    """The loaded object with the chosen programs attached; closed again if one fails."""
    try:
        obj = BpfObject(elf, no_load=[n for n, _ in choice.skipped], sandbox=Sandbox(limits=Limits.unlimited()),
                        name=spec.name, prepare=_sizer(sizes))
    except HostCallError as e:
        raise RunError(f"cannot load {spec.name}: {e}") from None
    try:
        opened = dict(obj.programs())
        for p in spec.programs:
            if p.name not in choice.run:
                continue
            kind = kind_of_program(opened[p.name])
            target = targets.get(p.name) or (PERF_EVENT_DEFAULT if kind == "perf_event" else "")
            try:
                obj.attach(p.name, target)
            except HostCallError as e:
                needs = target_need(kind, p.section) == "required" and not target
                hint = f"; give a target with --attach {p.name}={TARGET_SYNTAX.get(kind, 'TARGET')}" if needs else ""
                if needs and kind in ("tc", "xdp"):
                    hint += " or --ifname IFACE (or annotate it: /// @tchook or /// @ifindex)"
                raise RunError(f"cannot attach {p.name} (SEC(\"{p.section}\")): {e}{hint}") from None
    except BaseException:
        obj.close()
        raise
    return obj


class _Drain:
    """One event buffer, decoded and written as it is read."""

    def __init__(self, buffer: EventBuffer, decoder: RecordDecoder, out: Writer) -> None:
        self.buffer, self.decoder, self.out = buffer, decoder, out

    def fileno(self) -> int:
        return self.buffer.fileno()

    @property
    def lost(self) -> int:
        return self.buffer.lost

    def __call__(self) -> None:
        self.out.emit_records(datetime.datetime.now(), self.decoder.plan, list(self.buffer.take_records()))


TRACE_PIPES = ("/sys/kernel/tracing/trace_pipe", "/sys/kernel/debug/tracing/trace_pipe")


class _TracePipe:
    """The kernel's trace_pipe, read without blocking; whole lines are printed (as
    {"time", "trace_pipe"} objects with --json)."""

    lost = 0

    def __init__(self, out: IO[str], fmt: str) -> None:
        path = next((p for p in TRACE_PIPES if os.path.exists(p)), "")
        if not path:
            raise RunError("--trace-pipe: no trace_pipe (mount tracefs: mount -t tracefs nodev /sys/kernel/tracing)")
        self.fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        self.out, self.fmt, self.partial = out, fmt, b""

    def fileno(self) -> int:
        return self.fd

    def __call__(self) -> None:
        chunks = [self.partial]
        while True:
            try:
                data = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            if not data:
                break
            chunks.append(data)
        *lines, self.partial = b"".join(chunks).split(b"\n")
        when = datetime.datetime.now().isoformat()
        for raw in lines:
            line = raw.decode(errors="replace")
            self.out.write((json.dumps({"time": when, "trace_pipe": line}) if self.fmt == "json" else line) + "\n")
        self.out.flush()

    def close(self) -> None:
        os.close(self.fd)


def _open_outputs(obj: BpfObject, spec: ObjectSpec, hints: Hints, outputs: _Outputs,
                  samples: Dict[str, Dict[str, Any]], ns: argparse.Namespace, fmt: str,
                  out: IO[str]) -> Tuple[List[_Drain], List[MapPrinter]]:
    read_stacks(hints, spec, obj.map_fd)
    drains = []
    writers: Dict[Tuple[str, ...], Writer] = {}  # buffers with the same columns share a table
    for m in outputs.buffers:
        assert m.record is not None  # _choose_outputs keeps typed buffers only
        try:
            buffer = obj.buffer(obj.map_fd(m.name), PERF_PAGES)
        except HostCallError as e:
            raise RunError(f"cannot read events of map {m.name}: {os.strerror(e.errno)}") from None
        dec = RecordDecoder(m.record, raw=ns.raw, hints=hints)
        key = tuple(c for c, _ in dec.columns)
        if key not in writers:
            writers[key] = writer(fmt, out, dec.columns, not ns.no_timestamp)
        drains.append(_Drain(buffer, dec, writers[key]))
    printers = []
    for m in outputs.maps:
        info = MapInfo.of_fd(obj.map_fd(m.name))
        sample = samples.get(m.name, {})
        hist = {"log2_hist": "log2", "linear_hist": "linear"}.get(sample.get("type", ""), "")
        printers.append(MapPrinter(m, info.fd, info.key_size, info.value_size, fmt,
                                   clear_after=ns.clear or bool(sample.get("clear_map")),
                                   hist=hist, unit=sample.get("unit", "") or hist_unit(m, ns), raw=ns.raw,
                                   hints=hints))
    if fmt == "table" and len(drains) == 1 and not printers:  # else the header comes with the first record
        drains[0].out.header()
        drains[0].out.started = True
    return drains, printers


def _print_maps(printers: List[MapPrinter], out: IO[str]) -> None:
    when = datetime.datetime.now()
    for p in printers:
        p.print(out, when)


def _intervals(printers: List[MapPrinter], samples: Dict[str, Dict[str, Any]], ns: argparse.Namespace) -> List[float]:
    """Seconds between two prints of each map: --interval, else its /// @sample
    interval (milliseconds), else 1."""
    if ns.interval is not None:
        return [max(ns.interval, 0.05)] * len(printers)
    return [max(samples.get(p.spec.name, {}).get("interval", 1000) / 1000, 0.05) for p in printers]


def _poll_loop(drains: Sequence[Union[_Drain, _TracePipe]], printers: List[MapPrinter], intervals: List[float],
               ns: argparse.Namespace, stop: _Stop, out: IO[str], err: IO[str]) -> None:
    """Prints records as they arrive and each map every its interval, until the stop
    or the timeout; then what arrived before it, and the last partial interval."""
    poller = select.poll()
    for d in drains:
        poller.register(d.fileno(), select.POLLIN)
    start = time.monotonic()
    next_print = [start + i for i in intervals]
    last_print = [0.0] * len(printers)  # never printed: the end prints it
    while not stop.flag:
        now = time.monotonic()
        if ns.timeout is not None and now - start >= ns.timeout:
            break
        wait = min([t - now for t in next_print] + [0.2])
        if ns.timeout is not None:
            wait = min(wait, ns.timeout - (now - start))
        if drains:
            ready = poller.poll(max(int(wait * 1000), 0))
        else:
            time.sleep(max(wait, 0))
            ready = []
        if ready:
            for d in drains:
                d()
        now = time.monotonic()
        due = [i for i, t in enumerate(next_print) if now >= t]
        if due:
            _print_maps([printers[i] for i in due], out)
            for i in due:
                last_print[i] = time.monotonic()
                next_print[i] += intervals[i]
    for d in drains:  # what arrived before the stop
        d()
    now = time.monotonic()
    _print_maps([p for p, t in zip(printers, last_print) if now - t > 0.25], out)  # the last partial interval
    lost = sum(d.lost for d in drains)
    if lost:
        err.write(f"wasm-bpf: {lost} record(s) lost (the program outran the reader)\n")


def _run_loaded(spec: ObjectSpec, pkg: Optional[P.Package], elf: bytes, ns: argparse.Namespace,
                out: IO[str], err: IO[str], stop: _Stop,
                attached: Optional[Callable[[BpfObject, ObjectSpec], None]]) -> int:
    fmt = ns.fmt or "table"
    if ns.verbose:
        capture_libbpf_log(1, err.write)
    if ns.verbose and spec.annotations and spec.annotations.description:
        err.write(f"wasm-bpf: {spec.name}: {spec.annotations.description}\n")
    targets = _targets(spec, pkg, ns, err)
    sizes = _map_sizes(spec, ns.map_size)
    choice = choose(spec.programs, ns.only, ns.skip)
    for name, why in choice.skipped:
        if name in choice.uncovered:
            err.write(f"wasm-bpf: warning: not running {name}: {why}; no variant of its event runs here\n")
        elif ns.verbose:
            err.write(f"wasm-bpf: note: not running {name}: {why}\n")
    samples = spec.annotations.samples() if spec.annotations else {}
    outputs = _choose_outputs(spec, samples, ns, err)
    hints = print_hints(ns, spec)  # bad print options fail before anything is loaded
    if spec.trace_printk and not ns.trace_pipe and not outputs.buffers:
        err.write(f"wasm-bpf: note: {spec.name} writes its output with bpf_printk() to the kernel's trace_pipe: "
                  "--trace-pipe prints it\n")

    obj = None
    pipe: Optional[_TracePipe] = None
    in_main = threading.current_thread() is threading.main_thread()  # signal.signal works there only
    old = {s: signal.signal(s, stop) for s in (signal.SIGINT, signal.SIGTERM)} if in_main else {}
    status = 0
    try:
        obj = _load_and_attach(spec, elf, targets, choice, sizes)
        drains, printers = _open_outputs(obj, spec, hints, outputs, samples, ns, fmt, out)
        intervals = _intervals(printers, samples, ns)
        if ns.trace_pipe:
            pipe = _TracePipe(out, fmt)
        if attached is not None:
            attached(obj, spec)
        if ns.verbose:
            maps = [f"{p.spec.name} every {i:g} s{' (cleared)' if p.clear_after else ''}"
                    for p, i in zip(printers, intervals)]
            err.write(f"wasm-bpf: attached {len(choice.run)} program(s); printing "
                      f"{', '.join(m.name for m in outputs.buffers) or 'no buffer'}"
                      f"{'; maps ' + ', '.join(maps) if maps else ''}\n")
            if not drains and not printers and pipe is None:
                err.write("wasm-bpf: note: nothing to print: no event buffer with a known record type, "
                          "no hash or array map and no global\n")
        out.flush()
        _poll_loop([*drains, *([pipe] if pipe else [])], printers, intervals, ns, stop, out, err)
    except BrokenPipeError:
        status = 0
    except (RunError, SpecError) as e:
        err.write(f"wasm-bpf: error: {e}\n")
        status = 1
    finally:
        if pipe is not None:
            pipe.close()
        if obj is not None:
            obj.close()  # its event buffers too
        for s, h in old.items():
            signal.signal(s, h)
    return status


def package_command(path: str, output: Optional[str], event_type: str = "", verbose: bool = False,
                    err: Optional[IO[str]] = None, build: Optional[Build] = None) -> int:
    err = err or sys.stderr
    try:
        spec, _pkg = load_input(path, event_type, verbose, build)
        text = P.write(spec)
    except (SpecError, RunError) as e:
        print(f"wasm-bpf: error: {e}", file=err)
        return 1
    dest = output or (spec.name + ".json")
    Path(dest).write_text(text)
    missing = [m.name for m in spec.buffers() if m.record is None]
    if missing:
        err.write(f"wasm-bpf: note: no record type for {', '.join(missing)} (run will need --event-type)\n")
    return 0
