"""Rows out: an aligned table (default), JSON lines (--json) or CSV (--csv).

Every row starts with the time it was received: HH:MM:SS in the table, ISO 8601 with
microseconds (local time) in JSON and CSV. Table columns are as wide as their type
needs (an int32 10, a u64 20, char[16] 16, an IPv4 address 15, ...), headers are
the field names in capitals; a value wider than its column pushes the row on."""
from __future__ import annotations

import csv
import datetime
import json
from typing import IO, Any, Dict, List, Tuple

from .decode import special_kind
from .types import Type

_SPECIAL_WIDTH = {"ipv4": 15, "ipv6": 39, "port": 5, "port_be": 5, "errno": 8, "ret": 8, "signal": 9}
_INT_WIDTH = {1: 4, 2: 6, 4: 10, 8: 20}


def type_width(column: str, t: Type) -> int:
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
    if isinstance(v, (list, dict)):
        return json.dumps(v, separators=(",", ":"))
    if isinstance(v, float):
        return f"{v:g}"
    return str(v)


class Writer:
    def __init__(self, out: IO[str], columns: List[Tuple[str, Type]], timestamps: bool = True) -> None:
        self.out = out
        self.columns = columns
        self.timestamps = timestamps
        self.started = False

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


class TableWriter(Writer):
    def __init__(self, out: IO[str], columns: List[Tuple[str, Type]], timestamps: bool = True) -> None:
        super().__init__(out, columns, timestamps)
        self.widths = [max(len(name), type_width(name, t)) for name, t in columns]

    def _line(self, cells: List[str], widths: List[int]) -> str:
        parts = [c.ljust(w) for c, w in zip(cells[:-1], widths[:-1])] + cells[-1:]
        return " ".join(parts).rstrip()

    def header(self) -> None:
        cells = [name.upper() for name, _ in self.columns]
        widths = list(self.widths)
        if self.timestamps:
            cells, widths = ["TIME"] + cells, [8] + widths
        self.out.write(self._line(cells, widths) + "\n")

    def row(self, when: datetime.datetime, values: Dict[str, Any]) -> None:
        cells = [_text(values.get(name)) for name, _ in self.columns]
        widths = list(self.widths)
        if self.timestamps:
            cells, widths = [when.strftime("%H:%M:%S")] + cells, [8] + widths
        self.out.write(self._line(cells, widths) + "\n")


class JsonWriter(Writer):
    def row(self, when: datetime.datetime, values: Dict[str, Any]) -> None:
        obj: Dict[str, Any] = {"time": when.isoformat()} if self.timestamps else {}
        obj.update(values)
        self.out.write(json.dumps(obj, separators=(", ", ": ")) + "\n")


class CsvWriter(Writer):
    def __init__(self, out: IO[str], columns: List[Tuple[str, Type]], timestamps: bool = True) -> None:
        super().__init__(out, columns, timestamps)
        self._csv = csv.writer(out, lineterminator="\n")

    def header(self) -> None:
        self._csv.writerow((["time"] if self.timestamps else []) + [name for name, _ in self.columns])

    def row(self, when: datetime.datetime, values: Dict[str, Any]) -> None:
        cells = [_text(values.get(name)) for name, _ in self.columns]
        self._csv.writerow(([when.isoformat()] if self.timestamps else []) + cells)


FORMATS = {"table": TableWriter, "json": JsonWriter, "csv": CsvWriter}


def writer(fmt: str, out: IO[str], columns: List[Tuple[str, Type]], timestamps: bool = True) -> Writer:
    return FORMATS[fmt](out, columns, timestamps)
