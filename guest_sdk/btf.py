"""Read-only view of BTF type information, through libbpf (``wasm_bpf._shim``).

The generators only need a handful of questions answered about each type id;
this module turns libbpf's C structs into small Python values so the layout code
never touches cffi pointers."""
from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Iterator

from wasm_bpf._shim import ffi, lib
from wasm_bpf.errors import WasmBpfError

# BTF kinds, read once from libbpf so they cannot drift from the C headers.
VOID = 0
INT = lib.BTF_KIND_INT
PTR = lib.BTF_KIND_PTR
ARRAY = lib.BTF_KIND_ARRAY
STRUCT = lib.BTF_KIND_STRUCT
UNION = lib.BTF_KIND_UNION
ENUM = lib.BTF_KIND_ENUM
FWD = lib.BTF_KIND_FWD
TYPEDEF = lib.BTF_KIND_TYPEDEF
VOLATILE = lib.BTF_KIND_VOLATILE
CONST = lib.BTF_KIND_CONST
RESTRICT = lib.BTF_KIND_RESTRICT
FUNC = lib.BTF_KIND_FUNC
FUNC_PROTO = lib.BTF_KIND_FUNC_PROTO
VAR = lib.BTF_KIND_VAR
DATASEC = lib.BTF_KIND_DATASEC
FLOAT = lib.BTF_KIND_FLOAT
DECL_TAG = lib.BTF_KIND_DECL_TAG
TYPE_TAG = lib.BTF_KIND_TYPE_TAG
ENUM64 = lib.BTF_KIND_ENUM64

MODIFIERS = frozenset({VOLATILE, CONST, RESTRICT, TYPE_TAG})
COMPOSITES = frozenset({STRUCT, UNION})
ENUMS = frozenset({ENUM, ENUM64})

# BTF_VAR linkage values (include/uapi/linux/btf.h).
VAR_STATIC = 0
VAR_GLOBAL = 1
VAR_EXTERN = 2


class BtfError(WasmBpfError):
    """The BTF cannot be read, or describes something the generators cannot lay out."""


@dataclass(frozen=True)
class Member:
    name: str
    type_id: int
    bit_offset: int
    bitfield_size: int  # 0 when the member is not a bitfield


@dataclass(frozen=True)
class IntInfo:
    signed: bool
    char: bool
    bool_: bool
    bit_offset: int  # legacy (kflag=0) bitfield encoding
    bits: int


@dataclass(frozen=True)
class SecVar:
    type_id: int  # the VAR's id
    offset: int
    size: int


class Btf:
    """One parsed BTF blob (an object file's .BTF or the kernel's vmlinux BTF)."""

    def __init__(self, handle: "ffi.CData", what: str) -> None:
        if handle == ffi.NULL:
            raise BtfError(f"cannot read BTF from {what}: {os.strerror(ffi.errno)}")
        self._btf = handle
        self.what = what

    @classmethod
    def from_file(cls, path: str) -> "Btf":
        return cls(lib.btf__parse(path.encode(), ffi.NULL), path)

    @classmethod
    def vmlinux(cls) -> "Btf":
        return cls(lib.btf__load_vmlinux_btf(), "the running kernel (vmlinux)")

    def close(self) -> None:
        if self._btf is not None:
            lib.btf__free(self._btf)
            self._btf = None

    def __enter__(self) -> "Btf":
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # ---- basic queries -------------------------------------------------------
    def _t(self, tid: int):
        t = lib.btf__type_by_id(self._btf, tid)
        if t == ffi.NULL:
            raise BtfError(f"{self.what}: no BTF type id {tid}")
        return t

    def ids(self) -> Iterator[int]:
        return iter(range(1, lib.btf__type_cnt(self._btf)))

    def kind(self, tid: int) -> int:
        return VOID if tid == 0 else lib.btf_kind(self._t(tid))

    def name(self, tid: int) -> str:
        if tid == 0:
            return "void"
        return self._str(self._t(tid).name_off)

    def _str(self, off: int) -> str:
        s = lib.btf__name_by_offset(self._btf, off)
        return "" if s == ffi.NULL else ffi.string(s).decode()

    def size(self, tid: int) -> int:
        """The type's own size field (INT, ENUM, STRUCT, UNION, DATASEC, FLOAT)."""
        return self._t(tid).size

    def ref(self, tid: int) -> int:
        """The referenced type of PTR, TYPEDEF, modifiers, VAR, FUNC."""
        return self._t(tid).type

    def kflag(self, tid: int) -> bool:
        return bool(lib.btf_kflag(self._t(tid)))

    def resolve_size(self, tid: int) -> int:
        n = lib.btf__resolve_size(self._btf, tid)
        if n < 0:
            raise BtfError(f"{self.what}: cannot size type {self.describe(tid)}")
        return n

    def align_of(self, tid: int) -> int:
        n = lib.btf__align_of(self._btf, tid)
        if n <= 0:
            raise BtfError(f"{self.what}: cannot align type {self.describe(tid)}")
        return n

    def pointer_size(self) -> int:
        # Objects built for BPF have 8-byte pointers; libbpf guesses when BTF lacks a hint.
        return int(lib.btf__pointer_size(self._btf)) or 8

    def find(self, name: str, kind: int) -> int:
        """Type id of the type with this name and kind, or -1."""
        n = lib.btf__find_by_name_kind(self._btf, name.encode(), kind)
        return n if n > 0 else -1

    def describe(self, tid: int) -> str:
        kind_names = {INT: "int", PTR: "ptr", ARRAY: "array", STRUCT: "struct", UNION: "union",
                      ENUM: "enum", ENUM64: "enum64", FWD: "fwd", TYPEDEF: "typedef",
                      FUNC_PROTO: "func_proto", FLOAT: "float", VAR: "var", DATASEC: "datasec"}
        return f"[{tid}] {kind_names.get(self.kind(tid), 'kind%d' % self.kind(tid))} '{self.name(tid)}'"

    # ---- kind-specific accessors ---------------------------------------------
    def members(self, tid: int) -> list[Member]:
        t = self._t(tid)
        ms = lib.btf_members(t)
        return [Member(self._str(ms[i].name_off), ms[i].type,
                       lib.btf_member_bit_offset(t, i), lib.btf_member_bitfield_size(t, i))
                for i in range(lib.btf_vlen(t))]

    def array(self, tid: int) -> tuple[int, int]:
        """(element type id, number of elements)."""
        a = lib.btf_array(self._t(tid))
        return a.type, a.nelems

    def int_info(self, tid: int) -> IntInfo:
        t = self._t(tid)
        enc = lib.btf_int_encoding(t)
        return IntInfo(bool(enc & lib.BTF_INT_SIGNED), bool(enc & lib.BTF_INT_CHAR),
                       bool(enc & lib.BTF_INT_BOOL), lib.btf_int_offset(t), lib.btf_int_bits(t))

    def enum_values(self, tid: int) -> list[tuple[str, int]]:
        t = self._t(tid)
        n = lib.btf_vlen(t)
        signed = self.kflag(tid)
        if self.kind(tid) == ENUM64:
            es = lib.btf_enum64(t)
            out = []
            for i in range(n):
                v = lib.btf_enum64_value(ffi.addressof(es[i]))
                out.append((self._str(es[i].name_off), v - (1 << 64) if signed and v >> 63 else v))
            return out
        es = lib.btf_enum(t)
        # btf_enum.val is an s32; an unsigned enum stores the same bits.
        return [(self._str(es[i].name_off), es[i].val if signed else es[i].val & 0xFFFFFFFF)
                for i in range(n)]

    def var_linkage(self, tid: int) -> int:
        return lib.btf_var(self._t(tid)).linkage

    def datasec_vars(self, tid: int) -> list[SecVar]:
        t = self._t(tid)
        vs = lib.btf_var_secinfos(t)
        return [SecVar(vs[i].type, vs[i].offset, vs[i].size) for i in range(lib.btf_vlen(t))]

    def datasecs(self) -> dict[str, int]:
        """Section name -> DATASEC type id."""
        return {self.name(i): i for i in self.ids() if self.kind(i) == DATASEC}

    # ---- helpers ---------------------------------------------------------------
    def strip_modifiers(self, tid: int) -> int:
        while self.kind(tid) in MODIFIERS:
            tid = self.ref(tid)
        return tid

    def resolve(self, tid: int) -> int:
        """Skip modifiers and typedefs."""
        while self.kind(tid) in MODIFIERS or self.kind(tid) == TYPEDEF:
            tid = self.ref(tid)
        return tid
