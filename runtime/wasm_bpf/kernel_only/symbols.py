"""Stack addresses -> `function+0xoffset` (docs/kernel-only.md, "Stacks").

Kernel addresses are looked up in /proc/kallsyms (read and sorted once, then bisected);
user addresses in the process's /proc/PID/maps and the symbol tables (.symtab, else
.dynsym) of the mapped file (pyelftools), read once per file. An address nothing
covers prints as `[unknown]`: a process that has exited by the time its record is
printed has no maps left to read."""
from __future__ import annotations

import bisect
import os
from dataclasses import dataclass
from typing import Dict, List, Optional, Tuple

from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile
from elftools.elf.sections import SymbolTableSection

UNKNOWN = "[unknown]"


class _Table:
    """Sorted (start, name) pairs; an address belongs to the last start at or below it."""

    def __init__(self, pairs: List[Tuple[int, str]]) -> None:
        pairs.sort()
        self.starts = [a for a, _ in pairs]
        self.names = [n for _, n in pairs]

    def find(self, addr: int, limit: int) -> str:
        i = bisect.bisect_right(self.starts, addr) - 1
        if i < 0 or addr - self.starts[i] > limit:
            return UNKNOWN
        return f"{self.names[i]}+{addr - self.starts[i]:#x}"


class KernelSymbols:
    """The kernel's text symbols, from /proc/kallsyms."""

    MAX_FUNCTION = 1 << 20  # no kernel function is longer: further past a symbol is unknown

    def __init__(self, path: str = "/proc/kallsyms") -> None:
        pairs = []
        try:
            with open(path) as f:
                for line in f:
                    parts = line.split()
                    if len(parts) >= 3 and parts[1] in "tTwW":
                        addr = int(parts[0], 16)
                        if addr:  # 0: kptr_restrict hides the addresses
                            pairs.append((addr, parts[2]))
        except OSError:
            pass
        self._table = _Table(pairs)

    def name(self, addr: int) -> str:
        return self._table.find(addr, self.MAX_FUNCTION)


@dataclass
class _Mapping:
    start: int
    end: int
    offset: int
    path: str


class _ElfSymbols:
    """The functions of one ELF file, by virtual address, and its loadable segments
    (file offset -> virtual address)."""

    def __init__(self, path: str) -> None:
        self.segments: List[Tuple[int, int, int]] = []  # (file offset, size, vaddr)
        pairs: List[Tuple[int, str]] = []
        sizes: Dict[int, int] = {}
        try:
            with open(path, "rb") as f:
                elf = ELFFile(f)
                for seg in elf.iter_segments():
                    if seg["p_type"] == "PT_LOAD":
                        self.segments.append((seg["p_offset"], seg["p_filesz"], seg["p_vaddr"]))
                for name in (".symtab", ".dynsym"):
                    tab = elf.get_section_by_name(name)
                    if not isinstance(tab, SymbolTableSection):
                        continue
                    for s in tab.iter_symbols():
                        if s["st_info"]["type"] in ("STT_FUNC", "STT_GNU_IFUNC") and s["st_value"] and s.name:
                            pairs.append((s["st_value"], s.name))
                            sizes[s["st_value"]] = max(sizes.get(s["st_value"], 0), s["st_size"])
                    if pairs:  # .symtab has every function .dynsym has
                        break
        except (OSError, ELFError, ValueError):
            pass
        self._table = _Table(pairs)
        self._sizes = sizes

    def name(self, file_offset: int) -> str:
        vaddr = next((file_offset - off + va for off, size, va in self.segments if off <= file_offset < off + size),
                     None)
        if vaddr is None:
            return UNKNOWN
        i = bisect.bisect_right(self._table.starts, vaddr) - 1
        if i < 0:
            return UNKNOWN
        start = self._table.starts[i]
        size = self._sizes.get(start, 0)
        if size and vaddr >= start + size:  # past the function's end: between functions
            return UNKNOWN
        return f"{self._table.names[i]}+{vaddr - start:#x}"


class UserSymbols:
    """The functions at user addresses of processes, by their /proc/PID/maps."""

    MAX_PROCESSES = 1024

    def __init__(self, proc: str = "/proc") -> None:
        self.proc = proc
        self._maps: Dict[int, List[_Mapping]] = {}
        self._files: Dict[str, _ElfSymbols] = {}

    def _read_maps(self, pid: int) -> List[_Mapping]:
        out = []
        try:
            with open(f"{self.proc}/{pid}/maps") as f:
                for line in f:
                    parts = line.split(None, 5)
                    if len(parts) < 6 or "x" not in parts[1] or not parts[5].startswith("/"):
                        continue
                    start, _, end = parts[0].partition("-")
                    out.append(_Mapping(int(start, 16), int(end, 16), int(parts[2], 16), parts[5].rstrip("\n")))
        except (OSError, ValueError):
            pass
        return out

    def _mapping(self, pid: int, addr: int) -> Optional[_Mapping]:
        maps = self._maps.get(pid)
        for attempt in range(2):  # a library loaded since the maps were read: read them again once
            if maps is None or attempt:
                if len(self._maps) >= self.MAX_PROCESSES:  # a long run sees many short-lived processes
                    self._maps.clear()
                maps = self._maps[pid] = self._read_maps(pid)
            hit = next((m for m in maps if m.start <= addr < m.end), None)
            if hit is not None:
                return hit
        return None

    def name(self, pid: int, addr: int) -> str:
        m = self._mapping(pid, addr) if pid > 0 else None
        if m is None:
            return UNKNOWN
        # the file as the process sees it (its mount namespace), e.g. inside a container
        path = f"{self.proc}/{pid}/root{m.path}"
        if not os.path.exists(path):
            path = m.path
        syms = self._files.get(path)
        if syms is None:
            syms = self._files[path] = _ElfSymbols(path)
        return syms.name(addr - m.start + m.offset)
