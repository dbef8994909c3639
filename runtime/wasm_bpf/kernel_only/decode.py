"""Record bytes -> Python values, through a type description (types.py).

Integers are little-endian (the BPF target's order on x86/arm64 hosts). Bitfields are
read bit by bit from their bit offset; enums become their constant's name (a value
without a name stays a number); char arrays become strings up to the first NUL;
other arrays lists; structs and unions dicts (an anonymous member's fields are
merged into its parent); booleans True/False; pointers "0x..." strings."""
from __future__ import annotations

import errno as _errno
import functools
import ipaddress
import signal as _signal
import socket
import struct
from typing import Any, Callable, Dict, Iterable, List, Optional, Tuple

from wasm_bpf.errors import WasmBpfError

from .types import Type


class DecodeError(WasmBpfError):
    pass


def _bits(data: bytes, bit_offset: int, bit_size: int) -> int:
    start, end = bit_offset // 8, (bit_offset + bit_size + 7) // 8
    if end > len(data):
        raise DecodeError(f"record too short: {len(data)} bytes, field ends at byte {end}")
    raw = int.from_bytes(data[start:end], "little")
    return (raw >> (bit_offset % 8)) & ((1 << bit_size) - 1)


def _int(t: Type, data: bytes, bit_offset: int, bit_size: int) -> int:
    bits = bit_size or t["size"] * 8
    v = _bits(data, bit_offset, bits)
    if t.get("signed") and v >> (bits - 1):
        v -= 1 << bits
    return v


def decode(t: Type, data: bytes, bit_offset: int = 0, bit_size: int = 0) -> Any:
    """The value of type t at bit_offset in data (bit_size != 0: a bitfield)."""
    kind = t["kind"]
    if kind == "int":
        v = _int(t, data, bit_offset, bit_size)
        return bool(v) if t.get("bool") else v
    if kind == "enum":
        v = _int(t, data, bit_offset, bit_size)
        for name, value in t["values"]:
            if value == v:
                return name
        return v
    if kind == "float":
        start = bit_offset // 8
        fmt = {4: "<f", 8: "<d"}.get(t["size"])
        if fmt is None:
            return data[start:start + t["size"]].hex()
        return struct.unpack_from(fmt, data, start)[0]
    if kind == "ptr":
        return hex(_bits(data, bit_offset, t["size"] * 8))
    if kind == "array":
        elem, count = t["elem"], t["count"]
        start = bit_offset // 8
        if elem["kind"] == "int" and elem.get("char") and elem["size"] == 1:
            raw = data[start:start + count]
            return raw.split(b"\0", 1)[0].decode("utf-8", errors="replace")
        return [decode(elem, data, bit_offset + i * elem["size"] * 8) for i in range(count)]
    if kind in ("struct", "union"):
        out: Dict[str, Any] = {}
        for m in t["members"]:
            v = decode(m["type"], data, bit_offset + m["bit_offset"], m["bit_size"])
            if not m["name"] and isinstance(v, dict):
                out.update(v)
            else:
                out[m["name"]] = v
        return out
    if kind == "void":
        return None
    raise DecodeError(f"cannot decode a {kind}")


# ---- columns -------------------------------------------------------------------------
def columns(t: Type, prefix: str = "") -> List[Tuple[str, Type]]:
    """The flat columns of a record type: nested structs and unions become
    "outer.inner"; arrays (except those that are addresses or strings) stay one column."""
    if t["kind"] not in ("struct", "union"):
        return [(prefix or "value", t)]
    out: List[Tuple[str, Type]] = []
    for m in t["members"]:
        name = f"{prefix}.{m['name']}" if prefix and m["name"] else (m["name"] or prefix)
        mt = m["type"]
        if mt["kind"] in ("struct", "union") and not special_kind(m["name"], mt):
            out.extend(columns(mt, name))
        else:
            out.append((name, mt))
    return out


def pick(value: Any, column: str) -> Any:
    """The value of a flat column in a decoded record."""
    if not isinstance(value, dict):
        return value
    cur: Any = value
    for part in column.split("."):
        if isinstance(cur, dict) and part in cur:
            cur = cur[part]
        else:
            return cur.get(column) if isinstance(cur, dict) else None
    return cur


# ---- conventions for known types ------------------------------------------------------
ERRNO_NAMES = frozenset({"err", "errno", "error"})
RET_NAMES = frozenset({"ret", "retval", "rc", "result"})
SIGNAL_NAMES = frozenset({"sig", "signal", "signo", "signum"})
PORT_NAMES = frozenset({"port", "sport", "dport", "lport", "rport"})
ADDR_NAMES = frozenset({"addr", "saddr", "daddr", "ip", "ipv4", "ipv6", "src", "dst", "laddr", "raddr"})
STRINGS_NAMES = frozenset({"args", "argv"})
FAMILY_NAMES = frozenset({"family", "af", "sa_family", "ss_family", "sin_family", "ip_family", "addr_family"})
ADDR_SUFFIXES = ("_addr", "_ip", "_ipv4", "_ipv6", "addr")


def _leaf(column: str) -> str:
    return column.rsplit(".", 1)[-1].lower()


def _is_addr_name(name: str) -> bool:
    n = _leaf(name)
    return n in ADDR_NAMES or n.endswith(ADDR_SUFFIXES) or n.startswith(("saddr", "daddr"))


def special_kind(column: str, t: Type) -> str:
    """Which known-type formatting a column gets ("" for none). See docs/kernel-only.md."""
    n = _leaf(column)
    tname = t.get("name", "")
    if tname in ("struct in_addr",) or (_is_addr_name(n) and t["kind"] == "int" and t["size"] == 4):
        return "ipv4"
    if tname == "struct in6_addr" or (_is_addr_name(n) and t["size"] == 16 and t["kind"] in ("array", "int", "union", "struct")):
        return "ipv6"
    if n in STRINGS_NAMES and t["kind"] == "array" and t["elem"]["kind"] == "int" and t["elem"]["size"] == 1:
        return "strings"
    if t["kind"] == "int" and not t.get("bool"):
        if n in PORT_NAMES or n.endswith("_port"):
            return "port_be" if "be16" in tname else "port"
        if n in ERRNO_NAMES:
            return "errno"
        if n in RET_NAMES and t.get("signed"):
            return "ret"
        if n in SIGNAL_NAMES:
            return "signal"
    return ""


def format_value(column: str, t: Type, value: Any, raw_bytes: bytes = b"", bit_offset: int = 0) -> Any:
    """value formatted by the known-type conventions; unchanged when none applies."""
    kind = special_kind(column, t)
    if not kind:
        return value
    if kind == "ipv4":
        start = bit_offset // 8
        return str(ipaddress.IPv4Address(raw_bytes[start:start + 4]))
    if kind == "ipv6":
        start = bit_offset // 8
        return str(ipaddress.IPv6Address(raw_bytes[start:start + 16]))
    if not isinstance(value, int):
        return value
    return INT_FORMATS[kind](value)


def _port_be(v: int) -> int:
    return int.from_bytes(v.to_bytes(2, "little"), "big")


def _errno_name(v: int) -> Any:
    name = _errno.errorcode.get(abs(v))
    return (("-" if v < 0 else "") + name) if name and v else v


def _ret_name(v: int) -> Any:
    name = _errno.errorcode.get(-v) if -4096 < v < 0 else None
    return f"-{name}" if name else v


def _signal_or_zero(v: int) -> Any:
    """The signal's name; a number that names none stays a number (like errno's)."""
    try:
        return _signal.Signals(v).name if v else v
    except ValueError:
        return v


# special_kind -> the formatting of an integer of that kind
INT_FORMATS: Dict[str, Callable[[int], Any]] = {"port": int, "port_be": _port_be, "errno": _errno_name, "ret": _ret_name, "signal": _signal_or_zero}


def column_offsets(t: Type, prefix: str = "", base: int = 0) -> Dict[str, int]:
    """Bit offset of every flat column (for the formats that read raw bytes)."""
    if t["kind"] not in ("struct", "union"):
        return {prefix or "value": base}
    out: Dict[str, int] = {}
    for m in t["members"]:
        name = f"{prefix}.{m['name']}" if prefix and m["name"] else (m["name"] or prefix)
        mt = m["type"]
        if mt["kind"] in ("struct", "union") and not special_kind(m["name"], mt):
            out.update(column_offsets(mt, name, base + m["bit_offset"]))
        else:
            out[name] = base + m["bit_offset"]
    return out


_INT_CODES = {(1, False): "B", (1, True): "b", (2, False): "H", (2, True): "h",
              (4, False): "I", (4, True): "i", (8, False): "Q", (8, True): "q"}


def _int_code(t: Type) -> Optional[str]:
    return _INT_CODES.get((t["size"], bool(t.get("signed"))))


def _ipv6(b: bytes) -> str:
    return str(ipaddress.IPv6Address(b))


class Plan:
    """One record type's decoding, compiled: a struct.Struct over the fields it can
    unpack directly, and one generated function that turns an unpacked tuple (and,
    for the rest -- bitfields, unions, nested arrays -- the record's bytes) into the
    row's values. Each column's value equals what decode()/format_value() give it."""

    def __init__(self, dec: "RecordDecoder") -> None:
        fmt, items, exprs, kinds = ["<"], 0, [], []
        self.elems: Dict[int, List[str]] = {}  # column -> its elements' expressions (kind "ints")
        self.names: Dict[int, str] = {}  # column -> the number that E{column} names (kind "name")
        env: Dict[str, Any] = {"_ntoa": socket.inet_ntoa, "_ipv6": _ipv6, "hex": hex, "list": list, "bool": bool}
        pos = 0  # bytes covered by the format so far
        self.needs_data = False
        for i, (name, ct) in enumerate(dec.columns):
            off, bits = dec._offsets[name], dec._bitsizes.get(name, 0)
            direct = not (bits or off % 8 or off // 8 < pos or name in dec.by_family or name in dec.strings)
            piece = self._piece(i, name, ct, dec.raw, env) if direct else None
            if piece is None:  # read from the bytes, as row() does
                env[f"G{i}"] = functools.partial(dec._value, name, ct, off, bits)
                exprs.append(f"G{i}(d)")
                kinds.append("any")
                self.needs_data = True
                continue
            code, count, expr, kind = piece
            if off // 8 > pos:
                fmt.append(f"{off // 8 - pos}x")
            fmt.append(code)
            pos = off // 8 + ct["size"]
            exprs.append(expr.format(f"t[{items}]", f"t[{items}:{items + count}]"))
            kinds.append(kind)
            if kind == "ints":
                self.elems[i] = [f"t[{j}]" for j in range(items, items + count)]
            elif kind == "name":
                self.names[i] = f"t[{items}]"
            items += count
        if dec.type["size"] > pos:
            fmt.append(f"{dec.type['size'] - pos}x")
        self.format = "".join(fmt)
        self.struct = struct.Struct(self.format)
        self.kinds = kinds
        self.exprs = exprs  # per column: its value from t (the unpacked tuple) and d (the bytes)
        self.env = env  # what the expressions refer to
        src = f"def convert(t, d=None):\n    return ({', '.join(exprs)}{',' if len(exprs) == 1 else ''})\n"
        exec(compile(src, f"<record {dec.type.get('name', '')}>", "exec"), env)
        self.convert = env["convert"]
        self._by_length: Dict[int, struct.Struct] = {}

    @staticmethod
    def _piece(i: int, name: str, ct: Type, raw: bool, env: Dict[str, Any]) -> Optional[Tuple[str, int, str, str]]:
        """(struct code, tuple items, expression ({0}: the item, {1}: the items), value kind)."""
        kind, size = ct["kind"], ct["size"]
        special = "" if raw else special_kind(name, ct)
        if special in ("ipv4", "ipv6") and size in (4, 16):
            return f"{size}s", 1, "_ntoa({0})" if size == 4 else "_ipv6({0})", "str"
        if special:
            if kind != "int" or _int_code(ct) is None:
                return None
            if special == "port":
                return _int_code(ct) or "", 1, "{0}", "int"
            if special == "port_be":
                env[f"F{i}"] = _port_be
                return _int_code(ct) or "", 1, f"F{i}({{0}})", "int"
            # errno, ret, signal: a name for the values that have one, like an enum's
            fmt = INT_FORMATS[special]
            env[f"E{i}"] = {v: fmt(v) for v in range(-4095, 4096) if fmt(v) != v}
            return _int_code(ct) or "", 1, f"E{i}.get({{0}}, {{0}})", "name"
        if kind == "int" and _int_code(ct):
            if ct.get("bool"):
                return _int_code(ct) or "", 1, "bool({0})", "bool"
            return _int_code(ct) or "", 1, "{0}", "int"
        if kind == "enum" and _int_code(ct):
            names: Dict[int, str] = {}
            for n, v in ct["values"]:
                names.setdefault(v, n)
            env[f"E{i}"] = names
            return _int_code(ct) or "", 1, f"E{i}.get({{0}}, {{0}})", "name"
        if kind == "float" and size in (4, 8):
            return "f" if size == 4 else "d", 1, "{0}", "any"
        if kind == "ptr" and size == 8:
            return "Q", 1, "hex({0})", "str"
        if kind == "array":
            elem, count = ct["elem"], ct["count"]
            if elem["kind"] == "int" and elem.get("char") and elem["size"] == 1:
                return f"{count}s", 1, "{0}.split(b'\\0', 1)[0].decode('utf-8', 'replace')", "str"
            if elem["kind"] == "int" and not elem.get("bool") and _int_code(elem) and count:
                return f"{count}{_int_code(elem)}", count, "list({1})", "ints" if count <= 64 else "any"
        return None

    def unpack(self, records: List[bytes]) -> Tuple[List[Tuple[Any, ...]], List[Any]]:
        """(the unpacked tuple of every record, the bytes of every record -- or None
        each when no column needs them)."""
        size = self.struct.size
        if not self.needs_data and records:
            length = len(records[0])
            if length >= size and all(len(r) == length for r in records):
                s = self._by_length.get(length)
                if s is None:  # the same fields, then the record's tail (perf samples are padded)
                    s = self._by_length[length] = struct.Struct(self.format + (f"{length - size}x" if length > size else ""))
                return list(s.iter_unpack(b"".join(records))), [None] * len(records)
        pad = bytes(size)
        data = [r if len(r) >= size else r + pad for r in records]
        unpack = self.struct.unpack_from
        return [unpack(r) for r in data], data

    def values(self, records: List[bytes]) -> List[Tuple[Any, ...]]:
        return list(map(self.convert, *self.unpack(records)))


class RecordDecoder:
    """Decodes records of one type into flat rows {column: value} (row), or a batch of
    them into tuples in column order (values: the fast path the runner uses)."""

    def __init__(self, t: Type, raw: bool = False) -> None:
        if t["kind"] not in ("struct", "union"):
            t = {"kind": "struct", "name": t.get("name", ""), "size": t["size"],
                 "members": [{"name": "value", "type": t, "bit_offset": 0, "bit_size": 0}]}
        self.type = t
        self.raw = raw
        self.columns = columns(t)
        self._offsets = column_offsets(t)
        self._bitsizes = _bit_sizes(t)
        self._plan: Optional[Plan] = None
        # a 16-byte address beside an address family field holds IPv4 or IPv6, as it says
        self._family = next(((ct, self._offsets[n]) for n, ct in self.columns if _leaf(n) in FAMILY_NAMES
                             and ct["kind"] in ("int", "enum") and not self._bitsizes.get(n)), None)
        self.by_family = {n for n, ct in self.columns
                          if self._family and ct["size"] == 16 and special_kind(n, ct) == "ipv6"} if not raw else set()
        # NUL-separated strings (args), as many bytes as a sibling ARGS_size/args_len says
        sizes = {_leaf(n): (ct, self._offsets[n]) for n, ct in self.columns
                 if ct["kind"] == "int" and not self._bitsizes.get(n)}
        self.strings = {n: sizes.get(f"{_leaf(n)}_size") or sizes.get(f"{_leaf(n)}_len") or sizes.get("args_size")
                        for n, ct in self.columns if special_kind(n, ct) == "strings"} if not raw else {}

    def _value(self, name: str, ct: Type, off: int, bits: int, data: bytes) -> Any:
        if name in self.strings:
            raw = data[off // 8: off // 8 + ct["size"]]
            size = self.strings[name]
            if size is not None:
                raw = raw[:max(0, decode(size[0], data, size[1]))]
            parts = []
            for part in raw.split(b"\0"):
                if not part:  # the end (or a stale tail after it)
                    break
                parts.append(part.decode("utf-8", errors="replace"))
            return " ".join(parts)
        if name in self.by_family and self._family is not None:
            family = decode(self._family[0], data, self._family[1])
            start = off // 8
            if family in (socket.AF_INET, "AF_INET"):
                return socket.inet_ntoa(data[start:start + 4])
            return _ipv6(data[start:start + 16])
        v = decode(ct, data, off, bits)
        return v if self.raw else format_value(name, ct, v, data, off)

    def row(self, data: bytes) -> Dict[str, Any]:
        if len(data) < self.type["size"]:
            data = data + bytes(self.type["size"] - len(data))
        return {name: self._value(name, ct, self._offsets[name], self._bitsizes.get(name, 0), data)
                for name, ct in self.columns}

    @property
    def plan(self) -> Plan:
        if self._plan is None:
            self._plan = Plan(self)
        return self._plan

    def values(self, records: Iterable[bytes]) -> List[Tuple[Any, ...]]:
        """Every record's values in column order, decoded as one batch."""
        return self.plan.values(records if isinstance(records, list) else list(records))

    def rows(self, records: Iterable[bytes]) -> List[Dict[str, Any]]:
        """row() of every record, decoded as one batch."""
        names = [name for name, _ in self.columns]
        return [dict(zip(names, v)) for v in self.values(records)]

    @property
    def value_kinds(self) -> List[str]:
        """Per column, what values() holds: "int", "str", "bool", "ints" (a list of ints),
        "name" (a name from a table E{column}, else the int), or "any" (several types)."""
        return self.plan.kinds


def _bit_sizes(t: Type, prefix: str = "") -> Dict[str, int]:
    out: Dict[str, int] = {}
    for m in t.get("members", []):
        name = f"{prefix}.{m['name']}" if prefix and m["name"] else (m["name"] or prefix)
        mt = m["type"]
        if mt["kind"] in ("struct", "union") and not special_kind(m["name"], mt):
            out.update(_bit_sizes(mt, name))
        elif m["bit_size"]:
            out[name] = m["bit_size"]
    return out
