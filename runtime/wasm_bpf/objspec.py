"""What a BPF object declares, read from the object libbpf opened but has not loaded
(bpf_object__open_mem makes no bpf() calls): its programs and maps. The sandbox
checks these before the load; `wasm-bpf inspect` lists them."""
import errno
from dataclasses import dataclass
from typing import Any, List

from ._native import ffi, lib
from .attach import kind_of
from .elfcheck import ElfCheckError, check as check_elf
from .errors import HostCallError
from .policy import map_type_name, policy_map_name, program_type_name

OBJECT_NAME = b"wasm_bpf"
# Kinds that can take their target from the SEC() name (kprobe/FUNC, uprobe/BIN:FUNC).
TARGET_IN_SECTION = ("kprobe", "kretprobe", "uprobe", "uretprobe", "usdt")


def open_object(elf: Any) -> Any:
    """A struct bpf_object * for the ELF bytes (a cffi buffer that must outlive the
    load); raises HostCallError with libbpf's reason.

    The bytes are checked first (elfcheck): libbpf 1.1 crashes the process on some
    malformed objects (out-of-range BTF type ids and string offsets), at open or at
    load, and the bytes may come from a guest."""
    try:
        check_elf(ffi.buffer(elf, len(elf))[:])
    except ElfCheckError as exc:
        raise HostCallError(errno.EINVAL, f"not a valid BPF ELF object: {exc}") from None
    err = ffi.new("int *")
    obj = lib.wbpf_object_open_mem(elf, len(elf), OBJECT_NAME, err)
    if obj == ffi.NULL:
        raise HostCallError(-err[0] or errno.EINVAL, "not a valid BPF ELF object")
    return obj


@dataclass(frozen=True)
class ProgramSpec:
    name: str
    section: str
    type: str
    kind: str
    autoload: bool

    @property
    def target(self) -> str:
        """Does an attach need a target: "none", "required" or "optional"."""
        if self.kind in ("auto", "iter"):
            return "none"
        if self.kind == "struct_ops" or (self.kind in TARGET_IN_SECTION and "/" in self.section):
            return "optional"
        return "required"


@dataclass(frozen=True)
class MapSpec:
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


def programs_of(obj: Any) -> List[ProgramSpec]:
    specs = []
    prog = lib.bpf_object__next_program(obj, ffi.NULL)
    while prog != ffi.NULL:
        section = ffi.string(lib.bpf_program__section_name(prog)).decode()
        prog_type = program_type_name(lib.bpf_program__type(prog))
        specs.append(ProgramSpec(ffi.string(lib.bpf_program__name(prog)).decode(), section, prog_type,
                                 kind_of(prog_type, section), bool(lib.bpf_program__autoload(prog))))
        prog = lib.bpf_object__next_program(obj, prog)
    return specs


def maps_of(obj: Any) -> List[MapSpec]:
    specs = []
    m = lib.bpf_object__next_map(obj, ffi.NULL)
    while m != ffi.NULL:
        name = policy_map_name(ffi.string(lib.bpf_map__name(m)).decode(), lib.bpf_map__is_internal(m))
        specs.append(MapSpec(name, map_type_name(lib.bpf_map__type(m)), int(lib.bpf_map__key_size(m)),
                             int(lib.bpf_map__value_size(m)), int(lib.bpf_map__max_entries(m))))
        m = lib.bpf_object__next_map(obj, m)
    return specs
