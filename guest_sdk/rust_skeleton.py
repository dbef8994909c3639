"""`wasm-bpf gen skeleton --lang rust`: a Rust module for a wasm32 guest.

The module (``pub mod X_bpf``) embeds the BPF object, describes it to the
``wasm-bpf`` crate (guest_sdk/rust/wasm-bpf) and adds typed handles: ``open()`` ->
``OpenSkel`` (``.rodata``/``.data``/``.bss`` as structs before load) -> ``load()`` ->
``Skel`` with ``progs()``, ``maps()`` (``HashMap<K, V>``, ``Array<V>``... with the
BTF key and value types) and the data sections read from the kernel.

Types come from BTF (the object's own types, map keys and values, data-section
variables) as ``#[repr(C)]`` structs with every padding byte explicit. Each field
gets a compile-time assertion that its size is the BPF size and that its BPF
offset is aligned for its Rust type; with the explicit padding that makes every
``repr(C)`` offset the BPF offset, and the struct size is asserted too. A struct
whose BPF layout is not naturally aligned (``__attribute__((packed))``) becomes
``#[repr(C, packed)]``."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from . import btf as B
from .btf import Btf, BtfError, Member
from .elfobj import ObjectFile
from .header import KERNEL_BTF, find_type, own_types
from .skeleton import MapDesc, ObjectDesc, c_ident, default_name, describe

_RUST_KEYWORDS = frozenset("""as async await break const continue crate dyn else enum extern false fn for
if impl in let loop match mod move mut pub ref return self Self static struct super trait true type
union unsafe use where while abstract become box do final macro override priv try typeof unsized
virtual yield""".split())

# Map types with a typed view in the crate: (view, has a key type).
_VIEWS = {1: ("HashMap", True), 9: ("HashMap", True), 11: ("HashMap", True),
          2: ("Array", False), 5: ("PerCpuHashMap", True), 10: ("PerCpuHashMap", True),
          6: ("PerCpuArray", False)}


def camel(name: str) -> str:
    """event -> Event, exec_info -> ExecInfo (Rust type names)."""
    parts = [p for p in c_ident(name).split("_") if p]
    out = "".join(p[:1].upper() + p[1:] for p in parts) or "Anon"
    return "T" + out if out[:1].isdigit() else out


def field_name(name: str) -> str:
    ident = c_ident(name)
    return ident + "_" if ident in _RUST_KEYWORDS else ident


@dataclass
class _Field:
    name: str
    rust: str
    offset: int
    size: int
    note: str = ""


@dataclass
class _Struct:
    name: str
    size: int
    union: bool
    fields: list[_Field] = field(default_factory=list)
    packed: bool = False
    getters: list[tuple[str, int, int, str]] = field(default_factory=list)  # bitfields: name, bit offset, width, type


class RustTypes:
    """Rust definitions of BTF types, named once across one or more BTFs."""

    def __init__(self) -> None:
        self.blocks: list[str] = []
        self.names: set[str] = set()
        self._consts: set[str] = set()
        self._done: dict[tuple[int, int], str] = {}  # (id(btf), tid) -> Rust name
        self._by_c_name: dict[tuple[int, str], str] = {}  # (BTF kind, C name) -> Rust name
        self._struct_align: dict[str, int] = {}
        self._no_debug: set[str] = set()  # unions and what contains one: no derived Debug

    # ---- type references ---------------------------------------------------
    def scalar(self, btf: Btf, tid: int) -> str | None:
        kind = btf.kind(tid)
        if kind == B.INT:
            info, size = btf.int_info(tid), btf.size(tid)
            if size not in (1, 2, 4, 8, 16):
                raise BtfError(f"{btf.what}: no Rust integer of {size} bytes")
            # char and _Bool are bytes: [u8; N] strings, and no invalid bool values.
            signed = info.signed and not info.bool_ and btf.name(tid) != "char"
            return f"{'i' if signed else 'u'}{size * 8}"
        if kind in B.ENUMS:
            return f"{'i' if btf.kflag(tid) else 'u'}{btf.size(tid) * 8}"
        if kind == B.PTR:
            return f"u{btf.pointer_size() * 8}"
        if kind == B.FLOAT:
            if btf.size(tid) not in (4, 8):
                raise BtfError(f"{btf.what}: no Rust float of {btf.size(tid)} bytes")
            return f"f{btf.size(tid) * 8}"
        return None

    def rust_type(self, btf: Btf, tid: int, hint: str) -> str:
        """The Rust spelling of a type; composites are defined on first use (anonymous
        ones named after ``hint``)."""
        tid = btf.strip_modifiers(tid)
        kind = btf.kind(tid)
        if kind == B.TYPEDEF:
            return self.rust_type(btf, btf.ref(tid), hint if btf.name(tid) == "" else btf.name(tid))
        if kind == B.ARRAY:
            elem, n = btf.array(tid)
            return f"[{self.rust_type(btf, elem, hint)}; {n}]"
        if kind in B.COMPOSITES:
            return self.define(btf, tid, btf.name(tid) or hint)
        if kind in B.ENUMS and btf.name(tid):
            self.enum_consts(btf, tid)
        scalar = self.scalar(btf, tid)
        if scalar is None:
            raise BtfError(f"{btf.what}: cannot lay out {btf.describe(tid)} as a value")
        return scalar

    def _unique(self, name: str) -> str:
        base, i = name, 2
        while name in self.names:
            name, i = f"{base}{i}", i + 1
        self.names.add(name)
        return name

    # ---- definitions ----------------------------------------------------------
    def define(self, btf: Btf, tid: int, name: str) -> str:
        """Defines composite tid (once per BTF and id) and returns its Rust name."""
        key = (id(btf), tid)
        if key in self._done:
            return self._done[key]
        c_name = (btf.kind(tid), btf.name(tid))
        if btf.name(tid) and c_name in self._by_c_name:
            # The same named type from another BTF (the types object and the program's).
            self._done[key] = self._by_c_name[c_name]
            return self._done[key]
        rust = self._unique(camel(name))
        self._done[key] = rust
        if btf.name(tid):
            self._by_c_name[c_name] = rust
        self.struct(btf, rust, btf.size(tid), btf.members(tid), btf.kind(tid) == B.UNION,
                    f"{'union' if btf.kind(tid) == B.UNION else 'struct'} {btf.name(tid) or '(anonymous)'}")
        return rust

    def struct(self, btf: Btf, rust: str, size: int, members: list[Member], union: bool,
               what: str) -> None:
        """Appends the definition of a struct/union of ``size`` bytes with its asserts."""
        st = _Struct(rust, size, union)
        pos, pad, bits, anon = 0, 0, 0, 0
        for m in sorted(members, key=lambda m: m.bit_offset) if not union else members:
            tid = btf.strip_modifiers(m.type_id)
            width, bit_off = m.bitfield_size, m.bit_offset
            if not width and btf.kind(btf.resolve(tid)) == B.INT:
                info = btf.int_info(btf.resolve(tid))
                if info.bits != btf.size(btf.resolve(tid)) * 8 or info.bit_offset:
                    width, bit_off = info.bits, bit_off + info.bit_offset  # legacy bitfield encoding
            if width or bit_off % 8:
                # Bitfields: the bytes they span, as one opaque byte array, and a getter each.
                width = width or 8
                first, end = bit_off // 8, (bit_off + width + 7) // 8
                if union:
                    raise BtfError(f"{btf.what}: bitfield '{m.name}' in a union")
                scalar = self.scalar(btf, btf.resolve(tid))
                if scalar is None or width > 64:
                    raise BtfError(f"{btf.what}: {what}: bitfield '{m.name}' of {width} bits of a non-integer type")
                if m.name:
                    st.getters.append((field_name(m.name), bit_off, width, scalar))
                last = st.fields[-1] if st.fields else None
                if last and last.name.startswith("_bitfield") and first < pos:
                    last.size = max(last.size, end - last.offset)
                    last.rust = f"[u8; {last.size}]"
                    last.note += f", {m.name}"
                else:
                    if first < pos:
                        raise BtfError(f"{btf.what}: {what}: bitfield '{m.name}' overlaps the previous member")
                    if first > pos:
                        st.fields.append(_Field(f"_pad{pad}", f"[u8; {first - pos}]", pos, first - pos))
                        pad += 1
                    st.fields.append(_Field(f"_bitfield{bits}", f"[u8; {end - first}]", first, end - first,
                                            f"bitfields: {m.name}"))
                    bits += 1
                pos = max(pos, end)
                continue
            off = m.bit_offset // 8
            msize = btf.resolve_size(m.type_id)
            if not m.name:
                anon += 1  # C11 anonymous struct/union members: anon1, anon2... in order
            name = field_name(m.name) if m.name else f"anon{anon}"
            rtype = self.rust_type(btf, m.type_id, f"{rust}_{m.name or 'anon'}")
            if not union:
                if off < pos:
                    raise BtfError(f"{btf.what}: {what}: member '{m.name}' overlaps the previous member")
                if off > pos:
                    st.fields.append(_Field(f"_pad{pad}", f"[u8; {off - pos}]", pos, off - pos))
                    pad += 1
                pos = off + msize
            note = btf.name(btf.strip_modifiers(m.type_id)) if btf.kind(tid) == B.TYPEDEF else ""
            st.fields.append(_Field(name, rtype, off, msize, note))
        if union:
            largest = max((f.size for f in st.fields), default=0)
            if largest < size:
                st.fields.append(_Field("_size", f"[u8; {size}]", 0, size))
        elif pos < size:
            st.fields.append(_Field(f"_pad{pad}", f"[u8; {size - pos}]", pos, size - pos))
        elif pos > size:
            raise BtfError(f"{btf.what}: {what}: members exceed the type's size {size}")
        aligns = [self._align(f.rust) for f in st.fields]
        st.packed = any(f.offset % a for f, a in zip(st.fields, aligns)) or size % max(aligns, default=1) != 0
        self.blocks.append(self._text(st, what))

    def _text(self, st: _Struct, what: str) -> str:
        self._struct_align[st.name] = 1 if st.packed else max((self._align(f.rust) for f in st.fields), default=1)
        repr_ = "#[repr(C, packed)]" if st.packed else "#[repr(C)]"
        if st.union or any(self._base(f.rust) in self._no_debug for f in st.fields):
            self._no_debug.add(st.name)
            derive = "#[derive(Clone, Copy)]"
        else:
            derive = "#[derive(Clone, Copy, Debug)]"
        lines = [f"/// `{what}`: {st.size} bytes, the BPF layout.", repr_, derive,
                 f"pub {'union' if st.union else 'struct'} {st.name} {{"]
        for f in st.fields:
            note = f"  // {f.note}" if f.note else ""
            lines.append(f"    pub {f.name}: {f.rust},{note}")
        lines.append("}")
        lines.append(f"unsafe impl wasm_bpf::Plain for {st.name} {{}}")
        if st.getters:
            lines.append(f"impl {st.name} {{")
            for name, bit_off, width, scalar in st.getters:
                lines.append(f"    /// Bitfield `{name}`: {width} bits at bit {bit_off}.")
                lines.append(f"    pub fn {name}(&self) -> {scalar} {{")
                lines.append(f"        wasm_bpf::layout::bitfield(wasm_bpf::bytes_of(self), {bit_off}, {width}, "
                             f"{'true' if scalar.startswith('i') else 'false'}) as {scalar}")
                lines.append("    }")
            lines.append("}")
        # All zeros, padding included: `T { a: 1, ..Default::default() }`.
        lines.append(f"impl Default for {st.name} {{")
        lines.append("    fn default() -> Self {")
        lines.append("        wasm_bpf::Plain::zeroed()")
        lines.append("    }")
        lines.append("}")
        # Field by field first (the fields as declared), so that the first failing
        # assert names the field; then the whole.
        lines.append("const _: () = {")
        lines.append(f"    let value = core::mem::MaybeUninit::<{st.name}>::uninit();")
        lines.append("    let p = value.as_ptr();")
        for f in st.fields:
            if f.name.startswith(("_pad", "_bitfield", "_size")):
                continue
            field = f"unsafe {{ core::ptr::addr_of!((*p).{f.name}) }}"
            lines.append(f"    assert!(wasm_bpf::layout::size_of_pointee({field}) == {f.size}, "
                         f"\"{st.name}.{f.name}: wasm32 size differs from BPF\");")
            if not st.packed:
                lines.append(f"    assert!({f.offset} % wasm_bpf::layout::align_of_pointee({field}) == 0, "
                             f"\"{st.name}.{f.name}: wasm32 offset differs from BPF\");")
        lines.append(f"    assert!(core::mem::size_of::<{st.name}>() == {st.size}, "
                     f"\"{st.name}: wasm32 size differs from BPF\");")
        lines.append("};")
        return "\n".join(lines)

    @staticmethod
    def _base(rust: str) -> str:
        """The element type of a (nested) array type, else the type."""
        while rust.startswith("["):
            rust = rust[1:rust.rindex(";")]
        return rust

    def _align(self, rust: str) -> int:
        """The wasm32 alignment of a Rust type as this class spells it."""
        inner = self._base(rust)
        if inner[0] in "uif" and inner[1:].isdigit():
            return min(int(inner[1:]) // 8, 16)
        return self._struct_align.get(inner, 1)

    def enum_consts(self, btf: Btf, tid: int) -> None:
        if (id(btf), tid) in self._done:
            return
        self._done[(id(btf), tid)] = ""
        scalar = self.scalar(btf, tid)
        lines = [f"// enum {btf.name(tid)}"]
        for name, value in btf.enum_values(tid):
            if name in self._consts:
                continue
            self._consts.add(name)
            lines.append(f"pub const {c_ident(name)}: {scalar} = {value};")
        if len(lines) > 1:
            self.blocks.append("\n".join(lines))


def _byte_string(data: bytes) -> list[str]:
    """data as a Rust byte-string literal, 100 source characters a line."""
    lines, cur = [], ""
    for b in data:
        ch = chr(b)
        # A line's leading spaces would be skipped after the line continuation.
        plain = 32 <= b < 127 and ch not in '"\\' and not (ch == " " and not cur)
        piece = ch if plain else f"\\x{b:02x}"
        cur += piece
        if len(cur) >= 100:
            lines.append(cur)
            cur = ""
    lines.append(cur)
    return ['    b"\\'] + [f"{line}\\" for line in lines[:-1]] + [f'{lines[-1]}"']


def _map_type_ids(btf: Btf, name: str) -> tuple[int, int]:
    """(key type id, value type id) of a BTF map definition; 0 where not typed."""
    secs = btf.datasecs()
    for v in btf.datasec_vars(secs[".maps"]) if ".maps" in secs else []:
        if btf.name(v.type_id) != name:
            continue
        key = value = 0
        for m in btf.members(btf.resolve(btf.ref(v.type_id))):
            ptr = btf.strip_modifiers(m.type_id)
            if btf.kind(ptr) == B.PTR and m.name in ("key", "value"):
                if m.name == "key":
                    key = btf.ref(ptr)
                else:
                    value = btf.ref(ptr)
        return key, value
    return 0, 0


def _section_type(sec_name: str) -> str:
    return camel(sec_name.lstrip("."))


def generate(path: str | Path, name: str | None = None,
             types_object: tuple[Path, list[str]] | None = None,
             kernel_btf: str | None = KERNEL_BTF) -> str:
    """The Rust skeleton module for the BPF object at path. types_object: an object
    compiled from the program's shared header (X.h) and the names of the types X.h
    defines, which are emitted; otherwise the object's own types (those the
    kernel's BTF does not define)."""
    obj = ObjectFile(path)
    base = c_ident(name) if name else default_name(path)
    types = RustTypes()
    for reserved in ("OpenSkel", "Skel", "Progs", "Maps"):
        types.names.add(reserved)
    with Btf.from_file(str(path)) as btf:
        desc = describe(obj, btf)
        if types_object is not None:
            with Btf.from_file(str(types_object[0])) as tbtf:
                for spec in types_object[1]:
                    _emit_root(types, tbtf, find_type(tbtf, spec))
        else:
            kernel = Btf.from_file(kernel_btf) if kernel_btf else None
            try:
                for tid in own_types(btf, kernel):
                    _emit_root(types, btf, tid)
            finally:
                if kernel:
                    kernel.close()
        handles = [_map_handle(types, btf, m) for m in desc.maps if m.kind == "PLAIN"]
        sections: list[tuple[MapDesc, str]] = []
        for m in desc.maps:
            if m.members is not None and m.kind != "PLAIN":
                rust = types._unique(_section_type(m.host_name))
                types.struct(btf, rust, m.size, m.members, False, f"section {m.host_name}")
                sections.append((m, rust))
    return _module(base, Path(path).name, obj.data, desc, types, handles, sections)


def _emit_root(types: RustTypes, btf: Btf, tid: int) -> None:
    kind = btf.kind(tid)
    if kind in B.ENUMS:
        types.enum_consts(btf, tid)
    elif kind in B.COMPOSITES:
        types.define(btf, tid, btf.name(tid))
    elif kind == B.TYPEDEF:
        types.define(btf, btf.strip_modifiers(btf.ref(tid)), btf.name(tid))


def _map_handle(types: RustTypes, btf: Btf, m: MapDesc) -> str:
    """The `maps()` accessor of one map: a typed view where the crate has one."""
    fn = field_name(m.field)
    view = _VIEWS.get(m.type)
    key_id, value_id = _map_type_ids(btf, m.host_name)

    def typ(tid: int, size: int, hint: str) -> str:
        return types.rust_type(btf, tid, hint) if tid else f"[u8; {size}]"

    if view and m.value_size and (m.key_size or not view[1]):
        value = typ(value_id, m.value_size, f"{m.field}_value")
        params = f"{typ(key_id, m.key_size, f'{m.field}_key')}, {value}" if view[1] else value
        ret = f"wasm_bpf::{view[0]}<'a, {params}>"
        body = f"wasm_bpf::{view[0]}::new(self.obj.map(\"{m.host_name}\")?)"
    else:
        ret, body = "wasm_bpf::Map<'a>", f"self.obj.map(\"{m.host_name}\")"
    return (f"    /// Map `{m.host_name}` (type {m.type}).\n"
            f"    pub fn {fn}(&self) -> std::io::Result<{ret}> {{\n        {body}\n    }}")


def _module(base: str, source: str, elf: bytes, desc: ObjectDesc, types: RustTypes, handles: list[str],
            sections: list[tuple[MapDesc, str]]) -> str:
    kinds = {"RODATA": "Rodata", "DATA": "Data", "BSS": "Bss", "KCONFIG": "Kconfig"}
    map_specs = [f"        wasm_bpf::MapSpec {{ name: \"{m.host_name}\", map_type: {m.type}, "
                 f"key_size: {m.key_size}, value_size: {m.value_size}, max_entries: {m.max_entries} }},"
                 for m in desc.maps]
    sec_specs = [f"        wasm_bpf::SectionSpec {{ name: \"{m.host_name}\", kind: wasm_bpf::SectionKind::{kinds[m.kind]}, "
                 f"elf_offset: {m.elf_offset}, size: {m.size} }},"
                 for m in desc.maps if m.kind != "PLAIN"]
    progs = [f"    pub fn {field_name(c_ident(p))}(&self) -> wasm_bpf::Program<'a> {{\n"
             f"        self.obj.program(\"{p}\").expect(\"a program of the skeleton\")\n    }}" for p in desc.progs]
    open_accessors, loaded_accessors = [], []
    for m, rust in sections:
        fn = field_name(m.field)
        if m.kind in ("RODATA", "DATA", "BSS"):
            open_accessors.append(
                f"    /// `{m.host_name}` before load: its values become the programs' initial values.\n"
                f"    pub fn {fn}(&mut self) -> std::io::Result<&mut {rust}> {{\n"
                f"        self.obj.section_mut(\"{m.host_name}\")\n    }}")
        loaded_accessors.append(
            f"    /// The kernel's current `{m.host_name}`.\n"
            f"    pub fn {fn}(&self) -> std::io::Result<{rust}> {{\n"
            f"        self.obj.read_section(\"{m.host_name}\")\n    }}")
        if m.kind in ("DATA", "BSS"):
            loaded_accessors.append(
                f"    /// Writes `{m.host_name}` in the kernel.\n"
                f"    pub fn set_{m.field}(&self, value: &{rust}) -> std::io::Result<()> {{\n"
                f"        self.obj.write_section(\"{m.host_name}\", value)\n    }}")
    mod = f"{base}_bpf"
    out = [
        f"// Generated by `wasm-bpf gen skeleton --lang rust` from {source}: do not edit.",
        "// Types have the BPF layout (explicit padding, checked by compile-time asserts).",
        "#[allow(dead_code, non_upper_case_globals, non_snake_case, clippy::all)]",
        f"pub mod {mod} {{",
        "",
        *[b + "\n" for b in types.blocks],
        "/// The object, as the wasm-bpf crate needs it.",
        "pub static OBJECT: wasm_bpf::ObjectSpec = wasm_bpf::ObjectSpec {",
        f"    name: \"{base}\",",
        "    elf: ELF,",
        "    maps: &[",
        *map_specs,
        "    ],",
        f"    progs: &[{', '.join(f'{chr(34)}{p}{chr(34)}' for p in desc.progs)}],",
        "    sections: &[",
        *sec_specs,
        "    ],",
        "};",
        "",
        "/// The object before load.",
        "pub struct OpenSkel {",
        "    pub obj: wasm_bpf::OpenObject,",
        "}",
        "",
        f"/// Opens {source}: a private copy of the object; nothing reaches the kernel yet.",
        "pub fn open() -> std::io::Result<OpenSkel> {",
        "    Ok(OpenSkel { obj: wasm_bpf::OpenObject::new(&OBJECT)? })",
        "}",
        "",
        "impl OpenSkel {",
        *open_accessors,
        "    /// Loads the programs and maps into the kernel.",
        "    pub fn load(self) -> std::io::Result<Skel> {",
        "        Ok(Skel { obj: self.obj.load()? })",
        "    }",
        "}",
        "",
        "/// The loaded object; dropping it detaches everything and closes it.",
        "pub struct Skel {",
        "    pub obj: wasm_bpf::Object,",
        "}",
        "",
        "impl Skel {",
        "    /// Attaches every loaded program by its SEC(); the links detach when dropped.",
        "    pub fn attach(&self) -> std::io::Result<Vec<wasm_bpf::Link<'_>>> {",
        "        self.obj.attach_all()",
        "    }",
        "    pub fn progs(&self) -> Progs<'_> {",
        "        Progs { obj: &self.obj }",
        "    }",
        "    pub fn maps(&self) -> Maps<'_> {",
        "        Maps { obj: &self.obj }",
        "    }",
        *loaded_accessors,
        "}",
        "",
        "pub struct Progs<'a> {",
        "    obj: &'a wasm_bpf::Object,",
        "}",
        "",
        "impl<'a> Progs<'a> {",
        *progs,
        "}",
        "",
        "pub struct Maps<'a> {",
        "    obj: &'a wasm_bpf::Object,",
        "}",
        "",
        "impl<'a> Maps<'a> {",
        *handles,
        "}",
        "",
        f"static ELF: &[u8] = {_byte_string(elf)[0].strip()}",
        *_byte_string(elf)[1:],
        ";",
        "}",
        "",
    ]
    return "\n".join(out)
