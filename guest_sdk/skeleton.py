"""`wasm-bpf gen skeleton`: a libbpf-style skeleton header for a wasm32 guest.

The skeleton embeds the BPF object and describes its maps, programs and data
sections to the runtime in libbpf-wasm.h. The data-section structs
(``skel->rodata``, ``->data``, ``->bss``, ``->kconfig``) are laid out by the wasm32
layout emitter, with every type written inline, so the skeleton never defines a
type name that could clash with the guest's own headers."""
from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from wasm_bpf.errors import WasmBpfError

from . import btf as B
from .btf import Btf, Member
from .elfobj import ObjectFile, Section
from .layout import Wasm32Layout

BPF_MAP_TYPE_ARRAY = 2
BPF_MAP_TYPE_STRUCT_OPS = 26


class SkeletonError(WasmBpfError):
    """The object cannot be turned into a skeleton."""


def c_ident(text: str) -> str:
    """A C identifier made from text, like bpftool: other characters become '_'."""
    ident = re.sub(r"[^A-Za-z0-9_]", "_", text)
    return "_" + ident if ident[:1].isdigit() else ident


def default_name(path: str | Path) -> str:
    """Skeleton base name: the file name without .bpf.o (or .o)."""
    base = Path(path).name
    for suffix in (".bpf.o", ".o"):
        if base.endswith(suffix) and len(base) > len(suffix):
            base = base[: -len(suffix)]
            break
    return c_ident(base)


@dataclass
class MapDesc:
    field: str  # member of skel->maps (and of skel for data sections)
    host_name: str  # what wasm_bpf_map_fd_by_name is asked for
    kind: str = "PLAIN"
    elf_offset: int = 0
    size: int = 0
    type: int = 0
    key_size: int = 0
    value_size: int = 0
    max_entries: int = 0
    members: list[Member] | None = None  # data-section variables, when typed


@dataclass
class ObjectDesc:
    maps: list[MapDesc] = field(default_factory=list)
    progs: list[str] = field(default_factory=list)


def _uint_member(btf: Btf, tid: int) -> int:
    """Value of a __uint(name, N) map-definition member: int (*name)[N]."""
    ptr = btf.strip_modifiers(tid)
    if btf.kind(ptr) != B.PTR:
        return 0
    arr = btf.strip_modifiers(btf.ref(ptr))
    return btf.array(arr)[1] if btf.kind(arr) == B.ARRAY else 0


def _type_member_size(btf: Btf, tid: int) -> int:
    """Size of the type of a __type(name, T) member: T *name."""
    ptr = btf.strip_modifiers(tid)
    return btf.resolve_size(btf.ref(ptr)) if btf.kind(ptr) == B.PTR else 0


def _btf_map(btf: Btf, var: int) -> MapDesc:
    name = btf.name(var)
    desc = MapDesc(c_ident(name), name)
    definition = btf.resolve(btf.ref(var))
    if btf.kind(definition) != B.STRUCT:
        return desc
    for m in btf.members(definition):
        if m.name == "type":
            desc.type = _uint_member(btf, m.type_id)
        elif m.name == "max_entries":
            desc.max_entries = _uint_member(btf, m.type_id)
        elif m.name == "key_size":
            desc.key_size = _uint_member(btf, m.type_id)
        elif m.name == "value_size":
            desc.value_size = _uint_member(btf, m.type_id)
        elif m.name == "key":
            desc.key_size = _type_member_size(btf, m.type_id)
        elif m.name == "value":
            desc.value_size = _type_member_size(btf, m.type_id)
    return desc


def _section_vars(obj: ObjectFile, btf: Btf, sec: Section, datasec: int) -> list[Member]:
    """The section's global variables at their ELF symbol offsets. Static and hidden
    variables are not part of the skeleton (as with bpftool): they stay padding."""
    out = []
    for v in btf.datasec_vars(datasec):
        if btf.kind(v.type_id) != B.VAR or btf.var_linkage(v.type_id) != B.VAR_GLOBAL:
            continue
        off = obj.var_offset(sec, btf.name(v.type_id))
        if off is not None:
            out.append(Member(btf.name(v.type_id), btf.ref(v.type_id), off * 8, 0))
    return sorted(out, key=lambda m: m.bit_offset)


def kconfig_layout(btf: Btf, datasec: int) -> tuple[list[Member], int]:
    """Where libbpf puts each .kconfig extern: sorted by alignment (largest first),
    then size, then name, each at the next multiple of its alignment. Returns the
    members and the map's value size."""
    externs = []
    for v in btf.datasec_vars(datasec):
        if btf.kind(v.type_id) != B.VAR:
            continue
        tid = btf.ref(v.type_id)
        externs.append((-btf.align_of(tid), btf.resolve_size(tid), btf.name(v.type_id), tid))
    off, members = 0, []
    for neg_align, size, name, tid in sorted(externs):
        off = (off + -neg_align - 1) // -neg_align * -neg_align
        members.append(Member(name, tid, off * 8, 0))
        off += size
    return members, off


def describe(obj: ObjectFile, btf: Btf) -> ObjectDesc:
    desc = ObjectDesc(progs=[name for name, _ in obj.programs()])
    secs = btf.datasecs()
    for maps_sec in (".maps", ".struct_ops", ".struct_ops.link"):
        if maps_sec not in secs:
            continue
        sec = obj.section(maps_sec)
        found = []
        for v in btf.datasec_vars(secs[maps_sec]):
            off = obj.var_offset(sec, btf.name(v.type_id)) if sec else None
            m = _btf_map(btf, v.type_id) if maps_sec == ".maps" else MapDesc(
                c_ident(btf.name(v.type_id)), btf.name(v.type_id), type=BPF_MAP_TYPE_STRUCT_OPS,
                key_size=4, max_entries=1)
            found.append((off or 0, m))
        desc.maps.extend(m for _, m in sorted(found, key=lambda x: x[0]))
    for sec in obj.data_sections():
        kind = ("RODATA" if sec.name.startswith(".rodata") else
                "DATA" if sec.name.startswith(".data") else "BSS")
        m = MapDesc(c_ident(sec.name.lstrip(".")), sec.name, kind,
                    elf_offset=0 if kind == "BSS" else sec.offset, size=sec.size,
                    type=BPF_MAP_TYPE_ARRAY, key_size=4, value_size=sec.size, max_entries=1)
        if sec.name in secs:
            m.members = _section_vars(obj, btf, sec, secs[sec.name])
        desc.maps.append(m)
    if ".kconfig" in secs:
        members, size = kconfig_layout(btf, secs[".kconfig"])
        if members:
            desc.maps.append(MapDesc("kconfig", ".kconfig", "KCONFIG", size=size,
                                     type=BPF_MAP_TYPE_ARRAY, key_size=4, value_size=size,
                                     max_entries=1, members=members))
    seen: set[str] = set()
    for m in desc.maps:
        if m.field in seen:
            raise SkeletonError(f"two maps are both called '{m.field}' in the skeleton")
        seen.add(m.field)
    return desc


def _elf_bytes(data: bytes) -> list[str]:
    lines = []
    for i in range(0, len(data), 16):
        lines.append("    " + " ".join(f"0x{b:02x}," for b in data[i:i + 16]))
    return lines


def generate(path: str | Path, name: str | None = None) -> str:
    """The skeleton header text for the BPF object at path."""
    obj = ObjectFile(path)
    base = c_ident(name) if name else default_name(path)
    sk = f"{base}_bpf"
    with Btf.from_file(str(path)) as btf:
        desc = describe(obj, btf)
        layout = Wasm32Layout(btf, array_padding=True)
        sections = []
        for m in desc.maps:
            if m.members is None:
                continue
            text, _ = layout.struct_text("struct", f"{sk}__{m.field}", m.size, m.members)
            sections.append("\n".join(text))
    guard = f"__{sk.upper()}_SKEL_H__"
    typed = [m for m in desc.maps if m.members is not None]
    out = [
        f"/* Generated by `wasm-bpf gen skeleton` from {Path(path).name}: do not edit. */",
        "/* Data-section layouts are wasm32 views of the BPF layout, checked by static asserts. */",
        f"#ifndef {guard}",
        f"#define {guard}",
        "",
        "#include <stdbool.h>",
        "#include <stddef.h>",
        "#include <stdint.h>",
        "#include <stdlib.h>",
        "#include <errno.h>",
        '#include "libbpf-wasm.h"',
        "",
        *[s + "\n" for s in sections],
        f"struct {sk} {{",
        "    struct bpf_object_skeleton *skeleton;",
        "    struct bpf_object *obj;",
        "    struct {",
        *[f"        struct bpf_map *{m.field};" for m in desc.maps],
        "    } maps;",
        "    struct {",
        *[f"        struct bpf_program *{c_ident(p)};" for p in desc.progs],
        "    } progs;",
        *[f"    struct {sk}__{m.field} *{m.field};" for m in typed],
        "};",
        "",
        f"static inline const void *{sk}__elf_bytes(size_t *sz);",
        "",
        f"static inline void {sk}__destroy(struct {sk} *obj)",
        "{",
        "    if (!obj)",
        "        return;",
        "    bpf_object__destroy_skeleton(obj->skeleton);",
        "    free(obj);",
        "}",
        "",
        f"static inline int {sk}__create_skeleton(struct {sk} *obj)",
        "{",
        "    struct bpf_object_skeleton *s;",
        "",
        "    s = (struct bpf_object_skeleton *)calloc(1, sizeof(*s));",
        "    if (!s)",
        "        return -ENOMEM;",
        "    obj->skeleton = s;",
        "    s->sz = sizeof(*s);",
        f'    s->name = "{base}";',
        "    s->obj = &obj->obj;",
        f"    s->map_cnt = {len(desc.maps)};",
        "    s->map_skel_sz = sizeof(*s->maps);",
        "    s->maps = (struct bpf_map_skeleton *)calloc(s->map_cnt + 1, s->map_skel_sz);",
        f"    s->prog_cnt = {len(desc.progs)};",
        "    s->prog_skel_sz = sizeof(*s->progs);",
        "    s->progs = (struct bpf_prog_skeleton *)calloc(s->prog_cnt + 1, s->prog_skel_sz);",
        "    if (!s->maps || !s->progs)",
        "        return -ENOMEM;",
    ]
    for i, m in enumerate(desc.maps):
        out += [
            f'    s->maps[{i}].name = "{m.host_name}";',
            f"    s->maps[{i}].map = &obj->maps.{m.field};",
            f"    s->maps[{i}].kind = BPF_SKEL_MAP_{m.kind};",
            f"    s->maps[{i}].type = {m.type};",
            f"    s->maps[{i}].key_size = {m.key_size};",
            f"    s->maps[{i}].value_size = {m.value_size};",
            f"    s->maps[{i}].max_entries = {m.max_entries};",
        ]
        if m.kind != "PLAIN":
            out += [f"    s->maps[{i}].elf_offset = {m.elf_offset};",
                    f"    s->maps[{i}].size = {m.size};"]
        if m.members is not None:
            out.append(f"    s->maps[{i}].mmaped = (void **)&obj->{m.field};")
    for i, p in enumerate(desc.progs):
        out += [f'    s->progs[{i}].name = "{p}";',
                f"    s->progs[{i}].prog = &obj->progs.{c_ident(p)};"]
    out += [
        f"    s->data = {sk}__elf_bytes(&s->data_sz);",
        "    return 0;",
        "}",
        "",
        f"static inline struct {sk} *{sk}__open_opts(const struct bpf_object_open_opts *opts)",
        "{",
        f"    struct {sk} *obj = (struct {sk} *)calloc(1, sizeof(*obj));",
        "    int err;",
        "",
        "    if (!obj) {",
        "        errno = ENOMEM;",
        "        return NULL;",
        "    }",
        f"    err = {sk}__create_skeleton(obj);",
        "    if (!err)",
        "        err = bpf_object__open_skeleton(obj->skeleton, opts);",
        "    if (err) {",
        f"        {sk}__destroy(obj);",
        "        errno = -err;",
        "        return NULL;",
        "    }",
        "    return obj;",
        "}",
        "",
        f"static inline struct {sk} *{sk}__open(void)",
        "{",
        f"    return {sk}__open_opts(NULL);",
        "}",
        "",
        f"static inline int {sk}__load(struct {sk} *obj)",
        "{",
        "    return bpf_object__load_skeleton(obj->skeleton);",
        "}",
        "",
        f"static inline struct {sk} *{sk}__open_and_load(void)",
        "{",
        f"    struct {sk} *obj = {sk}__open();",
        "    int err;",
        "",
        "    if (!obj)",
        "        return NULL;",
        f"    err = {sk}__load(obj);",
        "    if (err) {",
        f"        {sk}__destroy(obj);",
        "        errno = -err;",
        "        return NULL;",
        "    }",
        "    return obj;",
        "}",
        "",
        f"static inline int {sk}__attach(struct {sk} *obj)",
        "{",
        "    return bpf_object__attach_skeleton(obj->skeleton);",
        "}",
        "",
        f"static inline void {sk}__detach(struct {sk} *obj)",
        "{",
        "    bpf_object__detach_skeleton(obj->skeleton);",
        "}",
        "",
        f"static const unsigned char {sk}__elf_data[{len(obj.data)}] __attribute__((aligned(8))) = {{",
        *_elf_bytes(obj.data),
        "};",
        "",
        f"static inline const void *{sk}__elf_bytes(size_t *sz)",
        "{",
        f"    *sz = sizeof({sk}__elf_data);",
        f"    return {sk}__elf_data;",
        "}",
        "",
        f"#endif /* {guard} */",
        "",
    ]
    return "\n".join(out)

