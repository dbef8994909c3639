"""What a BPF object declares, read from the object libbpf opened but has not loaded
(bpf_object__open_mem makes no bpf() calls): its programs and maps. The sandbox
checks these before the load; `wasm-bpf inspect` lists them."""
from __future__ import annotations

import errno
import os
from typing import Any, List, NamedTuple

from ._native import ffi, lib, maps_in, programs_in
from .attach import kind_of
from .elfcheck import ElfCheckError, check as check_elf
from .errors import HostCallError
from .policy import map_type_name, policy_map_name, program_type_name

DEFAULT_OBJECT_NAME = "wasm_bpf"
# Kinds that can take their target from the SEC() name (kprobe/FUNC, uprobe/BIN:FUNC).
TARGET_IN_SECTION = ("kprobe", "kretprobe", "uprobe", "uretprobe", "usdt")


def object_name(path: str) -> str:
    """libbpf's name for the object of a module or file: "bootstrap" for bootstrap.wasm,
    bootstrap.bpf.o, bootstrap.bpf.c or bootstrap.json."""
    name = os.path.basename(path)
    for suffix in (".wasm", ".wat", ".json", ".o", ".c", ".bpf"):
        name = name[: -len(suffix)] if name.endswith(suffix) and len(name) > len(suffix) else name
    return name or DEFAULT_OBJECT_NAME


def open_object(elf: Any, name: str = "") -> Any:
    """A struct bpf_object * for the ELF bytes (a cffi buffer that must outlive the
    load), named `name` in libbpf's log; raises HostCallError with libbpf's reason.

    The bytes are checked first (elfcheck): libbpf 1.1 crashes the process on some
    malformed objects (out-of-range BTF type ids and string offsets), at open or at
    load, and the bytes may come from a guest."""
    try:
        check_elf(ffi.buffer(elf, len(elf))[:])
    except ElfCheckError as exc:
        raise HostCallError(errno.EINVAL, f"not a valid BPF ELF object: {exc}") from None
    err = ffi.new("int *")
    obj = lib.wbpf_object_open_mem(elf, len(elf), (name or DEFAULT_OBJECT_NAME).encode(), err)
    if obj == ffi.NULL:
        raise HostCallError(-err[0] or errno.EINVAL, "not a valid BPF ELF object")
    return obj


class DeclaredProgram(NamedTuple):
    name: str
    section: str
    type: str
    kind: str
    autoload: bool

    @property
    def target(self) -> str:
        """Does an attach need a target: "none", "required" or "optional"."""
        return target_need(self.kind, self.section)


def target_need(kind: str, section: str) -> str:
    """Whether a program of attach kind `kind` in SEC(section) needs an attach target:
    "none", "required" or "optional" (the section names it)."""
    if kind in ("auto", "iter"):
        return "none"
    if kind == "struct_ops" or (kind in TARGET_IN_SECTION and "/" in section):
        return "optional"
    return "required"


class DeclaredMap(NamedTuple):
    name: str  # internal maps by section: ".bss"
    type: str
    key_size: int
    value_size: int
    max_entries: int

    @property
    def memory(self) -> int:
        """Estimated kernel memory in bytes: values (per CPU for per-CPU maps), plus
        keys and the kernel's per-element header for hash maps."""
        value = (self.value_size + 7) // 8 * 8
        if self.type.startswith("percpu") or self.type.startswith("lru_percpu"):
            value *= max(1, int(lib.libbpf_num_possible_cpus()))
        if self.type == "ringbuf" or self.type == "user_ringbuf":
            return self.max_entries
        if self.type.endswith("hash") or self.type == "lru_hash":
            return (48 + (self.key_size + 7) // 8 * 8 + value) * self.max_entries
        return value * self.max_entries


def programs_of(obj: Any) -> List[DeclaredProgram]:
    declared = []
    for name, prog in programs_in(obj):
        section = ffi.string(lib.bpf_program__section_name(prog)).decode()
        prog_type = program_type_name(lib.bpf_program__type(prog))
        declared.append(DeclaredProgram(name, section, prog_type, kind_of(prog_type, section),
                                        bool(lib.bpf_program__autoload(prog))))
    return declared


def maps_of(obj: Any) -> List[DeclaredMap]:
    """The object's maps; a map-in-map is followed by its inner map template
    ("OUTER.inner"), which the kernel creates at load like any map and whose type is
    the type of every map the outer one holds."""
    declared = []
    for _, m in maps_in(obj):
        declared.append(_declared_map(m))
        inner = lib.bpf_map__inner_map(m)
        if inner != ffi.NULL:
            declared.append(_declared_map(inner))
    return declared


def _declared_map(m: Any) -> DeclaredMap:
    name = policy_map_name(ffi.string(lib.bpf_map__name(m)).decode(), lib.bpf_map__is_internal(m))
    return DeclaredMap(name, map_type_name(lib.bpf_map__type(m)), int(lib.bpf_map__key_size(m)),
                       int(lib.bpf_map__value_size(m)), int(lib.bpf_map__max_entries(m)))
