"""Mutations of real files, as hypothesis strategies: generic byte mutations, and ones
aimed at the structure of ELF (header fields, section headers, symbols, the BTF a
loader parses) and Wasm (section contents, sizes, ids). Each mutation is one draw
of fixed shape; an input applies one to four of them to one seed file."""
import struct
from dataclasses import dataclass
from typing import Any, Callable, Sequence, Tuple

from hypothesis import strategies as st

INTERESTING = [0, 1, 0x7F, 0x80, 0xFF, 0x7FFF, 0xFFFF, 0x7FFFFFFF, 0x80000000, 0xFFFFFFFF,
               0x7FFFFFFFFFFFFFFF, 0xFFFFFFFFFFFFFFFF, 0x40, 0x1000, 0x10000]


@dataclass(frozen=True)
class Seed:
    name: str
    data: bytes
    regions: Tuple[Tuple[str, int, int], ...]  # (what, offset, size) worth aiming at


# ---- generic byte mutations ------------------------------------------------------------
def _flip(data: bytearray, draw: Any) -> str:
    n = draw(st.integers(1, 8))
    for _ in range(n):
        pos = draw(st.integers(0, len(data) - 1))
        data[pos] ^= 1 << draw(st.integers(0, 7))
    return f"flip {n} bits"


def _overwrite(data: bytearray, draw: Any, start: int = 0, size: int = -1) -> str:
    size = len(data) - start if size < 0 else size
    if size <= 0:
        return "overwrite nothing"
    pos = start + draw(st.integers(0, size - 1))
    width = draw(st.sampled_from([1, 2, 4, 8]))
    if draw(st.booleans()):
        value = draw(st.sampled_from(INTERESTING)) & ((1 << (8 * width)) - 1)
        chunk = value.to_bytes(width, "little")
    else:
        chunk = draw(st.binary(min_size=width, max_size=width))
    data[pos:pos + width] = chunk  # may lengthen the file by a few bytes at its end
    return f"overwrite {width} bytes at {pos:#x}"


def _truncate(data: bytearray, draw: Any) -> str:
    keep = draw(st.integers(0, len(data) - 1))
    del data[keep:]
    return f"truncate to {keep}"


def _splice(data: bytearray, draw: Any, others: Sequence[bytes]) -> str:
    other = others[draw(st.integers(0, len(others) - 1))]
    src = draw(st.integers(0, len(other) - 1))
    n = draw(st.integers(1, 256))
    dst = draw(st.integers(0, len(data)))
    chunk = other[src:src + n]
    if draw(st.booleans()):
        data[dst:dst + len(chunk)] = chunk  # overwrite
        return f"splice {len(chunk)} bytes over {dst:#x}"
    data[dst:dst] = chunk  # insert: every later offset moves
    return f"insert {len(chunk)} bytes at {dst:#x}"


def _delete(data: bytearray, draw: Any) -> str:
    pos = draw(st.integers(0, len(data) - 1))
    n = draw(st.integers(1, 64))
    del data[pos:pos + n]
    return f"delete {n} bytes at {pos:#x}"


def _in_region(data: bytearray, draw: Any, regions: Sequence[Tuple[str, int, int]]) -> str:
    if not regions:
        return _flip(data, draw)
    what, offset, size = regions[draw(st.integers(0, len(regions) - 1))]
    if draw(st.booleans()):
        return f"{what}: " + _overwrite(data, draw, offset, min(size, len(data) - offset))
    n = draw(st.integers(1, 4))
    for _ in range(n):
        if size > 0 and offset + size <= len(data):
            data[offset + draw(st.integers(0, size - 1))] ^= 1 << draw(st.integers(0, 7))
    return f"{what}: flip {n} bits"


# ---- ELF -----------------------------------------------------------------------------------
# ELF64 little endian: (name, offset, width) of the header fields and section header fields.
EHDR_FIELDS = [("e_type", 16, 2), ("e_machine", 18, 2), ("e_version", 20, 4), ("e_entry", 24, 8),
               ("e_phoff", 32, 8), ("e_shoff", 40, 8), ("e_flags", 48, 4), ("e_ehsize", 52, 2),
               ("e_phentsize", 54, 2), ("e_phnum", 56, 2), ("e_shentsize", 58, 2), ("e_shnum", 60, 2),
               ("e_shstrndx", 62, 2), ("ei_class", 4, 1), ("ei_data", 5, 1)]
SHDR_FIELDS = [("sh_name", 0, 4), ("sh_type", 4, 4), ("sh_flags", 8, 8), ("sh_addr", 16, 8),
               ("sh_offset", 24, 8), ("sh_size", 32, 8), ("sh_link", 40, 4), ("sh_info", 44, 4),
               ("sh_addralign", 48, 8), ("sh_entsize", 56, 8)]
SYM_FIELDS = [("st_name", 0, 4), ("st_info", 4, 1), ("st_other", 5, 1), ("st_shndx", 6, 2),
              ("st_value", 8, 8), ("st_size", 16, 8)]
REL_FIELDS = [("r_offset", 0, 8), ("r_info", 8, 8)]


def elf_seed(name: str, data: bytes) -> Seed:
    """The sections of a real ELF64 object (pyelftools reads it), as regions worth
    aiming at."""
    import io

    from elftools.elf.elffile import ELFFile

    regions = [(f"section {sec.name}", sec["sh_offset"], sec["sh_size"])
               for sec in ELFFile(io.BytesIO(data)).iter_sections()
               if sec["sh_size"] and sec["sh_type"] != "SHT_NOBITS"]
    return Seed(name, data, tuple(regions))


def _set_field(data: bytearray, draw: Any, at: int, field: Tuple[str, int, int], what: str) -> str:
    name, offset, width = field
    pos = at + offset
    if pos + width > len(data):
        return f"{what}.{name}: past the end"
    old = int.from_bytes(data[pos:pos + width], "little")
    choice = draw(st.integers(0, 3))
    if choice == 0:
        value = draw(st.sampled_from(INTERESTING))
    elif choice == 1:
        value = old + draw(st.integers(-16, 16))
    elif choice == 2:
        value = len(data) + draw(st.integers(-64, 64))
    else:
        value = draw(st.integers(0, (1 << (8 * width)) - 1))
    value &= (1 << (8 * width)) - 1
    data[pos:pos + width] = value.to_bytes(width, "little")
    return f"{what}.{name} {old:#x} -> {value:#x}"


def _elf_structure(data: bytearray, draw: Any, seed: Seed) -> str:
    if len(data) < 64 or data[:4] != b"\x7fELF":
        return _flip(data, draw)
    shoff, = struct.unpack_from("<Q", data, 40)
    shentsize, shnum = struct.unpack_from("<HH", data, 58)
    kind = draw(st.sampled_from(["header", "section", "section", "symbol", "reloc"]))
    if kind == "header" or shnum == 0 or shentsize < 64:
        return _set_field(data, draw, 0, EHDR_FIELDS[draw(st.integers(0, len(EHDR_FIELDS) - 1))], "ehdr")
    if kind == "section":
        index = draw(st.integers(0, shnum - 1))
        field = SHDR_FIELDS[draw(st.integers(0, len(SHDR_FIELDS) - 1))]
        return _set_field(data, draw, shoff + index * shentsize, field, f"shdr[{index}]")
    # an entry of the symbol table or of a relocation section, found by type
    wanted = 2 if kind == "symbol" else 9  # SHT_SYMTAB, SHT_REL
    tables = []
    for i in range(shnum):
        at = shoff + i * shentsize
        if at + 64 <= len(data) and struct.unpack_from("<I", data, at + 4)[0] == wanted:
            tables.append(struct.unpack_from("<QQ", data, at + 24))
    if not tables:
        return _flip(data, draw)
    offset, size = tables[draw(st.integers(0, len(tables) - 1))]
    entsize = 24 if kind == "symbol" else 16
    count = size // entsize
    if count == 0:
        return _flip(data, draw)
    index = draw(st.integers(0, count - 1))
    fields = SYM_FIELDS if kind == "symbol" else REL_FIELDS
    return _set_field(data, draw, offset + index * entsize, fields[draw(st.integers(0, len(fields) - 1))],
                      f"{kind}[{index}]")


GENERIC_OPS = ("flip", "overwrite", "truncate", "splice", "delete")


def _mutation(seeds: Sequence[Seed], max_steps: int, min_size: int, ops: Sequence[str],
              specific: Callable[[str, bytearray, Any, Seed], str]) -> Any:
    """A strategy: (seed name, mutated bytes, description of what was done). Each of
    1..max_steps steps draws an op from `ops` (the format's own, repeated for weight)
    or GENERIC_OPS; specific(op, data, draw, seed) applies a format's own op."""
    others = [s.data for s in seeds]
    choices = [*ops, *GENERIC_OPS]

    @st.composite
    def mutated(draw: Callable[[Any], Any]) -> Tuple[str, bytes, str]:
        seed = seeds[draw(st.integers(0, len(seeds) - 1))]
        data = bytearray(seed.data)
        steps = []
        for _ in range(draw(st.integers(1, max_steps))):
            if len(data) <= min_size:
                break
            op = draw(st.sampled_from(choices))
            steps.append(_generic(op, data, draw, others) if op in GENERIC_OPS else specific(op, data, draw, seed))
        return seed.name, bytes(data), "; ".join(steps)

    return mutated()


def _elf_op(op: str, data: bytearray, draw: Any, seed: Seed) -> str:
    if op == "structure":
        return _elf_structure(data, draw, seed)
    if op == "btf":  # libbpf parses .BTF and .BTF.ext itself, before the kernel sees them
        return _in_region(data, draw, [r for r in seed.regions if "BTF" in r[0]])
    return _in_region(data, draw, seed.regions)  # "region"


def elf_mutation(seeds: Sequence[Seed]) -> Any:
    """A strategy: (seed name, mutated bytes, description of what was done)."""
    return _mutation(seeds, 4, 0, ["structure"] * 4 + ["btf"] * 2 + ["region"] * 2, _elf_op)


def _generic(op: str, data: bytearray, draw: Any, others: Sequence[bytes]) -> str:
    if op == "flip":
        return _flip(data, draw)
    if op == "overwrite":
        return _overwrite(data, draw)
    if op == "truncate":
        return _truncate(data, draw)
    if op == "splice":
        return _splice(data, draw, others)
    return _delete(data, draw)


# ---- Wasm ---------------------------------------------------------------------------------
WASM_SECTIONS = {0: "custom", 1: "type", 2: "import", 3: "function", 4: "table", 5: "memory", 6: "global",
                 7: "export", 8: "start", 9: "element", 10: "code", 11: "data", 12: "datacount"}


def _leb(data: bytes, pos: int) -> Tuple[int, int]:
    value = shift = 0
    while True:
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        shift += 7
        if not byte & 0x80:
            return value, pos


def wasm_seed(name: str, data: bytes) -> Seed:
    """The sections of a Wasm module: (name, offset of its contents, size), and the
    one-byte section id of each as its own region ("id:NAME")."""
    regions = []
    pos = 8
    while pos < len(data):
        sid = data[pos]
        size, body = _leb(data, pos + 1)
        what = WASM_SECTIONS.get(sid, str(sid))
        regions.append((what, body, size))
        regions.append((f"id:{what}", pos, 1))
        pos = body + size
    return Seed(name, data, tuple(regions))


def wasm_mutation(seeds: Sequence[Seed]) -> Any:
    """A strategy: (seed name, mutated bytes, description). Data-section mutations
    keep the module valid (they change strings, and the BPF object a guest embeds);
    code and type mutations mostly make it invalid, which is what validation is for."""
    return _mutation(seeds, 3, 8, ["data"] * 5 + ["code"] * 2 + ["section"] * 2, _wasm_op)


def _wasm_op(op: str, data: bytearray, draw: Any, seed: Seed) -> str:
    if op in ("data", "code"):
        return _in_region(data, draw, [r for r in seed.regions if r[0] == op])
    return _in_region(data, draw, [r for r in seed.regions if not r[0].startswith("id:")])  # "section"
