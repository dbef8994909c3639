"""Record bytes -> Python values, through a type description (types.py).

Integers are little-endian (the BPF target's order on x86/arm64 hosts). Bitfields are
read bit by bit from their bit offset; enums become their constant's name (a value
without a name stays a number); char arrays become strings up to the first NUL;
other arrays lists; structs and unions dicts (an anonymous member's fields are
merged into its parent); booleans True/False; pointers "0x..." strings."""
from __future__ import annotations

import errno as _errno
import ipaddress
import signal as _signal
import struct
from typing import Any, Dict, List, Tuple

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


def _signal_name(v: int) -> str:
    try:
        return _signal.Signals(v).name
    except ValueError:
        return str(v)


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
    if kind == "port_be":
        return int.from_bytes(value.to_bytes(2, "little"), "big")
    if kind == "port":
        return value
    if kind == "errno":
        name = _errno.errorcode.get(abs(value))
        return (("-" if value < 0 else "") + name) if name and value else value
    if kind == "ret":
        name = _errno.errorcode.get(-value) if -4096 < value < 0 else None
        return f"-{name}" if name else value
    if kind == "signal":
        return _signal_name(value) if value else value
    return value


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


class RecordDecoder:
    """Decodes records of one type into flat rows {column: value}."""

    def __init__(self, t: Type, raw: bool = False) -> None:
        if t["kind"] not in ("struct", "union"):
            t = {"kind": "struct", "name": t.get("name", ""), "size": t["size"],
                 "members": [{"name": "value", "type": t, "bit_offset": 0, "bit_size": 0}]}
        self.type = t
        self.raw = raw
        self.columns = columns(t)
        self._offsets = column_offsets(t)
        self._bitsizes = _bit_sizes(t)

    def row(self, data: bytes) -> Dict[str, Any]:
        if len(data) < self.type["size"]:
            data = data + bytes(self.type["size"] - len(data))
        out = {}
        for name, ct in self.columns:
            off = self._offsets[name]
            v = decode(ct, data, off, self._bitsizes.get(name, 0))
            out[name] = v if self.raw else format_value(name, ct, v, data, off)
        return out


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
