"""Type descriptions the decoder works on, built from BTF or from DWARF.

A type is a plain dict (so a package stores it as JSON as it is):

  {"kind": "int", "size": 4, "signed": true, "bool": false, "char": false}
  {"kind": "float", "size": 8}
  {"kind": "enum", "size": 4, "signed": false, "values": [["A", 0], ...]}
  {"kind": "array", "size": 16, "count": 16, "elem": TYPE}
  {"kind": "struct" | "union", "size": 32, "members": [{"name", "type", "bit_offset", "bit_size"}]}
  {"kind": "ptr", "size": 8}
  {"kind": "void", "size": 0}

Every type also has "name": its C spelling as declared (the outermost typedef name,
else "struct foo", "unsigned int", ...), which the output conventions look at."""
from __future__ import annotations

from typing import Any, Dict, Optional

from elftools.dwarf.enums import ENUM_DW_ATE as ATE

from wasm_bpf.errors import WasmBpfError
from wasm_bpf_sdk import btf as B

Type = Dict[str, Any]


class BtfTypeError(WasmBpfError):
    """A type the decoder cannot describe."""


# ---- BTF ----------------------------------------------------------------------------
def from_btf(btf: "B.Btf", tid: int, _depth: int = 0) -> Type:
    """The description of BTF type `tid` (typedefs and modifiers resolved)."""
    if _depth > 64:
        raise BtfTypeError(f"{btf.what}: type {tid} nests too deeply")
    declared = _btf_spelling(btf, tid)
    rid = btf.resolve(tid)
    kind = btf.kind(rid)
    if kind == B.INT:
        info = btf.int_info(rid)
        t = {"kind": "int", "size": btf.size(rid), "signed": info.signed, "bool": info.bool_,
             "char": btf.name(rid) == "char"}
    elif kind == B.FLOAT:
        t = {"kind": "float", "size": btf.size(rid)}
    elif kind in B.ENUMS:
        t = {"kind": "enum", "size": btf.size(rid), "signed": btf.kflag(rid),
             "values": [[n, v] for n, v in btf.enum_values(rid)]}
    elif kind == B.ARRAY:
        elem, count = btf.array(rid)
        e = from_btf(btf, elem, _depth + 1)
        t = {"kind": "array", "size": e["size"] * count, "count": count, "elem": e}
    elif kind in B.COMPOSITES:
        members = []
        for m in btf.members(rid):
            members.append({"name": m.name, "type": from_btf(btf, m.type_id, _depth + 1),
                            "bit_offset": m.bit_offset, "bit_size": m.bitfield_size})
        t = {"kind": "struct" if kind == B.STRUCT else "union", "size": btf.size(rid), "members": members}
    elif kind == B.PTR:
        t = {"kind": "ptr", "size": btf.pointer_size()}
    elif kind == B.VOID:
        t = {"kind": "void", "size": 0}
    else:
        raise BtfTypeError(f"{btf.what}: cannot decode {btf.describe(rid)}")
    t["name"] = declared
    return t


def _btf_spelling(btf: "B.Btf", tid: int) -> str:
    tid = btf.strip_modifiers(tid)
    kind = btf.kind(tid)
    name = btf.name(tid)
    if kind == B.STRUCT:
        return f"struct {name}" if name else "struct"
    if kind == B.UNION:
        return f"union {name}" if name else "union"
    if kind in B.ENUMS:
        return f"enum {name}" if name else "enum"
    if kind == B.ARRAY:
        elem, count = btf.array(tid)
        return f"{_btf_spelling(btf, elem)}[{count}]"
    if kind == B.PTR:
        return _btf_spelling(btf, btf.ref(tid)) + " *"
    return name


def find_btf_type(btf: "B.Btf", name: str) -> Optional[int]:
    """A type id for "struct foo", "union foo", "enum foo", or a plain name (struct,
    union, typedef, in that order)."""
    tag, _, bare = name.strip().partition(" ")
    kinds = {"struct": (B.STRUCT,), "union": (B.UNION,), "enum": (B.ENUM, B.ENUM64)}
    if tag in kinds and bare:
        candidates = kinds[tag]
        name = bare.strip()
    else:
        candidates = (B.STRUCT, B.UNION, B.TYPEDEF, B.ENUM, B.ENUM64, B.INT)
    for kind in candidates:
        tid = btf.find(name, kind)
        if tid > 0:
            return tid
    return None


# ---- DWARF (types that only local variables use never reach BTF) ---------------------
def from_dwarf(die: Any, _depth: int = 0) -> Type:
    """The description of a DWARF type DIE (pyelftools)."""
    if _depth > 64:
        raise BtfTypeError("DWARF type nests too deeply")
    declared = _dwarf_spelling(die)
    die = _dwarf_resolve(die)
    tag = die.tag if die is not None else None
    attrs = die.attributes if die is not None else {}
    size = attrs["DW_AT_byte_size"].value if "DW_AT_byte_size" in attrs else 0
    if die is None:
        t: Type = {"kind": "void", "size": 0}
    elif tag == "DW_TAG_base_type":
        enc = attrs["DW_AT_encoding"].value
        if enc == ATE["DW_ATE_float"]:
            t = {"kind": "float", "size": size}
        else:
            t = {"kind": "int", "size": size, "signed": enc in (ATE["DW_ATE_signed"], ATE["DW_ATE_signed_char"]),
                 "bool": enc == ATE["DW_ATE_boolean"],
                 "char": _name(die) == "char"}
    elif tag == "DW_TAG_enumeration_type":
        values = [[_name(c), c.attributes["DW_AT_const_value"].value]
                  for c in die.iter_children() if c.tag == "DW_TAG_enumerator"]
        signed = any(v < 0 for _, v in values)
        t = {"kind": "enum", "size": size, "signed": signed, "values": values}
    elif tag == "DW_TAG_array_type":
        elem = from_dwarf(die.get_DIE_from_attribute("DW_AT_type"), _depth + 1)
        counts = []
        for sub in die.iter_children():
            if sub.tag == "DW_TAG_subrange_type":
                a = sub.attributes
                if "DW_AT_count" in a:
                    counts.append(a["DW_AT_count"].value)
                elif "DW_AT_upper_bound" in a:
                    counts.append(a["DW_AT_upper_bound"].value + 1)
                else:
                    counts.append(0)
        for count in reversed(counts or [0]):  # int a[2][3]: an array of 2 arrays of 3
            elem = {"kind": "array", "size": elem["size"] * count, "count": count, "elem": elem,
                    "name": f"{elem['name']}[{count}]"}
        t = dict(elem)
    elif tag in ("DW_TAG_structure_type", "DW_TAG_union_type"):
        members = []
        for m in die.iter_children():
            if m.tag != "DW_TAG_member":
                continue
            a = m.attributes
            bit_size = a["DW_AT_bit_size"].value if "DW_AT_bit_size" in a else 0
            if "DW_AT_data_bit_offset" in a:
                bit_offset = a["DW_AT_data_bit_offset"].value
            else:
                loc = a["DW_AT_data_member_location"].value if "DW_AT_data_member_location" in a else 0
                bit_offset = (loc if isinstance(loc, int) else 0) * 8
            members.append({"name": _name(m), "type": from_dwarf(m.get_DIE_from_attribute("DW_AT_type"), _depth + 1),
                            "bit_offset": bit_offset, "bit_size": bit_size})
        t = {"kind": "struct" if tag == "DW_TAG_structure_type" else "union", "size": size, "members": members}
    elif tag == "DW_TAG_pointer_type":
        t = {"kind": "ptr", "size": size or 8}
    else:
        raise BtfTypeError(f"cannot decode DWARF type {tag}")
    if tag != "DW_TAG_array_type":
        t["name"] = declared
    return t


def _name(die: Any) -> str:
    a = die.attributes.get("DW_AT_name")
    return a.value.decode() if a is not None else ""


_DWARF_MODIFIERS = ("DW_TAG_const_type", "DW_TAG_volatile_type", "DW_TAG_restrict_type",
                    "DW_TAG_atomic_type")


def _dwarf_ref(die: Any) -> Any:
    return die.get_DIE_from_attribute("DW_AT_type") if "DW_AT_type" in die.attributes else None


def _dwarf_resolve(die: Any) -> Any:
    while die is not None and (die.tag in _DWARF_MODIFIERS or die.tag == "DW_TAG_typedef"):
        die = _dwarf_ref(die)
    return die


def _dwarf_spelling(die: Any) -> str:
    while die is not None and die.tag in _DWARF_MODIFIERS:
        die = _dwarf_ref(die)
    if die is None:
        return "void"
    prefix = {"DW_TAG_structure_type": "struct ", "DW_TAG_union_type": "union ",
              "DW_TAG_enumeration_type": "enum "}.get(die.tag, "")
    if die.tag == "DW_TAG_pointer_type":
        return _dwarf_spelling(_dwarf_ref(die)) + " *"
    return (prefix + _name(die)).strip()


def spelling_of_dwarf(die: Any) -> str:
    return _dwarf_spelling(die)


def pointee_of_dwarf(die: Any) -> Any:
    """The DIE a pointer type points to (modifiers and typedefs skipped), else None."""
    die = _dwarf_resolve(die)
    if die is not None and die.tag == "DW_TAG_pointer_type":
        return _dwarf_ref(die)
    return None


def resolve_dwarf(die: Any) -> Any:
    return _dwarf_resolve(die)
