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
import itertools
import os
import signal as _signal
import socket
import struct
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, NamedTuple, Optional, Set, Tuple

from wasm_bpf.errors import WasmBpfError

from . import syscalls
from .symbols import KernelSymbols, UserSymbols
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
class Column(NamedTuple):
    name: str  # "outer.inner"
    type: Type
    bit_offset: int
    bit_size: int  # != 0: a bitfield


def flatten(t: Type, prefix: str = "", base: int = 0,
            unions: Optional[Dict[str, List[Column]]] = None) -> List[Column]:
    """The flat columns of a record type: nested structs become "outer.inner" (an
    anonymous one's fields merge into the parent); a union is one column (the member
    its discriminator selects: docs/kernel-only.md, "Unions"), named by its member's
    name, an anonymous one by its members' common leading words (saddr_v4/saddr_v6: "saddr");
    arrays stay one column. `unions` collects, per union column, the integer and enum
    columns beside it (where its discriminator is)."""
    if t["kind"] != "struct":
        return [Column(prefix or "value", t, base, 0)]
    out: List[Column] = []
    direct: List[Column] = []  # this struct's own integer and enum members
    here: List[str] = []  # and its unions
    taken = {m["name"] for m in t["members"] if m["name"]}
    for m in t["members"]:
        mt = m["type"]
        name = f"{prefix}.{m['name']}" if prefix and m["name"] else (m["name"] or prefix)
        if mt["kind"] == "union" and not m["name"] and not special_kind(name, mt):
            words = os.path.commonprefix([x["name"].split("_") for x in mt["members"]])  # whole words
            stem = "_".join(words) or "union"
            unique, n = stem, 1
            while unique in taken:
                unique, n = f"{stem}{n}", n + 1
            taken.add(unique)
            name = f"{prefix}.{unique}" if prefix else unique
        if mt["kind"] == "struct" and not special_kind(m["name"], mt):
            out.extend(flatten(mt, name, base + m["bit_offset"], unions))
            continue
        col = Column(name, mt, base + m["bit_offset"], m["bit_size"])
        out.append(col)
        if mt["kind"] in ("int", "enum"):
            direct.append(col)
        elif mt["kind"] == "union" and not special_kind(name, mt):
            here.append(name)
    if unions is not None:
        unions.update({name: direct for name in here})
    return out


def columns(t: Type) -> List[Tuple[str, Type]]:
    """(name, type) of each flat column (flatten)."""
    return [(c.name, c.type) for c in flatten(t)]


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
            direct = not (bits or off % 8 or off // 8 < pos or name in dec.by_family or name in dec.strings
                          or name in dec.unions or name in dec.stacks)
            if direct and name in dec.syscalls and _int_code(ct):
                env[f"E{i}"] = dec.syscalls[name]
                piece: Optional[Tuple[str, int, str, str]] = (_int_code(ct) or "", 1, f"E{i}.get({{0}}, {{0}})", "name")
            else:
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


# ---- what the options and the program say about columns (docs/kernel-only.md) ----------
KSTACK_NAMES = frozenset({"kstack", "kern_stack", "kernel_stack", "kstack_id", "kstackid", "kern_stack_id",
                          "kernel_stack_id", "kern_stackid", "stack", "stack_id", "stackid"})
USTACK_NAMES = frozenset({"ustack", "user_stack", "ustack_id", "ustackid", "user_stack_id", "user_stackid"})
PID_NAMES = ("tgid", "pid")  # whose user stack it is, in this order
SYSCALL_NAMES = frozenset({"syscall", "syscall_id", "syscall_nr", "syscall_no", "sys_nr", "sys_id", "sysno"})
SYSCALL_CTX_NAMES = frozenset({"id", "nr"})  # the raw_syscalls tracepoints' own name, in their programs only


class Symbols:
    """The symbol tables of one run, each read when first needed: /proc/kallsyms when the
    first kernel stack is printed, a process's maps and files when its first user stack is."""

    def __init__(self) -> None:
        self._kernel: Optional[KernelSymbols] = None
        self._user: Optional[UserSymbols] = None

    @property
    def kernel(self) -> KernelSymbols:
        if self._kernel is None:
            self._kernel = KernelSymbols()
        return self._kernel

    @property
    def user(self) -> UserSymbols:
        if self._user is None:
            self._user = UserSymbols()
        return self._user


@dataclass
class Hints:
    """What a column means beyond its name and type, from the run's options and the
    program: --union, --kstack/--ustack, --syscall-names (column names), whether the
    program reads raw_syscalls (then `id` is a syscall number), and how to read a stack
    id (the program's stack map)."""
    unions: Dict[str, str] = field(default_factory=dict)  # union column -> discriminator column
    kstacks: Set[str] = field(default_factory=set)
    ustacks: Set[str] = field(default_factory=set)
    syscalls: Set[str] = field(default_factory=set)
    syscall_program: bool = False
    stack_ids: Optional[Callable[[int], List[int]]] = None  # stack id -> addresses
    symbols: Symbols = field(default_factory=Symbols)

    def for_key(self) -> "Hints":
        """The same hints for a map's key decoder, whose columns are named without the
        "key." the printed table puts before them ("key" alone is "value")."""
        def key(name: str) -> str:
            return "value" if name == "key" else name[4:] if name.startswith("key.") else ""

        def strip(names: Iterable[str]) -> Set[str]:
            return {key(n) for n in names if key(n)}
        return Hints(unions={key(u): key(f) for u, f in self.unions.items() if key(u) and key(f)},
                     kstacks=strip(self.kstacks), ustacks=strip(self.ustacks), syscalls=strip(self.syscalls),
                     syscall_program=self.syscall_program, stack_ids=self.stack_ids, symbols=self.symbols)


class RecordDecoder:
    """Decodes records of one type into flat rows {column: value} (row), or a batch of
    them into tuples in column order (values: the fast path the runner uses). `hints`
    (the runner's) turn on stack symbolisation and syscall names."""

    def __init__(self, t: Type, raw: bool = False, hints: Optional[Hints] = None) -> None:
        if t["kind"] != "struct":
            t = {"kind": "struct", "name": t.get("name", ""), "size": t["size"],
                 "members": [{"name": "value", "type": t, "bit_offset": 0, "bit_size": 0}]}
        self.type = t
        self.raw = raw
        self.hints = hints
        union_siblings: Dict[str, List[Column]] = {}
        flat = self._flat = flatten(t, unions=union_siblings)
        self._offsets = {c.name: c.bit_offset for c in flat}
        self._bitsizes = {c.name: c.bit_size for c in flat if c.bit_size}
        # a 16-byte address beside an address family field holds IPv4 or IPv6, as it says
        self._family = next(((c.type, c.bit_offset) for c in flat if _leaf(c.name) in FAMILY_NAMES
                             and c.type["kind"] in ("int", "enum") and not c.bit_size), None)
        self.by_family = {c.name for c in flat
                          if self._family and c.type["size"] == 16 and special_kind(c.name, c.type) == "ipv6"} if not raw else set()
        # NUL-separated strings (args), as many bytes as a sibling ARGS_size/args_len says
        sizes = {_leaf(c.name): (c.type, c.bit_offset) for c in flat if c.type["kind"] == "int" and not c.bit_size}
        self.strings = {c.name: sizes.get(f"{_leaf(c.name)}_size") or sizes.get(f"{_leaf(c.name)}_len")
                        or sizes.get("args_size") for c in flat if special_kind(c.name, c.type) == "strings"} if not raw else {}
        self.unions = {name: _Union(self, name, next(c.type for c in flat if c.name == name), siblings)
                       for name, siblings in union_siblings.items()}
        h = hints or Hints()
        auto = hints is not None and not raw  # the name rules; the options apply always
        self.stacks: Dict[str, str] = {}  # column -> "kernel" | "user"
        self.syscalls: Dict[str, Dict[int, str]] = {}  # column -> the names of its numbers
        syscall_names = SYSCALL_NAMES | (SYSCALL_CTX_NAMES if h.syscall_program else frozenset())
        for c in flat:
            leaf, is_int = _leaf(c.name), c.type["kind"] == "int" and not c.type.get("bool") and not c.bit_size
            addrs = c.type["kind"] == "array" and c.type["elem"]["kind"] == "int" and c.type["elem"]["size"] == 8
            if is_int or addrs:
                if c.name in h.ustacks or (auto and leaf in USTACK_NAMES):
                    self.stacks[c.name] = "user"
                elif c.name in h.kstacks or (auto and leaf in KSTACK_NAMES):
                    self.stacks[c.name] = "kernel"
            if is_int and (c.name in h.syscalls or (auto and leaf in syscall_names)) and c.name not in self.stacks:
                self.syscalls[c.name] = syscalls.names()
        self._pid = next((c for leaf in PID_NAMES for c in flat if _leaf(c.name) == leaf
                          and c.type["kind"] == "int" and not c.bit_size), None)
        shown = {**{n: "union" for n in self.unions}, **self.stacks, **{n: "syscall" for n in self.syscalls}}
        # the columns, a shown column's type marked (for its width in a table)
        self.columns = [(c.name, dict(c.type, shown=shown[c.name]) if c.name in shown else c.type) for c in flat]
        self._plan: Optional[Plan] = None

    def _value(self, name: str, ct: Type, off: int, bits: int, data: bytes) -> Any:
        if name in self.unions:
            return self.unions[name].value(data, off)
        if name in self.stacks:
            return self._stack(name, ct, off, data)
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
        if name in self.syscalls:
            return self.syscalls[name].get(v, v)
        return v if self.raw else format_value(name, ct, v, data, off)

    def _stack(self, name: str, ct: Type, off: int, data: bytes) -> Any:
        """The stack's frames as `function+0xoff` (innermost first), from a stack id
        (looked up in the stack map) or an array of addresses; [] for a negative id
        (bpf_get_stackid failed: e.g. a kernel thread has no user stack)."""
        h = self.hints or Hints()
        if ct["kind"] == "int":
            sid = decode(ct, data, off)
            if sid >= 1 << 31:  # an unsigned field holding a negative id
                sid -= 1 << (ct["size"] * 8)
            if sid < 0:
                return []
            if h.stack_ids is None:
                return sid
            addrs = h.stack_ids(sid)
        else:
            addrs = decode(ct, data, off)
        addrs = list(itertools.takewhile(bool, addrs))
        if self.stacks[name] == "kernel":
            return [h.symbols.kernel.name(a) for a in addrs]
        pid = decode(self._pid.type, data, self._pid.bit_offset) if self._pid is not None else 0
        return [h.symbols.user.name(pid, a) for a in addrs]

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


class _Union:
    """One union column: which member to print, and that member's decoder. The rule,
    first that applies (docs/kernel-only.md, "Unions"): --union NAME=FIELD; an enum
    field beside the union whose constants name its members (EV_EXEC -> exec); an
    address family field beside a union of a 4-byte and a 16-byte member; else the
    largest member (the first of that size), which shows every byte."""

    def __init__(self, dec: RecordDecoder, name: str, t: Type, siblings: List[Column]) -> None:
        members = t["members"]
        if not members:
            raise DecodeError(f"union {name} has no members")
        largest = max(range(len(members)), key=lambda i: (members[i]["type"]["size"], -i))
        self.fallback = largest
        self.by_value: Dict[Any, int] = {}  # discriminator value -> member
        self.disc: Optional[Column] = None
        given = dec.hints.unions.get(name) if dec.hints else None
        if given is not None:
            self.disc = next((c for c in siblings if c.name == given), None) or \
                next((c for c in _all_ints(dec) if c.name == given), None)
            if self.disc is None:
                raise DecodeError(f"--union {name}={given}: {given} is not an integer or enum field of "
                                  f"{dec.type.get('name') or 'the record'}")
            self.by_value = _by_constant(self.disc.type, members) or {i: i for i in range(len(members))}
        else:
            for c in siblings:
                found = _by_constant(c.type, members) if c.type["kind"] == "enum" else {}
                if found:
                    self.disc, self.by_value = c, found
                    break
            else:
                sizes = [m["type"]["size"] for m in members]
                if dec._family is not None and 4 in sizes and 16 in sizes:
                    self.disc = Column("family", dec._family[0], dec._family[1], 0)
                    v4 = sizes.index(4)
                    self.by_value = {socket.AF_INET: v4, "AF_INET": v4}
                    self.fallback = sizes.index(16)
        # a struct member prints as {name: its fields}, any other as {name: value}
        self.nested = [m["name"] if m["type"]["kind"] == "struct" else "" for m in members]
        self.decoders = [RecordDecoder(m["type"], dec.raw, dec.hints) if m["type"]["kind"] == "struct" else
                         RecordDecoder({"kind": "struct", "name": t.get("name", ""), "size": m["type"]["size"],
                                        "members": [dict(m, bit_offset=0, name=m["name"] or "value")]},
                                       dec.raw, dec.hints)
                         for m in members]

    def value(self, data: bytes, bit_offset: int) -> Dict[str, Any]:
        i = self.fallback
        if self.disc is not None:
            i = self.by_value.get(decode(self.disc.type, data, self.disc.bit_offset, self.disc.bit_size), i)
        dec = self.decoders[i]
        start = bit_offset // 8
        row = dec.row(data[start:start + dec.type["size"]])
        return {self.nested[i]: row} if self.nested[i] else row


def _by_constant(t: Type, members: List[Dict[str, Any]]) -> Dict[Any, int]:
    """{enum value (and its name): member} for the constants that name a member: the
    member's name, or the constant's last `_` part(s) (EV_EXEC, TYPE_OPEN_AT -> exec,
    open_at), case-insensitive."""
    if t["kind"] != "enum":
        return {}
    index = {m["name"].lower(): i for i, m in enumerate(members) if m["name"]}
    out: Dict[Any, int] = {}
    for const, value in t["values"]:
        c = const.lower()
        hit = index.get(c)
        if hit is None:
            hit = next((i for n, i in index.items() if c.endswith("_" + n)), None)
        if hit is not None:
            out.setdefault(value, hit)
            out.setdefault(const, hit)  # decode() gives the name
    return out


def _all_ints(dec: RecordDecoder) -> List[Column]:
    return [c for c in dec._flat if c.type["kind"] in ("int", "enum")]
