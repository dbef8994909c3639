"""`wasm-bpf gen header`: the BPF object's own types (events, map keys and values)
as C definitions whose wasm32 layout is the BPF layout.

Default selection: every named struct, union and enum (and every typedef naming an
anonymous struct/union) that the object's BTF defines and the kernel's BTF does not,
i.e. the program's own types rather than the vmlinux.h types it uses. Those are
emitted by name; kernel types they embed by value are written inline (anonymous),
so the header can be included next to libc headers without clashes."""
from __future__ import annotations

from pathlib import Path

from . import btf as B
from .btf import Btf, BtfError
from .layout import Wasm32Layout
from .skeleton import c_ident, default_name

KERNEL_BTF = "/sys/kernel/btf/vmlinux"


def _signature(btf: Btf, tid: int) -> tuple:
    """What must agree for two BTF types to be taken as the same type."""
    kind = btf.kind(tid)
    if kind in B.COMPOSITES:
        return kind, btf.name(tid), btf.size(tid), tuple(m.name for m in btf.members(tid))
    return kind, btf.name(tid)


def _is_kernel_type(btf: Btf, tid: int, kernel: Btf) -> bool:
    kind = btf.kind(tid)
    for k in ((B.ENUM, B.ENUM64) if kind in B.ENUMS else (kind,)):
        other = kernel.find(btf.name(tid), k)
        if other > 0 and (kind not in B.COMPOSITES
                          or _signature(btf, tid) == _signature(kernel, other)):
            return True
    return False


def _nameable(btf: Btf, tid: int) -> bool:
    """Types a header can define by name."""
    kind, name = btf.kind(tid), btf.name(tid)
    if not name or "___" in name:  # anonymous, or a CO-RE flavor (task_struct___old)
        return False
    if kind in B.COMPOSITES or kind in B.ENUMS:
        return True
    if kind == B.TYPEDEF:
        target = btf.strip_modifiers(btf.ref(tid))
        return btf.kind(target) in B.COMPOSITES and not btf.name(target)
    return False


def own_types(btf: Btf, kernel: Btf | None) -> list[int]:
    """The object's own nameable types, first definition of each name, in BTF order."""
    seen: set[tuple[int, str]] = set()
    out = []
    for tid in btf.ids():
        if not _nameable(btf, tid):
            continue
        key = (btf.kind(tid) if btf.kind(tid) not in B.ENUMS else B.ENUM, btf.name(tid))
        if key in seen:
            continue
        seen.add(key)
        if kernel is None or not _is_kernel_type(btf, tid, kernel):
            out.append(tid)
    return out


def find_type(btf: Btf, spec: str) -> int:
    """Type id for 'struct x', 'union x', 'enum x' or a bare name (struct, union,
    enum, then typedef)."""
    words = spec.split()
    kinds = {"struct": [B.STRUCT], "union": [B.UNION], "enum": [B.ENUM, B.ENUM64]}
    if len(words) == 2 and words[0] in kinds:
        candidates, name = kinds[words[0]], words[1]
    elif len(words) == 1:
        candidates, name = [B.STRUCT, B.UNION, B.ENUM, B.ENUM64, B.TYPEDEF], words[0]
    else:
        raise BtfError(f"'{spec}' is not a type name")
    for kind in candidates:
        tid = btf.find(name, kind)
        if tid > 0:
            return tid
    raise BtfError(f"{btf.what}: no type '{spec}' in the object's BTF")


def _definitions(path: str | Path, types: list[str] | None, kernel_btf: str | None) -> list[tuple[int, str, list[str]]]:
    """(type id, C name, definition lines) of the named types (default: the object's own
    types) and the named types they embed, in dependency order."""
    with Btf.from_file(str(path)) as btf:
        kernel = Btf.from_file(kernel_btf) if kernel_btf else None
        try:
            own = own_types(btf, kernel)
        finally:
            if kernel:
                kernel.close()
        roots = [find_type(btf, t) for t in types] if types else own
        layout = Wasm32Layout(btf, named=set(own) | set(roots))
        done: set[int] = set()
        blocks: list[tuple[int, str, list[str]]] = []

        def emit(tid: int, chain: tuple[int, ...]) -> None:
            if tid in done:
                return
            if tid in chain:  # impossible for by-value embedding; guards bad BTF
                raise BtfError(f"{btf.what}: {btf.describe(tid)} contains itself")
            lines, deps = layout.definition(tid)
            for dep in deps:
                emit(dep, chain + (tid,))
            done.add(tid)
            blocks.append((tid, layout.type_name(tid), lines))

        for tid in roots:
            emit(tid, ())
    return blocks


def layout_checks(path: str | Path, types: list[str] | None = None,
                  kernel_btf: str | None = KERNEL_BTF) -> dict[str, list[str]]:
    """C name ('struct event', 'pair_t') -> _Static_asserts that a definition of it
    compiled for wasm32 has the BPF object's layout: size, and offset and size of
    every named member (they need no header: __builtin_offsetof)."""
    return {name: [line.replace("offsetof(", "__builtin_offsetof(") for line in lines
                   if line.startswith("_Static_assert")]
            for _, name, lines in _definitions(path, types, kernel_btf)}


def generate(path: str | Path, types: list[str] | None = None,
             kernel_btf: str | None = KERNEL_BTF, name: str | None = None, preamble: list[str] = ()) -> str:
    """Header text for the object at path: the named types (default: its own types).
    kernel_btf=None disables the vmlinux filter (every named type counts as own).
    name (default: from the file name) makes the include guard. preamble: C lines
    that go first (X.h's macros and anonymous enums)."""
    blocks = ["\n".join(lines) for _, _, lines in _definitions(path, types, kernel_btf)]
    guard = f"__{c_ident(name or default_name(path)).upper()}_WASM_H__"
    return "\n".join([
        f"/* Generated by `wasm-bpf gen header` from {Path(path).name}: do not edit. */",
        "/* wasm32 definitions with the BPF layout (packed, explicit padding, checked",
        " * by static asserts). Pointers are uint64_t, long is int64_t, enums in structs",
        " * are integers of the enum's size. */",
        f"#ifndef {guard}",
        f"#define {guard}",
        "",
        "#include <stdbool.h>",
        "#include <stddef.h>",
        "#include <stdint.h>",
        "",
        *([*preamble, ""] if preamble else []),
        *[b + "\n" for b in blocks],
        f"#endif /* {guard} */",
        "",
    ])
