"""The BPF helpers each program of an opened (not loaded) object calls, read from its
instructions before the load, so the policy can refuse a helper before the kernel
sees the program (docs/policy.md, [helpers]).

A call instruction (BPF_JMP | BPF_CALL) with src_reg 0 calls helper `imm`. A program
that calls a subprogram (src_reg 1, BPF_PSEUDO_CALL) is charged with every helper of
the object's `.text` and of its own section too: libbpf appends subprograms only at
load, so before it the program's own instructions (bpf_program__insns) do not hold
them. Helper names come from the kernel's `enum bpf_func_id` (vmlinux BTF), read only
when needed: the helpers a policy allows only by name are known without it."""
from __future__ import annotations

import functools
from typing import Any, Dict, FrozenSet, Iterable, List, Set, Tuple

from ._native import ffi, lib, programs_in
from .elfcheck import section_data

CALL, LD_IMM64 = lib.BPF_JMP | lib.BPF_CALL, lib.BPF_LD | lib.BPF_IMM | lib.BPF_DW
INSN_SIZE = 8  # sizeof(struct bpf_insn)
# Helpers that act outside the traced event (signal a process, change a return value,
# write user memory, run bpf() or close()), by id (the UAPI's enum bpf_func_id): a
# policy allows them only by name (policy.OUTSIDE_TRACING), and the default policy's
# check needs no other name, so a run under it does not parse the kernel's BTF.
OUTSIDE_TRACING_IDS = {
    lib.BPF_FUNC_send_signal: "bpf_send_signal", lib.BPF_FUNC_send_signal_thread: "bpf_send_signal_thread",
    lib.BPF_FUNC_override_return: "bpf_override_return", lib.BPF_FUNC_probe_write_user: "bpf_probe_write_user",
    lib.BPF_FUNC_sys_bpf: "bpf_sys_bpf", lib.BPF_FUNC_sys_close: "bpf_sys_close",
}


def calls_in(code: bytes) -> Tuple[Set[int], bool]:
    """(helper ids called, whether a subprogram is called) in BPF instructions."""
    helpers: Set[int] = set()
    subprogram = False
    i = 0
    while i + INSN_SIZE <= len(code):
        opcode, src = code[i], code[i + 1] >> 4
        if opcode == CALL:
            if src == 0:
                helpers.add(int.from_bytes(code[i + 4:i + 8], "little", signed=True))
            elif src == lib.BPF_PSEUDO_CALL:
                subprogram = True
        i += 2 * INSN_SIZE if opcode == LD_IMM64 else INSN_SIZE  # a 64-bit load takes two slots
    return helpers, subprogram


@functools.lru_cache(maxsize=1)
def helper_names() -> Dict[int, str]:
    """Helper id -> name ("bpf_send_signal"), from the running kernel's BTF; empty
    without vmlinux BTF (ids are then shown as "helper#N")."""
    btf = lib.btf__load_vmlinux_btf()
    if btf == ffi.NULL:
        return {}
    try:
        type_id = lib.btf__find_by_name_kind(btf, b"bpf_func_id", lib.BTF_KIND_ENUM)
        if type_id <= 0:
            return {}
        t = lib.btf__type_by_id(btf, type_id)
        values = lib.btf_enum(t)
        names = {}
        for i in range(lib.btf_vlen(t)):
            name = ffi.string(lib.btf__name_by_offset(btf, values[i].name_off)).decode()
            if name.startswith("BPF_FUNC_") and name != "BPF_FUNC_unspec" and not name.startswith("BPF_FUNC_MAX"):
                names[int(values[i].val)] = "bpf_" + name[len("BPF_FUNC_"):]
        return names
    finally:
        lib.btf__free(btf)


def helper_name(helper_id: int) -> str:
    return helper_names().get(helper_id, f"helper#{helper_id}")


def helpers_of(obj: Any, elf: bytes) -> Dict[str, List[str]]:
    """Program name -> the names of the helpers it may call, for each program of the
    opened object `obj` read from the ELF bytes `elf`."""
    return {name: sorted(helper_name(i) for i in ids) for name, ids in helper_ids_of(obj, elf).items()}


def helper_ids_of(obj: Any, elf: bytes) -> Dict[str, Set[int]]:
    """helpers_of() as helper ids: no name read."""
    own: Dict[str, Tuple[str, Set[int], bool]] = {}
    for name, prog in programs_in(obj):
        code = ffi.buffer(lib.bpf_program__insns(prog), lib.bpf_program__insn_cnt(prog) * INSN_SIZE)[:]
        section = ffi.string(lib.bpf_program__section_name(prog)).decode()
        own[name] = (section, *calls_in(code))
    callers = {section for section, _, subprogram in own.values() if subprogram}
    shared: Dict[str, FrozenSet[int]] = {}
    if callers:
        for name, code in section_data(elf, callers | {".text"}).items():
            shared[name] = frozenset(calls_in(code)[0])
    result = {}
    for name, (section, ids, subprogram) in own.items():
        if subprogram:
            ids = ids | shared.get(".text", frozenset()) | shared.get(section, frozenset())
        result[name] = ids
    return result
