"""Checks a BPF ELF object before libbpf parses it.

libbpf 1.1 trusts much of what it reads: type ids in .BTF and .BTF.ext, string
offsets, record sizes, symbol and relocation indices. A malformed object a guest
hands the host could crash the host (fuzz/ found SIGSEGVs in bpf_object__open_mem
and bpf_object__load). Everything here is also what the kernel or libbpf require
of a well-formed object, so no object that could load is refused; what is refused
gets a message naming the cause.

The ELF part reads the section headers, symbols and relocations with struct, as
libbpf does (pyelftools would add ~28 ms and 2.7 MiB to every run that loads an
object, for a few fixed-size records); the .BTF and .BTF.ext part likewise, because
pyelftools does not parse BTF and libbpf 1.1's
btf__new does no sanity checks of its own."""
from __future__ import annotations

import re
import struct
from typing import Dict, Iterable, List, NamedTuple, Optional, Tuple

from ._native import lib
from .errors import WasmBpfError

SHN_LORESERVE = 0xFF00
SHDR_SIZE, SYM_SIZE, REL_SIZE = 64, 24, 16  # ELF64
EHDR = struct.Struct("<16sHHIQQQIHHHHHH")  # Elf64_Ehdr
SHDR = struct.Struct("<IIQQQQIIQQ")  # Elf64_Shdr
SYM = struct.Struct("<IBBHQQ")  # Elf64_Sym
REL = struct.Struct("<QQ")  # Elf64_Rel
EM_BPF = 247
SHT_PROGBITS, SHT_SYMTAB, SHT_STRTAB, SHT_NOBITS, SHT_REL = 1, 2, 3, 8, 9
SHN_UNDEF, SHN_ABS, SHN_COMMON = 0, 0xFFF1, 0xFFF2
MAX_TYPE_CHAIN = 32  # the kernel's MAX_RESOLVE_DEPTH: longer modifier chains are refused there too

# BTF kinds
INT, PTR, ARRAY, STRUCT, UNION, ENUM, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT = (
    lib.BTF_KIND_INT, lib.BTF_KIND_PTR, lib.BTF_KIND_ARRAY, lib.BTF_KIND_STRUCT, lib.BTF_KIND_UNION,
    lib.BTF_KIND_ENUM, lib.BTF_KIND_FWD, lib.BTF_KIND_TYPEDEF, lib.BTF_KIND_VOLATILE, lib.BTF_KIND_CONST,
    lib.BTF_KIND_RESTRICT)
FUNC, FUNC_PROTO, VAR, DATASEC, FLOAT, DECL_TAG, TYPE_TAG, ENUM64 = (
    lib.BTF_KIND_FUNC, lib.BTF_KIND_FUNC_PROTO, lib.BTF_KIND_VAR, lib.BTF_KIND_DATASEC, lib.BTF_KIND_FLOAT,
    lib.BTF_KIND_DECL_TAG, lib.BTF_KIND_TYPE_TAG, lib.BTF_KIND_ENUM64)
REFERS = {PTR, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FUNC_PROTO, VAR, DECL_TAG, TYPE_TAG}
MODIFIERS = {TYPEDEF, VOLATILE, CONST, RESTRICT, TYPE_TAG}
CORE_RELO_KINDS = 13  # BPF_CORE_FIELD_BYTE_OFFSET .. BPF_CORE_TYPE_MATCHES
ACCESS = re.compile(rb"^[0-9]+(:[0-9]+)*$")


class ElfCheckError(WasmBpfError, ValueError):
    """The object is malformed; str() says where."""


def check(data: bytes) -> None:
    """Raises ElfCheckError naming the first malformed part of BPF object `data`."""
    sections = _sections(data)
    names = {s.name: i for i, s in enumerate(sections)}
    _symbols_and_relocations(sections)
    btf = names.get(".BTF")
    if btf is None:
        return  # libbpf refuses a map definition that needs BTF itself, cleanly
    types, strings = _btf(sections[btf].data)
    _map_definitions(types, strings)
    ext = names.get(".BTF.ext")
    if ext is not None:
        _btf_ext(sections[ext].data, types, strings, {n: sections[i].size for n, i in names.items()})


# ---- ELF ------------------------------------------------------------------------------------
class _ElfSection(NamedTuple):
    """A section header, its name checked."""
    name: str
    type: int  # SHT_*
    offset: int
    size: int  # 0 for SHT_NOBITS: libbpf sees no bytes there
    link: int
    info: int
    data: bytes  # b"" for SHT_NOBITS


def _sections(data: bytes) -> List[_ElfSection]:
    if len(data) < 16 or data[:4] != b"\x7fELF":
        raise ElfCheckError("not an ELF file (no \\x7fELF magic)")
    if data[4] != 2 or data[5] != 1:  # EI_CLASS, EI_DATA
        raise ElfCheckError("not a 64-bit little-endian ELF file")
    if len(data) < EHDR.size:
        raise ElfCheckError(f"not an ELF file (too short for an ELF header: {len(data)} bytes)")
    _, _, machine, _, _, _, shoff, _, _, _, _, shentsize, shnum, shstrndx = EHDR.unpack_from(data)
    if machine != EM_BPF:
        raise ElfCheckError(f"ELF machine {machine} is not EM_BPF ({EM_BPF})")
    if shentsize != SHDR_SIZE:
        raise ElfCheckError(f"section header size {shentsize} is not {SHDR_SIZE}")
    # e_shnum 0 and e_shstrndx SHN_XINDEX (more than 0xff00 sections, found in
    # section 0) are refused.
    if shnum == 0 or shoff + shnum * SHDR_SIZE > len(data):
        raise ElfCheckError(f"section headers ({shnum} at {shoff:#x}) lie outside the file")
    if shstrndx >= shnum:
        raise ElfCheckError(f"section name table index {shstrndx} is not a section")
    # (sh_name, sh_type, sh_offset, sh_size, sh_link, sh_info, sh_entsize); SHF_COMPRESSED
    # is not looked at: libbpf reads the bytes as they are
    headers = [(h[0], h[1], h[4], h[5], h[6], h[7], h[9])
               for h in SHDR.iter_unpack(data[shoff:shoff + shnum * SHDR_SIZE])]
    for i, (_, stype, offset, size, _, _, _) in enumerate(headers):
        if stype != SHT_NOBITS and i and offset + size > len(data):
            raise ElfCheckError(f"section {i} ({size} bytes at {offset:#x}) runs past the end of the file")
    _, stype, offset, size, _, _, _ = headers[shstrndx]
    if stype != SHT_STRTAB:
        raise ElfCheckError(f"section name table {shstrndx} is not a string table")
    shstr = data[offset:offset + size] if shstrndx else b""
    out: List[_ElfSection] = []
    for i, (sh_name, stype, offset, size, link, info, entsize) in enumerate(headers):
        name = _string(shstr, sh_name, f"the name of section {i}") if i else ""
        if stype in (SHT_SYMTAB, SHT_REL):
            want = SYM_SIZE if stype == SHT_SYMTAB else REL_SIZE
            if entsize != want or size % want:
                raise ElfCheckError(f"section {name!r}: entries of {entsize} bytes, {size} in all "
                                    f"(want {want})")
            linked = SHT_STRTAB if stype == SHT_SYMTAB else SHT_SYMTAB
            if link >= shnum or headers[link][1] != linked:
                raise ElfCheckError(f"section {name!r} links to section {link}, not a "
                                    f"{'string' if stype == SHT_SYMTAB else 'symbol'} table")
            if stype == SHT_REL and (info == 0 or info >= shnum):
                raise ElfCheckError(f"relocation section {name!r} applies to section {info}, "
                                    "which does not exist")
        if stype == SHT_NOBITS:
            size = 0
        out.append(_ElfSection(name, stype, offset, size, link, info, data[offset:offset + size]))
    return out


def section_data(data: bytes, names: Iterable[str]) -> Dict[str, bytes]:
    """The bytes of the SHT_PROGBITS sections of object `data` named in `names` (the
    object has passed check())."""
    wanted = set(names)
    return {s.name: s.data for s in _sections(data) if s.name in wanted and s.type == SHT_PROGBITS}


def _string(table: bytes, offset: int, what: str) -> str:
    # the table's own bytes up to the NUL: an offset past its end or bad UTF-8 is refused
    end = table.find(b"\0", offset) if offset < len(table) else -1
    if end < 0:
        raise ElfCheckError(f"{what}: string offset {offset} is outside its string table")
    try:
        return table[offset:end].decode()
    except UnicodeDecodeError:
        raise ElfCheckError(f"{what}: the string at offset {offset} is not UTF-8") from None


def _symbols_and_relocations(sections: List[_ElfSection]) -> None:
    symtabs = [s for s in sections if s.type == SHT_SYMTAB]
    if len(symtabs) > 1:
        raise ElfCheckError(f"{len(symtabs)} symbol tables (want one)")
    nsyms = 0
    for sec in symtabs:
        strtab = sections[sec.link].data
        nsyms = sec.size // SYM_SIZE
        for n, (st_name, _, _, shndx, value, sym_size) in enumerate(SYM.iter_unpack(sec.data)):
            name = _string(strtab, st_name, f"symbol {n}")
            if shndx in (SHN_UNDEF, SHN_ABS, SHN_COMMON):
                continue
            if len(sections) <= shndx < SHN_LORESERVE:
                raise ElfCheckError(f"symbol {name or n!r} is in section {shndx}, which does not exist")
            if shndx < len(sections) and sections[shndx].type != SHT_NOBITS \
                    and value + sym_size > sections[shndx].size and sym_size:
                raise ElfCheckError(f"symbol {name or n!r} ({sym_size} bytes at {value:#x}) runs past the end "
                                    f"of section {sections[shndx].name!r}")
    for sec in sections:
        if sec.type != SHT_REL:
            continue
        target_size = sections[sec.info].size
        for n, (r_offset, r_info) in enumerate(REL.iter_unpack(sec.data)):
            symbol = r_info >> 32
            if symbol >= nsyms:
                raise ElfCheckError(f"{sec.name}: relocation {n} names symbol {symbol}, of {nsyms}")
            if r_offset >= target_size:
                raise ElfCheckError(f"{sec.name}: relocation {n} at {r_offset:#x} is outside its section")


# ---- BTF ------------------------------------------------------------------------------------
BtfType = Tuple[int, int, int, bytes, int]  # kind, vlen, size_or_type, the bytes that follow, name_off


def _btf_header(blob: bytes, what: str) -> Tuple[int, int]:
    if len(blob) < 8:
        raise ElfCheckError(f"{what} is too short for its header")
    magic, version, flags, hdr_len = struct.unpack_from("<HBBI", blob, 0)
    if magic != lib.BTF_MAGIC or version != 1 or flags != 0:
        raise ElfCheckError(f"{what}: bad magic {magic:#x}, version {version} or flags {flags}")
    if hdr_len < 8 or hdr_len > len(blob) or hdr_len % 4:
        raise ElfCheckError(f"{what}: header length {hdr_len} is wrong")
    return hdr_len, len(blob) - hdr_len


def _btf(blob: bytes) -> Tuple[List[BtfType], bytes]:
    hdr_len, body = _btf_header(blob, ".BTF")
    if hdr_len < 24:
        raise ElfCheckError(f".BTF: header length {hdr_len} is too short")
    type_off, type_len, str_off, str_len = struct.unpack_from("<IIII", blob, 8)
    if type_off + type_len > body or str_off + str_len > body or type_off % 4 or type_len % 4:
        raise ElfCheckError(".BTF: type or string section outside the blob")
    if type_off < str_off + str_len and str_off < type_off + type_len:
        raise ElfCheckError(".BTF: type and string sections overlap")
    strings = blob[hdr_len + str_off:hdr_len + str_off + str_len]
    if not strings or strings[0] != 0 or strings[-1] != 0:
        raise ElfCheckError(".BTF: the string section does not start and end with NUL")
    raw = blob[hdr_len + type_off:hdr_len + type_off + type_len]
    types: List[BtfType] = [(0, 0, 0, b"", 0)]  # id 0: void
    pos = 0
    while pos < len(raw):
        if pos + 12 > len(raw):
            raise ElfCheckError(f".BTF: type {len(types)} is cut off")
        name_off, info, size_or_type = struct.unpack_from("<III", raw, pos)
        kind, vlen = (info >> 24) & 0x1F, info & 0xFFFF
        extra = _extra_size(kind, vlen, len(types))
        if pos + 12 + extra > len(raw):
            raise ElfCheckError(f".BTF: type {len(types)} is cut off")
        _string(strings, name_off, f".BTF: the name of type {len(types)}")
        types.append((kind, vlen, size_or_type, raw[pos + 12:pos + 12 + extra], name_off))
        pos += 12 + extra
    _btf_references(types, strings)
    return types, strings


def _extra_size(kind: int, vlen: int, type_id: int) -> int:
    if kind in (INT, VAR, DECL_TAG):
        return 4
    if kind == ARRAY:
        return 12
    if kind in (STRUCT, UNION, DATASEC, ENUM64):
        return 12 * vlen
    if kind in (ENUM, FUNC_PROTO):
        return 8 * vlen
    if kind in (PTR, FWD, TYPEDEF, VOLATILE, CONST, RESTRICT, FUNC, FLOAT, TYPE_TAG):
        return 0
    raise ElfCheckError(f".BTF: type {type_id} has unknown kind {kind}")


def _btf_references(types: List[BtfType], strings: bytes) -> None:
    count = len(types)

    def ref(tid: int, what: str) -> int:
        if tid >= count:
            raise ElfCheckError(f".BTF: {what} refers to type {tid}, of {count - 1}")
        return types[tid][0]

    for tid, (kind, vlen, size_or_type, extra, _) in enumerate(types):
        if tid == 0:
            continue
        what = f"type {tid}"
        if kind in REFERS:
            target = ref(size_or_type, what)
            if kind == FUNC and target != FUNC_PROTO:
                raise ElfCheckError(f".BTF: function {tid} does not point to a prototype")
        if kind == ARRAY:
            elem, index, _ = struct.unpack_from("<III", extra)
            ref(elem, what)
            ref(index, what)
        elif kind in (STRUCT, UNION):
            for i in range(vlen):
                name_off, member, _ = struct.unpack_from("<III", extra, 12 * i)
                _string(strings, name_off, f".BTF: member {i} of {what}")
                ref(member, f"member {i} of {what}")
        elif kind == FUNC_PROTO:
            for i in range(vlen):
                name_off, param = struct.unpack_from("<II", extra, 8 * i)
                _string(strings, name_off, f".BTF: parameter {i} of {what}")
                ref(param, f"parameter {i} of {what}")
        elif kind in (ENUM, ENUM64):
            step = 8 if kind == ENUM else 12
            for i in range(vlen):
                _string(strings, struct.unpack_from("<I", extra, step * i)[0], f".BTF: value {i} of {what}")
        elif kind == DATASEC:
            for i in range(vlen):
                var, _, _ = struct.unpack_from("<III", extra, 12 * i)
                if ref(var, f"variable {i} of {what}") not in (VAR, FUNC):
                    raise ElfCheckError(f".BTF: entry {i} of section {tid} is not a variable")
    for tid, (kind, _, _, _, _) in enumerate(types):  # every reference is in range by now
        if kind in MODIFIERS | {PTR, VAR}:
            _chain(types, tid)


def _map_definitions(types: List[BtfType], strings: bytes) -> None:
    """The maps of SEC(".maps"): a struct_ops map declared there (its `type` field
    says 26) crashes libbpf 1.1 at load, which expects those only from
    SEC(".struct_ops")."""
    for kind, vlen, _, extra, _ in types:
        if kind != DATASEC:
            continue
        for i in range(vlen):
            var, _, _ = struct.unpack_from("<III", extra, 12 * i)
            var_name = _string(strings, types[var][4], f".BTF: the name of variable {var}")
            definition = _skip(types, types[var][2])
            if types[definition][0] != STRUCT:
                continue
            members = types[definition][3]
            for m in range(types[definition][1]):
                name_off, member, _ = struct.unpack_from("<III", members, 12 * m)
                if _string(strings, name_off, f".BTF: member {m} of type {definition}") != "type":
                    continue
                ptr = _skip(types, member)
                if types[ptr][0] != PTR or types[types[ptr][2]][0] != ARRAY:
                    continue
                map_type = struct.unpack_from("<III", types[types[ptr][2]][3])[2]
                if map_type == lib.BPF_MAP_TYPE_STRUCT_OPS:
                    raise ElfCheckError(f"map {var_name!r} in SEC(\".maps\") is a struct_ops map: "
                                        "declare those in SEC(\".struct_ops\")")


def _skip(types: List[BtfType], tid: int) -> int:
    """tid past its modifiers and typedefs (the chains are known to be short)."""
    for _ in range(MAX_TYPE_CHAIN):
        if types[tid][0] not in MODIFIERS:
            return tid
        tid = types[tid][2]
    return tid


def _chain(types: List[BtfType], tid: int) -> None:
    """Modifiers and typedefs lead somewhere within MAX_TYPE_CHAIN steps (libbpf
    follows them without a limit: a cycle would hang it)."""
    start = tid
    for _ in range(MAX_TYPE_CHAIN):
        kind, _, size_or_type, _, _ = types[tid]
        if kind not in MODIFIERS | {PTR, VAR}:
            return
        tid = size_or_type
    raise ElfCheckError(f".BTF: the chain of modifiers from type {start} is a cycle or too long")


def _btf_ext(blob: bytes, types: List[BtfType], strings: bytes, section_sizes: Dict[str, int]) -> None:
    hdr_len, body = _btf_header(blob, ".BTF.ext")
    if hdr_len < 24:
        raise ElfCheckError(f".BTF.ext: header length {hdr_len} is too short")
    blocks = [("func_info", *struct.unpack_from("<II", blob, 8), 8),
              ("line_info", *struct.unpack_from("<II", blob, 16), 16)]
    if hdr_len >= 32:
        blocks.append(("core_relo", *struct.unpack_from("<II", blob, 24), 16))
    for what, off, length, min_record in blocks:
        if not length:
            continue
        if off + length > body or off % 4:
            raise ElfCheckError(f".BTF.ext: {what} ({length} bytes at {off}) is outside the section")
        _ext_block(blob[hdr_len + off:hdr_len + off + length], what, min_record, types, strings, section_sizes)


def _ext_block(block: bytes, what: str, min_record: int, types: List[BtfType], strings: bytes,
               section_sizes: Dict[str, int]) -> None:
    if len(block) < 4:
        raise ElfCheckError(f".BTF.ext: {what} is too short")
    record, = struct.unpack_from("<I", block, 0)
    if record < min_record or record % 4:
        raise ElfCheckError(f".BTF.ext: {what} records of {record} bytes (at least {min_record})")
    padded = block + bytes(16)  # records shorter than 16 bytes read zeros past their end
    pos = 4
    while pos < len(block):
        if pos + 8 > len(block):
            raise ElfCheckError(f".BTF.ext: {what} is cut off")
        name_off, num = struct.unpack_from("<II", block, pos)
        section = _string(strings, name_off, f".BTF.ext: a {what} section name")
        pos += 8
        if num == 0 or pos + num * record > len(block):
            raise ElfCheckError(f".BTF.ext: {what} of {section!r}: {num} records do not fit")
        size: Optional[int] = section_sizes.get(section)
        for n in range(num):
            insn_off, a, b, c = struct.unpack_from("<IIII", padded, pos + n * record)
            if insn_off % 8 or (size is not None and insn_off >= size):
                raise ElfCheckError(f".BTF.ext: {what} {n} of {section!r} is at instruction offset {insn_off}, "
                                    "not an instruction of its section")
            if what == "func_info":
                if a >= len(types) or types[a][0] != FUNC:
                    raise ElfCheckError(f".BTF.ext: func_info {n} of {section!r}: type {a} is not a function")
            elif what == "line_info":
                _string(strings, a, f".BTF.ext: the file name of line_info {n}")
                _string(strings, b, f".BTF.ext: the line of line_info {n}")
            else:
                if a == 0 or a >= len(types):
                    raise ElfCheckError(f".BTF.ext: CO-RE relocation {n} of {section!r}: no type {a}")
                access = _string(strings, b, f".BTF.ext: the access string of CO-RE relocation {n}")
                if not ACCESS.match(access.encode()) or c >= CORE_RELO_KINDS:
                    raise ElfCheckError(f".BTF.ext: CO-RE relocation {n} of {section!r}: "
                                        f"access {access!r}, kind {c}")
        pos += num * record
