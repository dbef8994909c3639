"""`const volatile` globals of .rodata as command-line flags.

`const volatile __u64 min_duration_ns = 1000000;` becomes `--min-duration-ns N`
(default 1000000); a bool becomes a switch (`--failed-only`, and `--no-NAME` when it
defaults to true); an enum takes a constant's name or a number; a char array a
string; an array of integers or enums (tcplife's `target_sports[4]`) a comma-separated
list, the rest zero. Values are checked against the type (range, enum names) and written into a
copy of the object's .rodata before load."""
from __future__ import annotations

import argparse
import io
from dataclasses import dataclass
from typing import Any, Dict, List, Optional

from elftools.elf.elffile import ELFFile

from .decode import decode
from .spec import GlobalSpec, SpecError


@dataclass
class Flag:
    var: GlobalSpec
    option: str  # --min-duration-ns
    help: str = ""
    short: str = ""  # -p, from /// @cmdarg

    @property
    def dest(self) -> str:
        return "flag_" + self.var.name

    @property
    def default(self) -> Any:
        return decode(self.var.type, self.var.default)

    @property
    def is_switch(self) -> bool:
        t = self.var.type
        return t["kind"] == "int" and bool(t.get("bool"))


def flags_of(globals_: List[GlobalSpec], overrides: Optional[Dict[str, Dict[str, Any]]] = None) -> List[Flag]:
    """One flag per decodable global; overrides (annotations.Annotations.flag_overrides)
    may rename (long), document (help) or abbreviate (short) a flag."""
    out = []
    for g in globals_:
        t = g.type
        if t["kind"] in ("struct", "union", "ptr", "void", "float"):
            continue
        if t["kind"] == "array" and t["elem"]["kind"] not in ("int", "enum"):
            continue
        o = (overrides or {}).get(g.name, {})
        out.append(Flag(g, "--" + (o.get("long") or g.name.replace("_", "-")), o.get("help", ""),
                        "-" + o["short"] if o.get("short") else ""))
    return out


def type_label(t: Dict[str, Any]) -> str:
    if t["kind"] == "enum":
        return "|".join(n for n, _ in t["values"]) or "N"
    if t["kind"] == "array":
        return "STR" if is_string(t) else f"{type_label(t['elem'])}[,...]"
    return "N"


def is_string(t: Dict[str, Any]) -> bool:
    """A char (byte) array: set from one string."""
    return t["kind"] == "array" and t["elem"]["kind"] == "int" and t["elem"]["size"] == 1


def _spellings(f: Flag) -> List[str]:
    """The short option, the long one, and ecli's spelling (the variable's own name: --pid_target)."""
    return list(dict.fromkeys([*([f.short] if f.short else []), f.option, "--" + f.var.name]))


def add_to_parser(parser: argparse.ArgumentParser, flags: List[Flag]) -> None:
    group = parser.add_argument_group("program flags (const volatile globals of .rodata)")
    for f in flags:
        t = f.var.type
        tname = t.get("name", "")
        if f.is_switch:  # ecli's --enable-X / --disable-X are accepted too
            on, off = _spellings(f), ["--no-" + f.option[2:]]
            on, off = on + ["--enable-" + f.option[2:]], off + ["--disable-" + f.option[2:]]
            if f.default:
                group.add_argument(*off, dest=f.dest, action="store_false", default=True,
                                   help=f.help or f"clear {f.var.name} (bool, default true)")
                group.add_argument(*on, dest=f.dest, action="store_true", help=argparse.SUPPRESS)
            else:
                group.add_argument(*on, dest=f.dest, action="store_true", default=False,
                                   help=f.help or f"set {f.var.name} (bool, default false)")
                group.add_argument(*off, dest=f.dest, action="store_false", help=argparse.SUPPRESS)
            continue
        default = f.default
        what = tname
        if t["kind"] == "array" and not is_string(t):
            what = f"{t['elem'].get('name', '')}[{t['count']}], up to {t['count']} comma-separated values"
        group.add_argument(*_spellings(f), dest=f.dest, metavar=type_label(t), default=None,
                           help=(f.help + " " if f.help else "") + f"({what}, default {default!r})")


def encode(flag: Flag, text: Any) -> bytes:
    """The bytes of a flag's value; SpecError names the flag and the accepted values."""
    t = flag.var.type
    size = t["size"]
    if isinstance(text, bool):
        return int(text).to_bytes(size, "little")
    s = ",".join(str(v) for v in text) if isinstance(text, (list, tuple)) else str(text)  # an @cmdarg default
    if is_string(t):
        raw = s.encode()
        if len(raw) >= size:
            raise SpecError(f"{flag.option} {s!r}: too long, at most {size - 1} bytes")
        return raw + bytes(size - len(raw))
    if t["kind"] == "array":
        items = [item.strip() for item in s.split(",")] if s.strip() else []
        if len(items) > t["count"]:
            raise SpecError(f"{flag.option} {s!r}: {len(items)} values, at most {t['count']} "
                            f"(e.g. {flag.option} {','.join(str(n) for n in range(1, min(t['count'], 2) + 1))})")
        raw = b"".join(_scalar(flag.option, t["elem"], item) for item in items)
        return raw + bytes(size - len(raw))
    return _scalar(flag.option, t, s)


def _scalar(option: str, t: Dict[str, Any], s: str) -> bytes:
    """The bytes of one integer or enum value."""
    size = t["size"]
    if t["kind"] == "enum":
        for name, value in t["values"]:
            if name == s:
                return (value & ((1 << (size * 8)) - 1)).to_bytes(size, "little")
    try:
        v = int(s, 0)
    except ValueError:
        names = ", ".join(n for n, _ in t.get("values", []))
        want = f"a number or one of {names}" if names else "an integer"
        raise SpecError(f"{option} {s!r}: not {want} (e.g. {option} 42)") from None
    signed = bool(t.get("signed"))
    lo, hi = (-(1 << (size * 8 - 1)), (1 << (size * 8 - 1)) - 1) if signed else (0, (1 << (size * 8)) - 1)
    if not lo <= v <= hi:
        raise SpecError(f"{option} {s}: out of range for {t.get('name') or 'the type'} ({lo}..{hi})")
    return v.to_bytes(size, "little", signed=signed)


def values_from_args(flags: List[Flag], ns: argparse.Namespace) -> Dict[str, bytes]:
    """Global name -> new bytes, for the flags given on the command line."""
    out = {}
    for f in flags:
        v = getattr(ns, f.dest, None)
        if v is None or (f.is_switch and v == bool(f.default)):
            continue
        out[f.var.name] = encode(f, v)
    return out


def patch_rodata(elf: bytes, globals_: List[GlobalSpec], values: Dict[str, bytes]) -> bytes:
    """A copy of the ELF with new initial values in .rodata (what libbpf loads)."""
    if not values:
        return elf
    sec = ELFFile(io.BytesIO(elf)).get_section_by_name(".rodata")
    assert sec is not None  # values are only given for globals, which live in .rodata
    base = sec["sh_offset"]
    out = bytearray(elf)
    by_name = {g.name: g for g in globals_}
    for name, data in values.items():
        g = by_name[name]
        out[base + g.offset: base + g.offset + len(data)] = data
    return bytes(out)
