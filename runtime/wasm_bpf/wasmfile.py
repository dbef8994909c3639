"""Just enough of the WebAssembly binary format for what wasmtime-py does not show:
the sections, the imports, and the memories and tables a module declares (its
Module type lists only the exported and imported ones). Used by `wasm-bpf inspect`
and by the store limits (limits.py). The module has been validated by wasmtime
before, or is only being listed, so truncation and unknown encodings raise
WasmBpfError rather than being checked in detail."""
from __future__ import annotations

from typing import Iterator, List, NamedTuple, Optional, Tuple

from .errors import WasmBpfError

IMPORT_SECTION, TABLE_SECTION, MEMORY_SECTION, DATA_SECTION = 2, 4, 5, 11
FUNC, TABLE, MEMORY, GLOBAL = 0, 1, 2, 3  # import kinds
WASM_PAGE = 1 << 16


class Reader:
    def __init__(self, data: bytes, pos: int = 0) -> None:
        self.data, self.pos = data, pos

    def byte(self) -> int:
        if self.pos >= len(self.data):
            raise WasmBpfError("the Wasm module ends in the middle of a section")
        self.pos += 1
        return self.data[self.pos - 1]

    def uleb(self) -> int:
        value = shift = 0
        while True:
            b = self.byte()
            value |= (b & 0x7F) << shift
            shift += 7
            if not b & 0x80:
                return value

    def name(self) -> str:
        n = self.uleb()
        self.pos += n
        return self.data[self.pos - n:self.pos].decode(errors="replace")

    def skip_const_expr(self) -> None:
        """An offset expression: i32.const/i64.const/global.get ... end (0x0b)."""
        while (op := self.byte()) != 0x0B:
            if op in (0x41, 0x42, 0x23):
                self.uleb()

    def value_type(self) -> None:
        if self.byte() in (0x63, 0x64):  # (ref null? HEAPTYPE): a signed LEB follows
            self.uleb()

    def limits(self, memory: bool) -> int:
        """The minimum of a limits field: bytes for a memory, elements for a table."""
        flags = self.byte()
        if flags & ~0x0F:
            raise WasmBpfError(f"unknown limits flags {flags:#x} in the module")
        minimum = self.uleb()
        if flags & 1:
            self.uleb()
        page = 1 << self.uleb() if flags & 8 else WASM_PAGE  # custom page sizes
        return minimum * page if memory else minimum


def sections(wasm: bytes) -> List[Tuple[int, int, int]]:
    """(id, start, end) of each section."""
    r, found = Reader(wasm, 8), []
    while r.pos < len(wasm):
        sid, size = r.byte(), r.uleb()
        found.append((sid, r.pos, r.pos + size))
        r.pos += size
    return found


def readers(wasm: bytes, section_id: int) -> Iterator[Reader]:
    """A reader at the start of each section `section_id`, ending with it."""
    for sid, start, end in sections(wasm):
        if sid == section_id:
            yield Reader(wasm[:end], start)


class Import(NamedTuple):
    module: str
    name: str
    kind: int
    minimum: int = 0  # a memory's bytes, a table's elements


def imports(wasm: bytes) -> List[Import]:
    found = []
    for r in readers(wasm, IMPORT_SECTION):
        for _ in range(r.uleb()):
            module, name, kind = r.name(), r.name(), r.byte()
            minimum = 0
            if kind == FUNC:
                r.uleb()  # type index
            elif kind == TABLE:
                r.value_type()
                minimum = r.limits(memory=False)
            elif kind == MEMORY:
                minimum = r.limits(memory=True)
            elif kind == GLOBAL:
                r.value_type()
                r.byte()  # mutability
            else:
                raise WasmBpfError(f"unknown import kind {kind} in the module")
            found.append(Import(module, name, kind, minimum))
    return found


DeclaredItems = Tuple[List[int], List[int]]  # minimum bytes of each memory, minimum elements of each table


def declared_items(wasm: bytes) -> Optional[DeclaredItems]:
    """The memories and tables the module imports or defines, with their minimum
    sizes. None for an encoding this reader does not know (a table with an
    initialiser expression): wasmtime's store limits still apply to it."""
    try:
        imported = imports(wasm)
        memories = [i.minimum for i in imported if i.kind == MEMORY]
        tables = [i.minimum for i in imported if i.kind == TABLE]
        for r in readers(wasm, MEMORY_SECTION):
            memories += [r.limits(memory=True) for _ in range(r.uleb())]
        for r in readers(wasm, TABLE_SECTION):
            for _ in range(r.uleb()):
                if r.data[r.pos:r.pos + 1] == b"\x40":
                    return None
                r.value_type()
                tables.append(r.limits(memory=False))
    except WasmBpfError:
        return None
    return memories, tables
