"""BTF -> C declarations whose layout on wasm32 is byte-for-byte the BPF layout.

BPF is an LP64 target and wasm32 is ILP32, so the same C source does not give the
same struct layout on both sides (``long``, pointers, ``size_t`` differ).  The
emitter therefore never reuses the original C spelling of a scalar: every scalar
becomes a fixed-width type of the size BTF records (pointers become ``uint64_t``,
enums the integer of the enum's size), every composite is ``packed`` with explicit
padding at the byte (or bit) offsets BTF records, and every named member gets a
``_Static_assert`` on its offset and size, so a layout bug is a compile error in
the guest instead of garbage at run time.

Composite types are emitted either *by name* (``struct event``, for types the
caller wants users to be able to name) or *inline* as anonymous definitions (for
everything else: kernel types and the skeleton's data sections), which can never
clash with a libc or user definition of the same name."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable

from . import btf as B
from .btf import Btf, BtfError, Member

PACKED = "__attribute__((packed))"


@dataclass(frozen=True)
class Check:
    """One layout fact to assert: ``offsetof(T, path) == offset`` and its size."""
    path: str
    offset: int
    size: int


@dataclass
class Body:
    """Member lines of one composite, plus what must be emitted/asserted for it."""
    lines: list[str] = field(default_factory=list)
    checks: list[Check] = field(default_factory=list)
    deps: list[int] = field(default_factory=list)  # named types used by value


class Wasm32Layout:
    """Turns BTF types into wasm32 C text.

    ``named`` holds the ids of STRUCT/UNION/ENUM/TYPEDEF types that are referred to
    by their name (the caller emits their definitions, see ``definition``); every
    other composite is written inline."""

    def __init__(self, btf: Btf, named: Iterable[int] = (), array_padding: bool = False) -> None:
        self.btf = btf
        self.named = set(named)
        # Padding as unnamed bitfields keeps positional initializers ({1, 2, 3})
        # meaning what they mean on the BPF side; char arrays are shorter for the
        # big gaps of data sections, which nobody initializes positionally.
        self.array_padding = array_padding
        self._enumerators: set[str] = set()  # C has one namespace for all enum constants
        self.ptr_type = {8: "uint64_t", 4: "uint32_t"}[btf.pointer_size()]
        self._pad = 0

    # ---- scalars ----------------------------------------------------------------
    def _int_type(self, size: int, signed: bool) -> str:
        types = {1: "int8_t", 2: "int16_t", 4: "int32_t", 8: "int64_t", 16: "__int128"}
        if size not in types:
            raise BtfError(f"no wasm32 integer type of {size} bytes")
        return types[size] if signed else ("unsigned __int128" if size == 16 else "u" + types[size])

    def scalar(self, tid: int) -> str | None:
        """The wasm32 spelling of a resolved scalar type, or None for composites."""
        btf, kind = self.btf, self.btf.kind(tid)
        if kind == B.INT:
            info, name = btf.int_info(tid), btf.name(tid)
            if info.bool_ or name == "_Bool":
                return "bool"
            if name == "char" and btf.size(tid) == 1:
                return "char"  # char is signed on both targets; keeps strings readable
            return self._int_type(btf.size(tid), info.signed)
        if kind in B.ENUMS:
            return self._int_type(btf.size(tid), btf.kflag(tid))
        if kind == B.PTR:
            return self.ptr_type
        if kind == B.FLOAT:
            floats = {4: "float", 8: "double", 16: "long double"}
            if btf.size(tid) not in floats:
                raise BtfError(f"no wasm32 float type of {btf.size(tid)} bytes")
            return floats[btf.size(tid)]
        if kind in B.COMPOSITES:
            return None
        raise BtfError(f"{btf.what}: cannot lay out {btf.describe(tid)} as a value")

    def spell(self, tid: int) -> str:
        """A short C-like spelling of the original type, for comments."""
        btf, kind = self.btf, self.btf.kind(tid)
        if kind in B.MODIFIERS:
            return self.spell(btf.ref(tid))
        if kind == B.PTR:
            return self.spell(btf.ref(tid)) + " *"
        if kind == B.ARRAY:
            return self.spell(btf.array(tid)[0]) + "[]"
        if kind == B.FUNC_PROTO:
            return "function"
        tag = {B.STRUCT: "struct ", B.UNION: "union ", B.ENUM: "enum ", B.ENUM64: "enum ",
               B.FWD: "struct "}.get(kind, "")
        return tag + (btf.name(tid) or "{...}")

    def _worth_noting(self, elem: int, ctype: str) -> bool:
        """Whether a member's original spelling says more than its wasm32 type:
        typedefs, enums, pointers and 'long' do; int, short, char... do not."""
        base = self.btf.strip_modifiers(elem)
        if self.btf.kind(base) in (B.INT, B.FLOAT):
            name = self.btf.name(base)
            return "long" in name and "long long" not in name
        return self.spell(elem) != ctype

    # ---- type references -----------------------------------------------------------
    def _unwrap(self, tid: int) -> tuple[int, list[int], int]:
        """Strip modifiers, typedefs that are not named, and arrays.

        Returns (final type id, array dimensions, the element type before typedef
        resolution, used for comments)."""
        btf, dims = self.btf, []
        elem = tid
        while True:
            tid = btf.strip_modifiers(tid)
            if btf.kind(tid) == B.ARRAY:
                sub, n = btf.array(tid)
                dims.append(n)
                tid = elem = sub
            elif btf.kind(tid) == B.TYPEDEF and tid not in self.named:
                tid = btf.ref(tid)
            else:
                return tid, dims, elem

    def type_name(self, tid: int) -> str:
        """How a named type is referred to (``struct x``, ``union x``, ``x``)."""
        kind = self.btf.kind(tid)
        prefix = {B.STRUCT: "struct ", B.UNION: "union ", B.ENUM: "enum ", B.ENUM64: "enum "}
        return prefix.get(kind, "") + self.btf.name(tid)

    # ---- composites --------------------------------------------------------------------
    def _pad_name(self) -> str:
        self._pad += 1
        return f"__pad{self._pad - 1}"

    def _pad_bytes(self, body: Body, n: int, indent: str, union: bool = False) -> None:
        if n <= 0:
            return
        if self.array_padding or union:
            body.lines.append(f"{indent}char {self._pad_name()}[{n}];")
            return
        while n > 0:
            chunk = min(n, 8)
            body.lines.append(f"{indent}uint64_t : {chunk * 8};")
            n -= chunk

    def _pad_bits(self, body: Body, pos: int, target: int, indent: str) -> None:
        """Fill bit positions [pos, target) with unnamed bitfields and byte padding."""
        if pos % 8 and pos < target:
            k = min(8 - pos % 8, target - pos)
            body.lines.append(f"{indent}uint8_t : {k};")
            pos += k
        if target - pos >= 8:
            self._pad_bytes(body, (target - pos) // 8, indent)
            pos += (target - pos) // 8 * 8
        if target > pos:
            body.lines.append(f"{indent}uint8_t : {target - pos};")

    def layout(self, is_union: bool, size: int, members: list[Member], indent: str,
               prefix: str = "", base: int = 0) -> Body:
        """Member lines of a struct/union of ``size`` bytes.

        ``prefix`` is the member path of this body inside the outermost named type
        and ``base`` its byte offset there, so checks of inline members are
        expressed against the outermost type."""
        body, btf = Body(), self.btf
        pos = 0  # bits consumed so far (structs only)
        largest = 0
        for m in members:
            tid, dims, elem = self._unwrap(m.type_id)
            bits, bit_off = m.bitfield_size, m.bit_offset
            if not bits and not dims and btf.kind(tid) == B.INT:
                info = btf.int_info(tid)
                if info.bits != btf.size(tid) * 8 or info.bit_offset:
                    # Legacy bitfield encoding: the width lives in the INT type.
                    bits, bit_off = info.bits, bit_off + info.bit_offset
            if is_union and bit_off:
                raise BtfError(f"{btf.what}: union member '{m.name}' at bit offset {bit_off}")
            if bits:
                if not is_union:
                    if bit_off < pos:
                        raise BtfError(f"{btf.what}: bitfield '{m.name}' overlaps the previous member")
                    self._pad_bits(body, pos, bit_off, indent)
                    pos = bit_off + bits
                largest = max(largest, (bits + 7) // 8)
                ctype = self.scalar(tid)
                if ctype is None or dims:
                    raise BtfError(f"{btf.what}: bitfield '{m.name}' of non-integer type")
                body.lines.append(f"{indent}{ctype} {m.name}{' ' if m.name else ''}: {bits};")
                continue
            if bit_off % 8:
                raise BtfError(f"{btf.what}: member '{m.name}' is not byte aligned")
            off = bit_off // 8
            if not is_union:
                cur = (pos + 7) // 8
                if off < cur:
                    raise BtfError(f"{btf.what}: member '{m.name}' overlaps the previous member")
                self._pad_bytes(body, off - cur, indent)
            msize = btf.resolve_size(m.type_id)
            self._member(body, m.name, tid, dims, elem, indent, prefix, base + off)
            pos = (off + msize) * 8
            largest = max(largest, msize)
        if is_union:
            if largest < size:
                self._pad_bytes(body, size, indent, union=True)
        else:
            cur = (pos + 7) // 8
            if cur > size:
                raise BtfError(f"{btf.what}: members exceed the type's size {size}")
            self._pad_bytes(body, size - cur, indent)
        return body

    def _member(self, body: Body, name: str, tid: int, dims: list[int], elem: int,
                indent: str, prefix: str, off: int) -> None:
        btf = self.btf
        suffix = "".join(f"[{n}]" for n in dims)
        total = btf.resolve_size(tid)
        for n in dims:
            total *= n
        kind = btf.kind(tid)
        ctype = self.scalar(tid) if kind not in B.COMPOSITES and kind != B.TYPEDEF else None
        if ctype is not None:
            orig = self.spell(elem)
            note = f"  /* {orig} */" if self._worth_noting(elem, ctype) else ""
            body.lines.append(f"{indent}{ctype} {name}{suffix};{note}")
            if kind in B.ENUMS and tid in self.named:
                body.deps.append(tid)  # its constants are emitted next to the struct
        elif name and tid in self.named:
            body.lines.append(f"{indent}{self.type_name(tid)} {name}{suffix};")
            body.deps.append(tid)
        else:
            # Inline anonymous definition; also the only legal form of an unnamed member.
            comp = btf.resolve(tid)
            if btf.kind(comp) not in B.COMPOSITES:
                raise BtfError(f"{btf.what}: cannot lay out member '{name}' of {btf.describe(tid)}")
            keyword = "union" if btf.kind(comp) == B.UNION else "struct"
            note = f"  /* {self.spell(comp)} */" if btf.name(comp) else ""
            if name:
                inner_prefix = f"{prefix}{name}{'[0]' * len(dims)}."
            else:
                inner_prefix = prefix  # C11 anonymous member: its fields belong to the parent
            inner = self.layout(keyword == "union", btf.size(comp), btf.members(comp),
                                indent + "    ", inner_prefix, off)
            body.lines.append(f"{indent}{keyword} {PACKED} {{{note}")
            body.lines.extend(inner.lines)
            body.lines.append(f"{indent}}}{' ' if name else ''}{name}{suffix};")
            body.checks.extend(inner.checks)
            body.deps.extend(inner.deps)
        if name:
            body.checks.append(Check(prefix + name, off, total))

    # ---- whole definitions -------------------------------------------------------------
    def asserts(self, type_ref: str, size: int, checks: list[Check]) -> list[str]:
        what = type_ref.replace('"', "")
        out = [f'_Static_assert(sizeof({type_ref}) == {size}, "{what}: wasm32 size differs from BPF");']
        for c in checks:
            out.append(f"_Static_assert(offsetof({type_ref}, {c.path}) == {c.offset}, "
                       f'"{what}.{c.path}: wasm32 offset differs from BPF");')
            out.append(f"_Static_assert(sizeof((({type_ref} *)0)->{c.path}) == {c.size}, "
                       f'"{what}.{c.path}: wasm32 size differs from BPF");')
        return out

    def struct_text(self, keyword: str, tag: str, size: int, members: list[Member],
                    typedef: str = "") -> tuple[list[str], list[int]]:
        """A complete packed definition with its static asserts: (lines, named deps).

        With ``typedef`` the definition is ``typedef <keyword> {...} typedef;`` and
        ``tag`` is ignored (anonymous composite named by a typedef)."""
        self._pad = 0
        body = self.layout(keyword == "union", size, members, "    ")
        head = f"typedef {keyword} {PACKED} {{" if typedef else f"{keyword} {PACKED} {tag} {{"
        tail = f"}} {typedef};" if typedef else "};"
        ref = typedef or f"{keyword} {tag}"
        return [head, *body.lines, tail, *self.asserts(ref, size, body.checks)], body.deps

    def definition(self, tid: int) -> tuple[list[str], list[int]]:
        """Definition of a named STRUCT/UNION/ENUM/TYPEDEF: (lines, named deps)."""
        btf, kind = self.btf, self.btf.kind(tid)
        if kind in B.COMPOSITES:
            keyword = "union" if kind == B.UNION else "struct"
            return self.struct_text(keyword, btf.name(tid), btf.size(tid), btf.members(tid))
        if kind in B.ENUMS:
            return self.enum_text(tid), []
        if kind == B.TYPEDEF:
            target = btf.strip_modifiers(btf.ref(tid))
            if btf.kind(target) in B.COMPOSITES and target not in self.named:
                # Anonymous (or a kernel type): the typedef names an inline copy.
                keyword = "union" if btf.kind(target) == B.UNION else "struct"
                return self.struct_text(keyword, "", btf.size(target), btf.members(target),
                                        typedef=btf.name(tid))
            final, dims, _ = self._unwrap(target)
            suffix = "".join(f"[{n}]" for n in dims)
            if final in self.named:
                ref, deps = self.type_name(final), [final]
            else:
                ref, deps = self.scalar(final), []
                if ref is None:  # an array of unnamed composites
                    raise BtfError(f"{btf.what}: cannot define typedef {btf.name(tid)}")
            size = btf.resolve_size(tid)
            return [f"typedef {ref} {btf.name(tid)}{suffix};",
                    f'_Static_assert(sizeof({btf.name(tid)}) == {size}, '
                    f'"{btf.name(tid)}: wasm32 size differs from BPF");'], deps
        raise BtfError(f"{btf.what}: cannot define {btf.describe(tid)}")

    def enum_text(self, tid: int) -> list[str]:
        btf = self.btf
        lines = [f"enum {btf.name(tid)} {{  /* BPF size {btf.size(tid)}: stored as "
                 f"{self.scalar(tid)} in structs */"]
        for name, value in btf.enum_values(tid):
            suffix = "" if -(1 << 31) <= value < (1 << 31) else ("LL" if value < 0 else "ULL")
            if name in self._enumerators:
                lines.append(f"    /* {name} = {value}{suffix}: already defined by another enum */")
                continue
            self._enumerators.add(name)
            lines.append(f"    {name} = {value}{suffix},")
        lines.append("};")
        if not any(line.endswith(",") for line in lines):
            # C has no empty enums (BTF has: forward declarations, or all duplicates).
            return [f"/* enum {btf.name(tid)}: no constants of its own */"]
        return lines
