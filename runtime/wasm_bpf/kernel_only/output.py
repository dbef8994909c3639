"""Rows out: an aligned table (default), JSON lines (--json) or CSV (--csv).

Every row starts with the time it was received: HH:MM:SS in the table, ISO 8601 with
microseconds (local time) in JSON and CSV. Table columns are as wide as their type
needs (an int32 10, a u64 20, char[16] 16, an IPv4 address 15, ...), headers are
the field names in capitals; a value wider than its column pushes the row on."""
from __future__ import annotations

import csv
import datetime
import json
from json.encoder import encode_basestring_ascii as _jstr  # json.dumps(str), in C
from typing import IO, Any, Callable, Dict, List, Tuple

from .decode import Plan, special_kind
from .types import Type

_SPECIAL_WIDTH = {"strings": 32, "ipv4": 15, "ipv6": 39, "port": 5, "port_be": 5, "errno": 8, "ret": 8, "signal": 9}
_SHOWN_WIDTH = {"kernel": 40, "user": 40, "syscall": 16}
_INT_WIDTH = {1: 4, 2: 6, 4: 10, 8: 20}


def type_width(column: str, t: Type) -> int:
    shown = t.get("shown")  # the decoder's mark: a union, a stack, a syscall number
    if shown == "union":  # "member=value"
        return min(max(len(m["name"]) + 1 + type_width(m["name"], m["type"]) for m in t["members"]), 40)
    if shown:
        return _SHOWN_WIDTH[shown]
    kind = special_kind(column, t)
    if kind:
        return _SPECIAL_WIDTH[kind]
    k = t["kind"]
    if k == "int":
        return 5 if t.get("bool") else _INT_WIDTH.get(t["size"], 20)
    if k == "enum":
        return max([len(str(n)) for n, _ in t["values"]] + [4])
    if k == "array" and t["elem"]["kind"] == "int" and t["elem"].get("char"):
        return min(t["count"], 32)
    if k == "array" and t["elem"]["kind"] in ("int", "enum"):
        digits = {1: 3, 2: 5, 4: 10, 8: 20}.get(t["elem"]["size"], 20)
        return min(2 + t["count"] * (digits + 1), 40)
    if k == "ptr":
        return 18
    if k == "float":
        return 12
    return min(max(t["size"] * 2, 8), 40)


def _text(v: Any) -> str:
    if v.__class__ is str:
        return v
    if isinstance(v, dict):  # a union's member: "name=value", or "name: a=1 b=2" for a struct's fields
        return " ".join(f"{k}: {_text(x)}" if isinstance(x, dict) else f"{k}={_text(x)}" for k, x in v.items())
    if isinstance(v, list):
        return json.dumps(v, separators=(",", ":"))
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


def _json_any(v: Any) -> str:
    """json.dumps(v) (with the writer's separators), quicker for a str or an int."""
    c = v.__class__
    if c is str:
        return _jstr(v)
    if c is int:
        return str(v)
    return json.dumps(v, separators=(", ", ": "))


_JSON_BOOL = {True: "true", False: "false"}


def _compile_rows(plan: "Plan", row: str, env: Dict[str, Any]) -> Callable[[str, List[Any], List[Any]], List[Any]]:
    """rows(w, ts, ds): the expression `row` of every record (t: its unpacked tuple, d:
    its bytes, w: the time), made once per record type, so a batch is formatted in
    one comprehension without per-column dispatch."""
    env = dict(plan.env, **env)
    loop = "t, d in zip(ts, ds)" if plan.needs_data else "t in ts"
    exec(compile(f"def rows(w, ts, ds):\n    return [{row} for {loop}]\n", "<rows>", "exec"), env)
    return env["rows"]


Lines = Callable[[datetime.datetime, List[bytes]], str]


class Writer:
    """Rows out, one at a time (emit: a dict per row), or a batch of records straight
    from their bytes (emit_records: one line function per record type, compiled from
    the decoder's plan, so no row dict is made)."""

    def __init__(self, out: IO[str], columns: List[Tuple[str, Type]], timestamps: bool = True) -> None:
        self.out = out
        self.columns = columns
        self.timestamps = timestamps
        self.started = False
        self._compiled: Dict[int, Lines] = {}  # by id of the plan
        # the receive time's name; a record field of that name keeps it, the time moves aside
        names = {name.lower() for name, _ in columns}
        self.time_key = next(k for k in ("time", "timestamp", "recv_time", "_time") if k not in names)

    def header(self) -> None:
        pass

    def row(self, when: datetime.datetime, values: Dict[str, Any]) -> None:
        raise NotImplementedError

    def emit(self, when: datetime.datetime, values: Dict[str, Any]) -> None:
        if not self.started:
            self.header()
            self.started = True
        self.row(when, values)
        self.out.flush()

    def emit_records(self, when: datetime.datetime, plan: "Plan", records: List[bytes]) -> None:
        """The rows of records (bytes of the plan's record type, whose columns are this
        writer's), written as one batch."""
        if not records:
            return
        if not self.started:
            self.header()
            self.started = True
        lines = self._compiled.get(id(plan))
        if lines is None:
            lines = self._compiled[id(plan)] = self.compile(plan)
        self.out.write(lines(when, records))
        self.out.flush()

    def compile(self, plan: "Plan") -> Lines:
        raise NotImplementedError

    def _text_cells(self, plan: "Plan") -> List[str]:
        """Per column, an expression of its _text() (for the table and CSV)."""
        cells = []
        for i, (expr, kind) in enumerate(zip(plan.exprs, plan.kinds)):
            if kind == "ints":
                elems = plan.elems[i]
                cells.append(f"'[{','.join(['%d'] * len(elems))}]' % ({', '.join(elems)},)")
            else:
                cells.append(expr if kind != "any" else f"_text({expr})")
        return cells


class TableWriter(Writer):
    def __init__(self, out: IO[str], columns: List[Tuple[str, Type]], timestamps: bool = True) -> None:
        super().__init__(out, columns, timestamps)
        self.widths = [max(len(name), type_width(name, t)) for name, t in columns]
        self.time_width = max(8, len(self.time_key))

    def _line(self, cells: List[str], widths: List[int]) -> str:
        parts = [c.ljust(w) for c, w in zip(cells[:-1], widths[:-1])] + cells[-1:]
        return " ".join(parts).rstrip()

    def header(self) -> None:
        cells = [name.upper() for name, _ in self.columns]
        widths = list(self.widths)
        if self.timestamps:
            cells, widths = [self.time_key.upper()] + cells, [self.time_width] + widths
        self.out.write(self._line(cells, widths) + "\n")

    def row(self, when: datetime.datetime, values: Dict[str, Any]) -> None:
        cells = [_text(values.get(name)) for name, _ in self.columns]
        widths = list(self.widths)
        if self.timestamps:
            cells, widths = [when.strftime("%H:%M:%S")] + cells, [self.time_width] + widths
        self.out.write(self._line(cells, widths) + "\n")

    def compile(self, plan: "Plan") -> Lines:
        # _line's cells: each but the last left-justified to its width, then rstrip
        widths = ([self.time_width] if self.timestamps else []) + list(self.widths)
        template = " ".join([f"%-{w}s" for w in widths[:-1]] + ["%s"])
        cells = (["w"] if self.timestamps else []) + self._text_cells(plan)
        rows = _compile_rows(plan, f"(T % ({', '.join(cells)},)).rstrip()", {"T": template, "_text": _text})

        def lines(when: datetime.datetime, records: List[bytes]) -> str:
            return "\n".join(rows(when.strftime("%H:%M:%S"), *plan.unpack(records))) + "\n"
        return lines


class JsonWriter(Writer):
    def row(self, when: datetime.datetime, values: Dict[str, Any]) -> None:
        obj: Dict[str, Any] = {self.time_key: when.isoformat()} if self.timestamps else {}
        obj.update(values)
        self.out.write(json.dumps(obj, separators=(", ", ": ")) + "\n")

    def compile(self, plan: "Plan") -> Lines:
        parts, cells = [], []
        env: Dict[str, Any] = {"_jstr": _jstr, "_JB": _JSON_BOOL, "_jany": _json_any}
        if self.timestamps:
            parts.append(f'"{self.time_key}": "%s"')
            cells.append("w")
        for i, ((name, _), expr, kind) in enumerate(zip(self.columns, plan.exprs, plan.kinds)):
            key = _jstr(name).replace("%", "%%") + ": "
            if kind == "ints":
                parts.append(key + "[" + ", ".join(["%d"] * len(plan.elems[i])) + "]")
                cells.extend(plan.elems[i])
                continue
            parts.append(key + ("%d" if kind == "int" else "%s"))
            if kind == "name":  # the names JSON-quoted once
                env[f"J{i}"] = {v: _jstr(n) for v, n in plan.env[f"E{i}"].items()}
                cells.append(f"J{i}.get({plan.names[i]}) or str({plan.names[i]})")
                continue
            cells.append({"int": expr, "str": f"_jstr({expr})", "bool": f"_JB[{expr}]"}.get(kind, f"_jany({expr})"))
        template = "{" + ", ".join(parts) + "}\n"
        rows = _compile_rows(plan, f"T % ({', '.join(cells)},)", dict(env, T=template))

        def lines(when: datetime.datetime, records: List[bytes]) -> str:
            return "".join(rows(when.isoformat(), *plan.unpack(records)))
        return lines


class CsvWriter(Writer):
    def __init__(self, out: IO[str], columns: List[Tuple[str, Type]], timestamps: bool = True) -> None:
        super().__init__(out, columns, timestamps)
        self._csv = csv.writer(out, lineterminator="\n")

    def header(self) -> None:
        self._csv.writerow(([self.time_key] if self.timestamps else []) + [name for name, _ in self.columns])

    def row(self, when: datetime.datetime, values: Dict[str, Any]) -> None:
        cells = [_text(values.get(name)) for name, _ in self.columns]
        self._csv.writerow(([when.isoformat()] if self.timestamps else []) + cells)

    def compile(self, plan: "Plan") -> Lines:
        cells = (["w"] if self.timestamps else []) + self._text_cells(plan)
        rows = _compile_rows(plan, f"({', '.join(cells)},)", {"_text": _text})

        def lines(when: datetime.datetime, records: List[bytes]) -> str:
            self._csv.writerows(rows(when.isoformat(), *plan.unpack(records)))
            return ""
        return lines


FORMATS = {"table": TableWriter, "json": JsonWriter, "csv": CsvWriter}


def writer(fmt: str, out: IO[str], columns: List[Tuple[str, Type]], timestamps: bool = True) -> Writer:
    return FORMATS[fmt](out, columns, timestamps)


def add_options(group: Any) -> None:
    """The options that say what a column holds (docs/kernel-only.md), on the runner's
    "output" argument group."""
    group.add_argument("--union", action="append", default=[], metavar="UNION=FIELD",
                       help="print the member of union column UNION that the integer or enum FIELD selects "
                            "(an enum constant naming a member, else the member's position)")
    group.add_argument("--kstack", action="append", default=[], metavar="FIELD",
                       help="FIELD is a kernel stack: a stack id (bpf_get_stackid) or an address array")
    group.add_argument("--ustack", action="append", default=[], metavar="FIELD",
                       help="FIELD is a user stack of the record's tgid/pid")
    group.add_argument("--syscall-names", action="append", default=[], metavar="FIELD",
                       help="FIELD is a syscall number: print its name (a map's key: key)")
