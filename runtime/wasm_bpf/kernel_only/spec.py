"""What a BPF object holds, read without loading it: programs, maps (with key and
value types), the `const volatile` globals of .rodata, and the record type of each
ring buffer and perf event array.

The record type of a buffer, first match wins (docs/kernel-only.md):
 1. --event-type NAME (a struct/union/typedef name, "struct " optional);
 2. the source lines in the object's BTF line info that reserve or output to the
    map (bpf_ringbuf_reserve(&MAP, sizeof(X)), bpf_ringbuf_output(&MAP, P, ...),
    bpf_perf_event_output(ctx, &MAP, F, P, sizeof(X))), X resolved through the
    object's DWARF (local variables) or BTF;
 3. the code: a map value (a per-CPU "heap") passed to bpf_perf_event_output/
    bpf_ringbuf_output, for calls the source lines do not show whole;
 4. the single struct defined in PROG.h next to the object (or its source);
 5. otherwise the run stops and asks for --event-type."""
from __future__ import annotations

import io
import re
import struct
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Dict, List, Optional, Set, Tuple

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.relocation import RelocationSection
from elftools.elf.sections import SymbolTableSection

from wasm_bpf._native import ffi, lib, programs_in
from wasm_bpf.errors import WasmBpfError
from wasm_bpf.helpers import CALL, INSN_SIZE, LD_IMM64
from wasm_bpf.objspec import object_name
from wasm_bpf.policy import map_type_name
from wasm_bpf_sdk import btf as B

from . import types as T

if TYPE_CHECKING:
    from .annotations import Annotations


class SpecError(WasmBpfError):
    """The input cannot be run; the message names the cause and the fix."""


# Maps printed as tables or histograms.
TABLE_MAP_TYPES = frozenset({lib.BPF_MAP_TYPE_HASH, lib.BPF_MAP_TYPE_ARRAY, lib.BPF_MAP_TYPE_PERCPU_HASH,
                             lib.BPF_MAP_TYPE_PERCPU_ARRAY, lib.BPF_MAP_TYPE_LRU_HASH,
                             lib.BPF_MAP_TYPE_LRU_PERCPU_HASH})


@dataclass
class MapSpec:
    name: str
    type: int
    key: Optional[T.Type] = None
    value: Optional[T.Type] = None
    max_entries: int = 0
    record: Optional[T.Type] = None  # buffers: the record type, when known

    @property
    def type_name(self) -> str:
        return map_type_name(self.type)

    @property
    def is_buffer(self) -> bool:
        return self.type in (lib.BPF_MAP_TYPE_RINGBUF, lib.BPF_MAP_TYPE_PERF_EVENT_ARRAY)


@dataclass
class GlobalSpec:
    """A `const volatile` global of .rodata: a command-line flag."""
    name: str
    type: T.Type
    offset: int
    default: bytes


@dataclass
class ProgramSpec:
    name: str
    section: str


@dataclass
class ObjectSpec:
    name: str
    elf: bytes
    programs: List[ProgramSpec] = field(default_factory=list)
    maps: List[MapSpec] = field(default_factory=list)
    globals: List[GlobalSpec] = field(default_factory=list)
    data_maps: List[MapSpec] = field(default_factory=list)  # .bss and .data, as one-entry arrays
    trace_printk: bool = False  # a program writes to trace_pipe (bpf_printk)
    record_hint: str = ""  # where the record types came from (for -v)
    staging: Set[str] = field(default_factory=set)  # maps a program deletes entries of (start times...)
    annotations: Optional["Annotations"] = None  # ecc's, from the source or the package

    def buffers(self) -> List[MapSpec]:
        return [m for m in self.maps if m.is_buffer]

    def map(self, name: str) -> MapSpec:
        for m in self.maps + self.data_maps:
            if m.name == name:
                return m
        known = ", ".join(m.name for m in self.maps + self.data_maps) or "none"
        raise SpecError(f"no map named {name!r} (maps: {known})")


def _elf(data: bytes, what: str) -> ELFFile:
    try:
        elf = ELFFile(io.BytesIO(data))
    except ELFError:
        raise SpecError(f"{what} is not an ELF file: give a BPF object (clang -target bpf -g -c prog.bpf.c), "
                        "a .bpf.c source, a .json package or a .wasm module") from None
    if elf["e_machine"] != "EM_BPF":
        raise SpecError(f"{what} is an ELF file for {elf['e_machine']}, not a BPF object: "
                        "compile it with clang -target bpf")
    return elf


def object_btf(elf: ELFFile, what: str) -> "B.Btf":
    sec = elf.get_section_by_name(".BTF")
    if sec is None:
        raise SpecError(f"{what} has no BTF: compile it with clang -g -target bpf")
    data = sec.data()
    return B.Btf(lib.btf__new(ffi.from_buffer(data), len(data)), what)


def inspect(elf_bytes: bytes, what: str, event_type: str = "", header: Optional[Path] = None) -> ObjectSpec:
    """The spec of a BPF object (no kernel needed)."""
    elf = _elf(elf_bytes, what)
    with object_btf(elf, what) as btf:
        spec = ObjectSpec(name=object_name(what), elf=elf_bytes)
        spec.programs = _programs(elf_bytes, what)
        spec.maps = _maps(btf)
        spec.globals = _rodata_globals(elf, btf)
        spec.data_maps = _data_maps(elf, btf)
        outputs, helpers, spec.staging = code_facts(elf)
        spec.trace_printk = bool(helpers & _HELPERS_TRACE_PRINTK)
        _record_types(spec, elf, btf, what, event_type, header, outputs)
    return spec


def _programs(elf_bytes: bytes, what: str) -> List[ProgramSpec]:
    from wasm_bpf.errors import HostCallError
    from wasm_bpf.objspec import open_object

    buf = ffi.from_buffer(elf_bytes)
    try:
        obj = open_object(buf)  # checked (elfcheck) before libbpf parses it
    except HostCallError as exc:
        raise SpecError(f"cannot open {what} ({exc}): is it a BPF object built with clang -target bpf?") from None
    try:
        return [ProgramSpec(name, ffi.string(lib.bpf_program__section_name(prog)).decode())
                for name, prog in programs_in(obj)]
    finally:
        lib.bpf_object__close(obj)


def _ptr_target(btf: "B.Btf", tid: int) -> int:
    tid = btf.resolve(tid)
    return btf.ref(tid) if btf.kind(tid) == B.PTR else 0


def _maps(btf: "B.Btf") -> List[MapSpec]:
    secs = btf.datasecs()
    if ".maps" not in secs:
        return []
    out = []
    for sv in btf.datasec_vars(secs[".maps"]):
        name = btf.name(sv.type_id)
        def_id = btf.resolve(btf.ref(sv.type_id))
        m = MapSpec(name=name, type=0)
        for mem in btf.members(def_id):
            target = _ptr_target(btf, mem.type_id)
            if mem.name in ("type", "max_entries") and target:
                _, n = btf.array(btf.resolve(target))
                setattr(m, mem.name, n)
            elif mem.name in ("key", "value") and target:
                try:
                    setattr(m, mem.name, T.from_btf(btf, target))
                except T.BtfTypeError:
                    pass
        out.append(m)
    return out


def _symbols(elf: ELFFile) -> List[Any]:
    tab = elf.get_section_by_name(".symtab")
    return list(tab.iter_symbols()) if isinstance(tab, SymbolTableSection) else []


def _symbol_offsets(elf: ELFFile, section: str) -> Dict[str, int]:
    """The offsets of a data section's variables, from the symbol table (clang leaves
    them 0 in the object's DATASEC; libbpf fills them in the same way at open)."""
    index = next(i for i, s in enumerate(elf.iter_sections()) if s.name == section)
    return {s.name: s["st_value"] for s in _symbols(elf)
            if s["st_shndx"] == index and s["st_info"]["type"] == "STT_OBJECT"}


def _rodata_globals(elf: ELFFile, btf: "B.Btf") -> List[GlobalSpec]:
    secs = btf.datasecs()
    sec = elf.get_section_by_name(".rodata")
    if ".rodata" not in secs or sec is None:
        return []
    offsets = _symbol_offsets(elf, ".rodata")
    data = sec.data() if sec["sh_type"] != "SHT_NOBITS" else bytes(sec["sh_size"])
    out = []
    for sv in btf.datasec_vars(secs[".rodata"]):
        if btf.kind(sv.type_id) != B.VAR or btf.var_linkage(sv.type_id) != B.VAR_GLOBAL:
            continue
        name = btf.name(sv.type_id)
        if name not in offsets:
            continue
        t = T.from_btf(btf, btf.ref(sv.type_id))
        off = offsets[name]
        out.append(GlobalSpec(name, t, off, bytes(data[off:off + t["size"]])))
    return out


_U32: T.Type = {"kind": "int", "size": 4, "signed": False, "bool": False, "char": False, "name": "u32"}


def _data_maps(elf: ELFFile, btf: "B.Btf") -> List[MapSpec]:
    """.bss and .data as the maps libbpf makes of them: one entry (key 0) whose value
    is a struct of the section's variables (results a program keeps in globals)."""
    secs = btf.datasecs()
    out = []
    for sec in (".bss", ".data"):
        if sec not in secs or elf.get_section_by_name(sec) is None:
            continue
        offsets = _symbol_offsets(elf, sec)
        members = []
        for sv in btf.datasec_vars(secs[sec]):
            name = btf.name(sv.type_id)
            if btf.kind(sv.type_id) != B.VAR or btf.var_linkage(sv.type_id) == B.VAR_EXTERN or name not in offsets:
                continue
            try:
                t = T.from_btf(btf, btf.ref(sv.type_id))
            except T.BtfTypeError:
                continue
            members.append({"name": name, "type": t, "bit_offset": offsets[name] * 8, "bit_size": 0})
        if members:
            size = max(m["bit_offset"] // 8 + m["type"]["size"] for m in members)
            value = {"kind": "struct", "name": sec, "size": size, "members": members}
            out.append(MapSpec(sec, lib.BPF_MAP_TYPE_ARRAY, _U32, value, 1))
    return out


# ---- record types ----------------------------------------------------------------------
_RESERVE = re.compile(r"bpf_ringbuf_reserve\s*\(\s*&\s*(\w+)\s*,\s*sizeof\s*\(?\s*([^,;]*?)\s*\)?\s*,")
_RB_OUTPUT = re.compile(r"bpf_ringbuf_output\s*\(\s*&\s*(\w+)\s*,\s*&?\s*(\w+)\s*,\s*sizeof\s*\(?\s*([^,;]*?)\s*\)?\s*,")
_PERF_OUTPUT = re.compile(
    r"bpf_perf_event_output\s*\(\s*[^,]+,\s*&\s*(\w+)\s*,\s*[^,]+,\s*&?\s*(\w+)\s*,\s*sizeof\s*\(?\s*([^,;]*?)\s*\)?\s*\)")


def btf_ext_lines(elf: ELFFile, btf: "B.Btf") -> List[str]:
    """The source lines recorded in .BTF.ext line info (clang -g keeps them)."""
    sec = elf.get_section_by_name(".BTF.ext")
    if sec is None:
        return []
    data = sec.data()
    if len(data) < 32:
        return []
    magic, _ver, _flags, hdr_len = struct.unpack_from("<HBBI", data, 0)
    if magic != lib.BTF_MAGIC:
        return []
    _fi_off, _fi_len, li_off, li_len = struct.unpack_from("<IIII", data, 8)
    pos, end = hdr_len + li_off, hdr_len + li_off + li_len
    if end > len(data) or li_len < 4:
        return []
    rec_size = struct.unpack_from("<I", data, pos)[0]
    pos += 4
    lines = []
    while pos + 8 <= end and rec_size >= 16:
        _sec_name, n = struct.unpack_from("<II", data, pos)
        pos += 8
        for i in range(n):
            _insn, _file, line_off, _col = struct.unpack_from("<IIII", data, pos + i * rec_size)
            lines.append(btf._str(line_off))
        pos += n * rec_size
    return list(dict.fromkeys(lines))


class _Dwarf:
    """Variables and named types of the object's DWARF, looked up lazily."""

    def __init__(self, elf: ELFFile) -> None:
        self.vars: Dict[str, List[Any]] = {}
        self.types: Dict[str, Any] = {}
        if not elf.has_dwarf_info():
            return
        try:
            dwarf = elf.get_dwarf_info()
        except Exception:  # relocations pyelftools does not know
            try:
                dwarf = elf.get_dwarf_info(relocate_dwarf_sections=False)
            except Exception:
                return
        tags = {"DW_TAG_structure_type": "struct ", "DW_TAG_union_type": "union ",
                "DW_TAG_typedef": "", "DW_TAG_enumeration_type": "enum "}
        for cu in dwarf.iter_CUs():
            for die in cu.iter_DIEs():
                name = die.attributes.get("DW_AT_name")
                if name is None:
                    continue
                n = name.value.decode(errors="replace")
                if die.tag in ("DW_TAG_variable", "DW_TAG_formal_parameter") and "DW_AT_type" in die.attributes:
                    self.vars.setdefault(n, []).append(die.get_DIE_from_attribute("DW_AT_type"))
                elif die.tag in tags and "DW_AT_declaration" not in die.attributes:
                    self.types.setdefault(tags[die.tag] + n, die)
                    self.types.setdefault(n, die)


def _lookup_type(name: str, btf: "B.Btf", dwarf: _Dwarf) -> Optional[T.Type]:
    name = " ".join(name.split())
    tid = T.find_btf_type(btf, name)
    if tid is not None:
        return T.from_btf(btf, tid)
    die = dwarf.types.get(name) or dwarf.types.get(name.split(" ", 1)[-1])
    return T.from_dwarf(die) if die is not None else None


def _type_of_sizeof(expr: str, btf: "B.Btf", dwarf: _Dwarf) -> Optional[T.Type]:
    """The type `sizeof(expr)` measures: `*e`, `e`, `struct event`, `e->x`."""
    expr = expr.strip().strip("()").strip()
    deref = expr.startswith("*")
    ident = expr.lstrip("*").strip()
    if re.fullmatch(r"\w+", ident) and ident in dwarf.vars:
        for die in dwarf.vars[ident]:
            target = T.pointee_of_dwarf(die) if deref else die
            res = T.resolve_dwarf(target) if target is not None else None
            if res is not None and res.tag in ("DW_TAG_structure_type", "DW_TAG_union_type"):
                return T.from_dwarf(target)
        return None
    if not deref and re.fullmatch(r"(struct|union)?\s*\w+", ident):
        return _lookup_type(ident, btf, dwarf)
    return None


def _header_struct(header: Optional[Path], btf: "B.Btf", dwarf: _Dwarf) -> Optional[T.Type]:
    if header is None or not header.is_file():
        return None
    text = re.sub(r"/\*.*?\*/|//[^\n]*", "", header.read_text(errors="replace"), flags=re.S)
    names = list(dict.fromkeys(re.findall(r"\b(struct|union)\s+(\w+)\s*\{", text)))
    if len(names) != 1:
        return None
    name = " ".join(names[0])
    return _lookup_type(name, btf, dwarf) or _compile_header_type(header, name)


def _compile_header_type(header: Path, name: str) -> Optional[T.Type]:
    """The type `name` of header, from the BTF of a one-line object that uses it (for
    objects whose BTF lacks it and whose DWARF is stripped)."""
    import tempfile

    from .clang import compile_bpf

    try:
        from wasm_bpf_sdk.build import BuildConfig, vmlinux_header
        vmlinux = vmlinux_header(BuildConfig(bpf_source=header, sources=[], output=header))
    except Exception:
        return None
    with tempfile.TemporaryDirectory(prefix="wasm-bpf-hdr-") as tmp:
        src, obj = Path(tmp) / "types.c", Path(tmp) / "types.o"
        src.write_text(f'#include "vmlinux.h"\n#include "{header.name}"\n{name} *__wasm_bpf_record_ref;\n')
        try:
            compile_bpf("clang-19", src, obj, vmlinux.parent, include_dirs=[header.resolve().parent])
        except SpecError:
            return None
        try:
            with B.Btf.from_file(str(obj)) as hbtf:
                tid = T.find_btf_type(hbtf, name)
                return T.from_btf(hbtf, tid) if tid is not None else None
        except (B.BtfError, T.BtfTypeError):
            return None


_HELPERS_TRACE_PRINTK = frozenset({lib.BPF_FUNC_trace_printk, lib.BPF_FUNC_trace_vprintk})
# helper -> (the register holding the map, the register holding the record)
_OUTPUT_ARGS = {lib.BPF_FUNC_perf_event_output: (2, 4), lib.BPF_FUNC_ringbuf_output: (1, 2)}
_MAP_DELETE_ELEM = 3  # BPF_FUNC_map_delete_elem (UAPI)
_MOV64_REG = lib.BPF_ALU64 | lib.BPF_MOV | lib.BPF_X
# instruction classes that do not write their dst register: jumps and stores
_NO_DST_WRITE = (lib.BPF_JMP, lib.BPF_JMP32, lib.BPF_ST, lib.BPF_STX)
# 64-bit spill to and fill from the stack (BPF_MEM 0x60 | BPF_DW 0x18): clang spills a
# looked-up value pointer across calls (mountsnoop's event in its per-CPU heap)
_SPILL_DW, _FILL_DW = lib.BPF_STX | 0x60 | 0x18, 0x01 | 0x60 | 0x18  # BPF_LDX is 0x01
_FRAME_POINTER = 10
_STORE_BYTES = {0x18: 8, 0x00: 4, 0x08: 2, 0x10: 1}  # the size bits of a store


def code_facts(elf: ELFFile) -> Tuple[Dict[str, str], Set[int], Set[str]]:
    """(buffer map -> the map whose value a program outputs to it, the helpers called,
    the maps whose entries a program deletes), read from the code. The first:
    `p = bpf_map_lookup_elem(&heap, ...); ... bpf_perf_event_output(ctx, &events, F, p, ...)`
    (when the call spans lines, the source lines do not show its arguments). A linear
    pass over each program's instructions, following map addresses (ld_imm64 with a
    relocation to a map), lookup results, register copies and 64-bit stack spills."""
    symbols = _symbols(elf)
    found: Dict[str, str] = {}
    helpers: Set[int] = set()
    deleted: Set[str] = set()
    for sec in elf.iter_sections():
        if sec["sh_type"] != "SHT_PROGBITS" or not sec["sh_flags"] & 0x4:  # SHF_EXECINSTR
            continue
        rel = elf.get_section_by_name(".rel" + sec.name)
        map_at = {}
        if isinstance(rel, RelocationSection):
            for r in rel.iter_relocations():
                if r["r_info_sym"] < len(symbols):
                    map_at[r["r_offset"] // INSN_SIZE] = symbols[r["r_info_sym"]].name
        code = sec.data()
        regs: Dict[int, Tuple[str, str]] = {}  # register -> ("map" | "value", map name)
        spilled: Dict[int, Tuple[str, str]] = {}  # stack offset (from r10) -> as regs
        i = 0
        while (i + 1) * INSN_SIZE <= len(code):
            op, regs_byte, off, imm = struct.unpack_from("<BBhi", code, i * INSN_SIZE)
            dst, src = regs_byte & 0xF, regs_byte >> 4
            if op == LD_IMM64:  # two slots
                if i in map_at:
                    regs[dst] = ("map", map_at[i])
                else:
                    regs.pop(dst, None)
                i += 2
                continue
            if op == CALL:  # a helper (src 0) or a BPF function: either leaves r0-r5 changed
                lookup = None
                if src == 0:
                    helpers.add(imm)
                    if imm in _OUTPUT_ARGS:
                        map_reg, data_reg = _OUTPUT_ARGS[imm]
                        m, d = regs.get(map_reg), regs.get(data_reg)
                        if m and d and m[0] == "map" and d[0] == "value":
                            found.setdefault(m[1], d[1])
                    if imm == _MAP_DELETE_ELEM and regs.get(1, ("", ""))[0] == "map":
                        deleted.add(regs[1][1])
                    lookup = regs.get(1) if imm == lib.BPF_FUNC_map_lookup_elem else None
                for clobbered in range(6):
                    regs.pop(clobbered, None)
                if lookup and lookup[0] == "map":
                    regs[0] = ("value", lookup[1])
            elif op == _MOV64_REG:  # dst = src
                if src in regs:
                    regs[dst] = regs[src]
                else:
                    regs.pop(dst, None)
            elif op & 0x07 in (lib.BPF_ST, lib.BPF_STX) and dst == _FRAME_POINTER:
                size = _STORE_BYTES.get(op & 0x18, 8)
                for at in [at for at in spilled if at < off + size and off < at + 8]:
                    del spilled[at]  # overwritten, wholly or in part
                if op == _SPILL_DW and src in regs:
                    spilled[off] = regs[src]
            elif op == _FILL_DW and src == _FRAME_POINTER and off in spilled:
                regs[dst] = spilled[off]
            elif op & 0x07 not in _NO_DST_WRITE:  # the class (low 3 bits) writes dst
                regs.pop(dst, None)
            i += 1
    return found, helpers, deleted


def _record_types(spec: ObjectSpec, elf: ELFFile, btf: "B.Btf", what: str, event_type: str,
                  header: Optional[Path], from_values: Dict[str, str]) -> None:
    buffers = spec.buffers()
    if not buffers:
        return
    dwarf = _Dwarf(elf)
    if event_type:
        t = _lookup_type(event_type, btf, dwarf)
        if t is None and header is not None and header.is_file():
            t = _compile_header_type(header, " ".join(event_type.split()))
        if t is None:
            raise SpecError(f"--event-type {event_type!r}: no such type in {what}'s BTF or DWARF "
                            "(give a struct, union or typedef name the program defines, and compile with -g)")
        for m in buffers:
            m.record = t
        spec.record_hint = "--event-type"
        return
    by_map: Dict[str, Tuple[str, str]] = {}
    for line in btf_ext_lines(elf, btf):
        for call in _RESERVE.finditer(line):
            by_map.setdefault(call.group(1), ("", call.group(2)))
        for rx in (_RB_OUTPUT, _PERF_OUTPUT):
            for call in rx.finditer(line):
                by_map.setdefault(call.group(1), (call.group(2), call.group(3)))
    fallback = _header_struct(header, btf, dwarf)
    for m in buffers:
        if m.name in by_map:
            var, size_expr = by_map[m.name]
            t = _type_of_sizeof(size_expr, btf, dwarf)
            if t is None and var:
                t = _type_of_sizeof(var, btf, dwarf)
            if t is not None:
                m.record = t
                spec.record_hint = "source"
                continue
        source = next((s for s in spec.maps if s.name == from_values.get(m.name)), None)
        if source is not None and source.value is not None:
            m.record = source.value  # e.g. a per-CPU array used as a heap for big records
            spec.record_hint = f"the value of {source.name}"
            continue
        if fallback is not None:
            m.record = fallback
            spec.record_hint = f"{header.name if header else ''}"
