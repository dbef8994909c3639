"""Maps printed without user code, every --interval.

A map whose value is a struct with an integer array member named `slots` is a log2
histogram (slot i counts values in [2^i, 2^(i+1)), slot 0 counts 0 and 1); one named
`linear_slots` (or a package's "linear_hist" sample) is a linear histogram (slot i
counts the value i). One histogram is printed per key; the key is shown when the map
holds more than one, and the value's other members (e.g. `comm`) are shown with it.
In `.bss`/`.data`, a variable of such a struct type, or an array of them (one per CPU
or per event kind, as libbpf-tools' runqlen and softirqs keep them), prints the same
way, one histogram per non-empty element, labelled `name[i]`; the section's other
variables print as a table row.
Other hash and array maps print as a table of decoded keys and values.
Per-CPU values are summed over the CPUs."""
from __future__ import annotations

import csv
import datetime
import json
import re
import struct
from typing import IO, Any, Callable, Dict, List, Optional, Tuple

from wasm_bpf._native import ffi, lib
from wasm_bpf.maps import PERCPU_TYPES, MapInfo

from .decode import Hints, RecordDecoder, columns, decode, pick
from .output import writer
from .spec import MapSpec, ObjectSpec, SpecError
from .types import Type

_ARRAYS = (lib.BPF_MAP_TYPE_ARRAY, lib.BPF_MAP_TYPE_PERCPU_ARRAY)


def entries(fd: int, spec: MapSpec, key_size: int, value_size: int) -> List[Tuple[bytes, List[bytes]]]:
    """(key bytes, [value bytes per CPU]) of every entry."""
    ncpu = lib.libbpf_num_possible_cpus() if spec.type in PERCPU_TYPES else 1
    stride = (value_size + 7) // 8 * 8 if spec.type in PERCPU_TYPES else value_size
    key, nxt = ffi.new("char[]", max(key_size, 1)), ffi.new("char[]", max(key_size, 1))
    value = ffi.new("char[]", max(stride * ncpu, 1))
    out, first = [], True
    while lib.bpf_map_get_next_key(fd, ffi.NULL if first else key, nxt) == 0:
        first = False
        ffi.memmove(key, nxt, key_size)
        if lib.bpf_map_lookup_elem_flags(fd, key, value, 0) == 0:
            raw = ffi.unpack(value, stride * ncpu)
            out.append((ffi.unpack(key, key_size), [raw[i * stride: i * stride + value_size] for i in range(ncpu)]))
        if len(out) > 100000:
            break
    return out


def clear(fd: int, keys: List[bytes], spec: MapSpec) -> None:
    for k in keys:
        if spec.type in _ARRAYS:  # arrays cannot delete: zero the value instead
            continue
        lib.bpf_map_delete_elem_flags(fd, k, 0)


def _sum(a: Any, b: Any) -> Any:
    if isinstance(a, bool) or not isinstance(a, (int, list, dict)):
        return a
    if isinstance(a, int) and isinstance(b, int):
        return a + b
    if isinstance(a, list) and isinstance(b, list):
        return [_sum(x, y) for x, y in zip(a, b)]
    if isinstance(a, dict) and isinstance(b, dict):
        return {k: _sum(v, b.get(k)) for k, v in a.items()}
    return a


def merged_value(t: Type, values: List[bytes]) -> Any:
    v = decode(t, values[0])
    for other in values[1:]:
        v = _sum(v, decode(t, other))
    return v


def hist_member(value: Optional[Type]) -> Tuple[str, str]:
    """(member name, "log2" | "linear") of a histogram value type, else ("", "")."""
    if not value or value["kind"] != "struct":
        return "", ""
    for m in value["members"]:
        t = m["type"]
        if t["kind"] == "array" and t["elem"]["kind"] == "int" and not t["elem"].get("char"):
            if m["name"] == "slots":
                return m["name"], "log2"
            if m["name"] == "linear_slots":
                return m["name"], "linear"
    return "", ""


def hist_variables(spec: MapSpec) -> List[Dict[str, Any]]:
    """The members of a `.bss`/`.data` section (its variables) that hold a histogram
    struct or an array of them."""
    if not spec.name.startswith(".") or not spec.value or spec.value["kind"] != "struct":
        return []
    found = []
    for m in spec.value["members"]:
        t = m["type"]
        if hist_member(t["elem"] if t["kind"] == "array" else t)[0]:
            found.append(m)
    return found


_UNIT = re.compile(r"(?:^|[^a-z])([num])s(?:ecs?)?(?:$|[^a-z])|([num])secs?")


def unit_in(text: str) -> str:
    """The time unit a name implies, as libbpf-tools spell them (hist_ns, usecs,
    msecs...): "nsecs", "usecs", "msecs", or ""."""
    found = _UNIT.search(text.lower())
    return (found.group(1) or found.group(2)) + "secs" if found else ""


def order(value: Any) -> Tuple[Any, ...]:
    """A sort key that orders numbers as numbers (a key's bytes are little-endian, so
    sorting them, or their text, puts 256 before 1 and 10 before 9)."""
    if isinstance(value, bool) or not isinstance(value, (int, float, str, list, dict)):
        return (2, str(value))
    if isinstance(value, (int, float)):
        return (0, value)
    if isinstance(value, str):
        return (1, value)
    items = value.values() if isinstance(value, dict) else value
    return (3, tuple(order(v) for v in items))


def _stars(count: int, peak: int, width: int = 40) -> str:
    n = 0 if peak == 0 else (count * width + peak - 1) // peak if count else 0
    return "*" * min(n, width)


def format_hist(slots: List[int], mode: str, unit: str = "value") -> List[str]:
    last = max((i for i, c in enumerate(slots) if c), default=-1)
    if last < 0:
        return []
    peak = max(slots)
    lines = []
    if mode == "log2":
        lines.append(f"{unit:>20} : count    distribution")
        for i in range(last + 1):
            low = 0 if i == 0 else 1 << i
            high = (1 << (i + 1)) - 1
            rng = f"{low} -> {high}"
            lines.append(f"{rng:>20} : {slots[i]:<8} |{_stars(slots[i], peak):<40}|")
    else:
        first = min(i for i, c in enumerate(slots) if c)
        lines.append(f"{unit:>10} : count    distribution")
        for i in range(first, last + 1):
            lines.append(f"{i:>10} : {slots[i]:<8} |{_stars(slots[i], peak):<40}|")
    return lines


class MapPrinter:
    """Prints one map (histogram or table) on demand."""

    def __init__(self, spec: MapSpec, fd: int, key_size: int, value_size: int, fmt: str,
                 clear_after: bool = False, hist: str = "", unit: str = "", raw: bool = False,
                 hints: Optional[Hints] = None) -> None:
        self.spec, self.fd, self.fmt, self.raw, self.hints = spec, fd, fmt, raw, hints
        self.key_size, self.value_size = key_size, value_size
        self.clear_after = clear_after
        self._csv_header_written = False
        member, mode = hist_member(spec.value)
        self.member = member
        self.mode = hist or mode
        if self.mode and not self.member:
            self.member = "slots"
        self.unit = unit or "value"
        # A data section's histogram variables print as histograms; its other
        # variables as the table, which then decodes only those.
        self.hist_vars = [] if self.member else hist_variables(spec)
        self.table_type = spec.value
        if self.member and spec.value is not None and spec.value["kind"] == "struct":
            # hardirqs' `struct info { count; ...; slots[] }`: without its dist flag the
            # slots stay empty and the other members make a table
            self.table_type = {**spec.value, "members": [m for m in spec.value["members"] if m["name"] != self.member]}
        if self.hist_vars and spec.value is not None:
            hists = {m["name"] for m in self.hist_vars}
            self.table_type = {**spec.value, "members": [m for m in spec.value["members"] if m["name"] not in hists]}

    @property
    def is_hist(self) -> bool:
        return bool(self.member)

    def _key(self, raw: bytes) -> Any:
        return decode(self.spec.key, raw) if self.spec.key else raw.hex()

    def print(self, out: IO[str], when: datetime.datetime) -> bool:
        """Prints the map's current content; False when it was empty."""
        ents = entries(self.fd, self.spec, self.key_size, self.value_size)
        if self.spec.type in _ARRAYS and self.spec.value is not None:  # arrays: skip all-zero slots
            ents = [(k, v) for k, v in ents if any(any(b) for b in v)]
        if not ents:
            return False
        if self.is_hist:
            rows = [(self._key(k), merged_value(self.spec.value, v) if self.spec.value else v[0].hex()) for k, v in ents]
            filled = [isinstance(value, dict) and any(value.get(self.member, [])) for _, value in rows]
            if self.table_type is not self.spec.value and self.table_type and self.table_type["members"]:
                counted = [e for e, f in zip(ents, filled) if not f]
                if counted:
                    self._print_table(out, when, counted)
                rows = [r for r, f in zip(rows, filled) if f]
            if rows:
                self._print_hists(out, when, rows)
        elif self.hist_vars:
            self._print_variables(out, when, ents)
        else:
            self._print_table(out, when, ents)
        out.flush()
        if self.clear_after:
            clear(self.fd, [k for k, _ in ents], self.spec)
        return True

    def _print_hists(self, out: IO[str], when: datetime.datetime, rows: List[Tuple[Any, Any]]) -> None:
        for key, value in sorted(rows, key=lambda r: order(r[0])):
            slots = value.get(self.member, []) if isinstance(value, dict) else []
            extra = {k: v for k, v in value.items() if k != self.member} if isinstance(value, dict) else {}
            title = self.spec.name if len(rows) == 1 else f"{self.spec.name} key = {json.dumps(key)}"
            self._write_hist(out, when, ("key", key), title, slots, self.member, self.mode, self.unit, extra)

    def _print_variables(self, out: IO[str], when: datetime.datetime, ents: List[Tuple[bytes, List[bytes]]]) -> None:
        """A data section with histogram variables: each non-empty histogram, then the
        other variables as a table row (when the section has any)."""
        assert self.spec.value is not None
        value = merged_value(self.spec.value, ents[0][1])
        for m in self.hist_vars:
            t = m["type"]
            member, mode = hist_member(t["elem"] if t["kind"] == "array" else t)
            items = list(enumerate(value[m["name"]])) if t["kind"] == "array" else [(None, value[m["name"]])]
            for i, hist in items:
                slots = hist.get(member, [])
                if any(slots):
                    label = m["name"] if i is None else f"{m['name']}[{i}]"
                    extra = {k: v for k, v in hist.items() if k != member}
                    self._write_hist(out, when, ("variable", label), f"{self.spec.name} {label}", slots, member,
                                     mode, unit_in(m["name"]) or self.unit, extra)
        if self.table_type and self.table_type["members"]:
            self._print_table(out, when, ents)

    def _write_hist(self, out: IO[str], when: datetime.datetime, ident: Tuple[str, Any], title: str,
                    slots: List[int], member: str, mode: str, unit: str, extra: Dict[str, Any]) -> None:
        """One histogram: a JSON line, CSV rows (one per non-empty slot) or the table
        (a title line with the other non-empty members, then the bars)."""
        if self.fmt == "json":
            out.write(json.dumps({"time": when.isoformat(), "map": self.spec.name, ident[0]: ident[1],
                                  **extra, member: slots}) + "\n")
        elif self.fmt == "csv":
            rows = csv.writer(out, lineterminator="\n")
            if not self._csv_header_written:
                rows.writerow(["time", "map", ident[0], "low", "high", "count"])
                self._csv_header_written = True
            key = ident[1] if isinstance(ident[1], (str, int)) else json.dumps(ident[1])
            for i, c in enumerate(slots):
                if c:
                    low = i if mode == "linear" else (0 if i == 0 else 1 << i)
                    high = i if mode == "linear" else (1 << (i + 1)) - 1
                    rows.writerow([when.isoformat(), self.spec.name, key, low, high, c])
        else:
            label = ", ".join(f"{k} = {v}" for k, v in extra.items() if v not in ("", 0))
            out.write(f"{when.strftime('%H:%M:%S')} {title}{(' ' + label) if label else ''}\n")
            for line in format_hist(slots, mode, unit):
                out.write(line + "\n")
            out.write("\n")

    def _decoders(self) -> Tuple[RecordDecoder, RecordDecoder]:
        if not hasattr(self, "_kdec"):
            raw_type = lambda size: {"kind": "array", "size": size, "count": size, "name": "",
                                     "elem": {"kind": "int", "size": 1, "signed": False, "name": "u8"}}
            key_hints = self.hints.for_key() if self.hints else None
            if key_hints and key_hints.syscall_program and not self.raw and "syscall" in self.spec.name.lower() and \
                    self.spec.key is not None and self.spec.key["kind"] == "int":
                key_hints.syscalls.add("value")  # a raw_syscalls program's syscall_counts: keyed by number
            self._kdec = RecordDecoder(self.spec.key or raw_type(self.key_size), self.raw, key_hints)
            self._vdec = RecordDecoder(self.table_type or raw_type(self.value_size), self.raw, self.hints)
            kcols = [("key" if n == "value" else f"key.{n}", t) for n, t in self._kdec.columns]
            taken = {"map", "key"} | {n for n, _ in kcols}
            self._vnames = {n: f"value.{n}" if n in taken or n.startswith("key.") else n for n, _ in self._vdec.columns}
            vcols = [(self._vnames[n], t) for n, t in self._vdec.columns]
            self._columns = kcols + vcols
            self._writer = writer(self.fmt, self._out, [("map", _MAP_COL)] + self._columns)
        return self._kdec, self._vdec

    def _print_table(self, out: IO[str], when: datetime.datetime, ents: List[Tuple[bytes, List[bytes]]]) -> None:
        """One row per entry: the key's fields, then the value's (per-CPU values summed)."""
        self._out = out
        kdec, vdec = self._decoders()
        if self.fmt == "table":
            self._writer.started = False  # a header per interval
        for k, values in sorted(ents, key=lambda e: order(kdec.row(e[0]))):
            krow = kdec.row(k)
            row = {"map": self.spec.name}
            row.update({("key" if n == "value" else f"key.{n}"): v for n, v in krow.items()})
            if len(values) > 1 and self.spec.value is not None:
                summed = merged_value(self.spec.value, values)
                row.update({self._vnames[n]: pick(summed, n) for n, _ in vdec.columns})
            else:
                row.update({self._vnames[n]: v for n, v in vdec.row(values[0]).items()})
            self._writer.emit(when, row)
        if self.fmt == "table":
            out.write("\n")


_MAP_COL = {"kind": "array", "size": 16, "count": 16, "name": "char[16]",
            "elem": {"kind": "int", "size": 1, "signed": True, "char": True, "name": "char"}}


__all__ = ["MapPrinter", "format_hist", "hist_member", "hist_variables", "unit_in", "RecordDecoder"]


def stack_lookup(fd: int, value_size: int) -> Callable[[int], List[int]]:
    """stack id -> the addresses a BPF_MAP_TYPE_STACK_TRACE map holds for it ([] when
    the id is not there: the map was full, or the entry was replaced)."""
    key, value = ffi.new("uint32_t *"), ffi.new("char[]", value_size)

    def lookup(sid: int) -> List[int]:
        key[0] = sid
        if lib.bpf_map_lookup_elem_flags(fd, key, value, 0) != 0:
            return []
        return list(struct.unpack_from(f"<{value_size // 8}Q", ffi.buffer(value, value_size)))
    return lookup


SYSCALL_SECTIONS = ("tp/raw_syscalls/", "tracepoint/raw_syscalls/", "raw_tp/sys_", "raw_tracepoint/sys_",
                    "tp_btf/sys_")


def print_hints(ns: Any, spec: ObjectSpec) -> Hints:
    """The decoders' Hints for a run, before the load: the options (each name checked
    against the columns of the records and maps) and whether a program reads raw_syscalls."""
    unions = {}
    for item in ns.union:
        name, sep, disc = item.partition("=")
        if not sep or not name or not disc:
            raise SpecError(f"--union {item!r}: expected UNION=FIELD (e.g. detail=kind)")
        unions[name] = disc
    known: Dict[str, str] = {}  # every column of the records and maps -> its kind
    for m in spec.maps + spec.data_maps:
        for t, prefix in ((m.record, ""), (m.key, "key"), (m.value, "")):
            for n, ct in columns(t) if t is not None else []:
                known[n if not prefix else (prefix if n == "value" else f"{prefix}.{n}")] = ct["kind"]
    wanted = {"--union": ("union",), "--union FIELD": ("int", "enum"), "--kstack": ("int", "array"),
              "--ustack": ("int", "array"), "--syscall-names": ("int",)}
    for option, names in (("--union", list(unions)), ("--union FIELD", list(unions.values())),
                          ("--kstack", ns.kstack), ("--ustack", ns.ustack), ("--syscall-names", ns.syscall_names)):
        for n in names:
            fields = ", ".join(f for f, k in sorted(known.items()) if k in wanted[option]) or "none"
            if n not in known:
                raise SpecError(f"{option} {n}: no field {n} in the records or maps of {spec.name} "
                                f"(fields it could be: {fields})")
            if known[n] not in wanted[option]:
                raise SpecError(f"{option} {n}: {n} is not {' or '.join(wanted[option])} but {known[n]} "
                                f"(fields it could be: {fields})")
    return Hints(unions=unions, kstacks=set(ns.kstack), ustacks=set(ns.ustack), syscalls=set(ns.syscall_names),
                 syscall_program=any(p.section.startswith(SYSCALL_SECTIONS) for p in spec.programs))


def read_stacks(hints: Hints, spec: ObjectSpec, fd_of: Callable[[str], int]) -> None:
    """Stack ids are looked up in the program's stack map (the first, when it has several)."""
    stack_maps = [m for m in spec.maps if m.type == lib.BPF_MAP_TYPE_STACK_TRACE]
    if stack_maps:
        fd = fd_of(stack_maps[0].name)
        hints.stack_ids = stack_lookup(fd, MapInfo.of_fd(fd).value_size)
