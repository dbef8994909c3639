"""What the skeleton generator needs from a BPF ELF object, read with pyelftools:
section placement, symbols, the programs, and the data sections libbpf turns into
internal maps."""
from __future__ import annotations

import io
from dataclasses import dataclass
from pathlib import Path

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from wasm_bpf.errors import WasmBpfError


class ObjectError(WasmBpfError):
    """The file is not a BPF ELF object the generators can use."""


@dataclass(frozen=True)
class Section:
    index: int
    name: str
    type: str  # e.g. "SHT_PROGBITS"
    offset: int  # file offset
    size: int
    executable: bool


@dataclass(frozen=True)
class Symbol:
    name: str
    section: int  # section index, or -1 when undefined/special
    value: int
    size: int
    bind: str  # "STB_GLOBAL", ...
    type: str  # "STT_FUNC", ...
    hidden: bool


class ObjectFile:
    """A BPF ELF object file held in memory."""

    EM_BPF = "EM_BPF"

    def __init__(self, path: str | Path) -> None:
        self.path = Path(path)
        try:
            self.data = self.path.read_bytes()
            elf = ELFFile(io.BytesIO(self.data))
        except OSError as e:
            raise ObjectError(f"{path}: {e.strerror}") from e
        except ELFError as e:
            raise ObjectError(f"{path}: not an ELF file ({e})") from e
        if elf["e_machine"] != self.EM_BPF:
            raise ObjectError(f"{path}: not a BPF object (machine {elf['e_machine']})")
        self.sections = [
            Section(i, s.name, s["sh_type"], s["sh_offset"], s["sh_size"],
                    bool(s["sh_flags"] & 0x4))  # SHF_EXECINSTR
            for i, s in enumerate(elf.iter_sections())
        ]
        self.symbols: list[Symbol] = []
        symtab = elf.get_section_by_name(".symtab")
        if symtab is None:
            raise ObjectError(f"{path}: no symbol table")
        for sym in symtab.iter_symbols():
            shndx = sym["st_shndx"]
            self.symbols.append(Symbol(
                sym.name, shndx if isinstance(shndx, int) else -1, sym["st_value"],
                sym["st_size"], sym["st_info"]["bind"], sym["st_info"]["type"],
                sym["st_other"]["visibility"] == "STV_HIDDEN"))
        if not any(s.name == ".BTF" for s in self.sections):
            raise ObjectError(f"{path}: no .BTF section (compile the BPF program with -g)")

    def section(self, name: str) -> Section | None:
        return next((s for s in self.sections if s.name == name), None)

    def programs(self) -> list[tuple[str, str]]:
        """(program name, section name) in libbpf's order. Functions in .text are
        subprograms, not programs."""
        out = []
        for sec in self.sections:
            if not sec.executable or sec.name == ".text":
                continue
            funcs = sorted((s for s in self.symbols
                            if s.section == sec.index and s.type == "STT_FUNC"
                            and s.bind in ("STB_GLOBAL", "STB_WEAK")), key=lambda s: s.value)
            out.extend((f.name, sec.name) for f in funcs)
        return out

    def data_sections(self) -> list[Section]:
        """The sections libbpf (1.1+) turns into internal array maps, in its order."""
        out = []
        for s in self.sections:
            if s.executable or s.size == 0:
                continue
            if s.type == "SHT_PROGBITS" and (s.name in (".data", ".rodata")
                                             or s.name.startswith((".data.", ".rodata."))):
                out.append(s)
            elif s.type == "SHT_NOBITS" and s.name == ".bss":
                out.append(s)
        return out

    def var_offset(self, section: Section, name: str) -> int | None:
        """Offset of a global, non-hidden variable in a section. Clang leaves the
        DATASEC offsets in BTF unset, so libbpf (and we) take them from the symbols."""
        for s in self.symbols:
            if (s.section == section.index and s.name == name and s.type == "STT_OBJECT"
                    and s.bind in ("STB_GLOBAL", "STB_WEAK") and not s.hidden):
                return s.value
        return None
