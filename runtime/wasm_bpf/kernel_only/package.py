"""One self-contained JSON file per program.

The layout follows eunomia-bpf's package.json, so each tool reads the other's files:

  {"bpf_object": base64(zlib(ELF)), "bpf_object_size": len(ELF),
   "meta": {"bpf_skel": {"obj_name", "doc"?: {"description"},
                         "progs": [{"name", "attach", "link", "tchook"?, "tcopts"?, "ifindex"?, "flags"?, "xdpopts"?}],
                         "maps": [{"name", "ident", "sample"?}],
                         "data_sections": [{"name": ".rodata", "variables":
                             [{"name", "type", "value"?, "description"?,
                               "cmdarg"?: {"long", "short", "help", "default"}}]}]},
            "export_types": [{"name", "members": [{"name", "type"}], "size"}]},
   "wasm_bpf": {"format": 1, "records": {MAP: TYPE}, "attach": {PROG: TARGET},
                "annotations": {"progs.NAME.tchook": "prog.bpf.c:12", ...}}}

"wasm_bpf" is ours: the record type of each buffer as a full type description
(types.py), so a package runs even when the object's DWARF is gone. Read from an
eunomia file: the object, export_types[0].name as the record type, and the
annotations ecc writes (annotations.py: cmdarg, description, sample, tchook...)."""
from __future__ import annotations

import base64
import binascii
import json
import zlib
from dataclasses import dataclass, field
from typing import Any, Dict

from . import annotations as A
from . import schema
from .spec import ObjectSpec, SpecError

FORMAT = 1


@dataclass
class Package:
    elf: bytes
    name: str
    event_type: str = ""  # eunomia export_types[0].name
    records: Dict[str, Any] = field(default_factory=dict)
    annotations: A.Annotations = field(default_factory=A.Annotations)  # cmdarg, sample, tchook...
    attach: Dict[str, str] = field(default_factory=dict)


def write(spec: ObjectSpec) -> str:
    elf = spec.elf
    records = {m.name: m.record for m in spec.buffers() if m.record is not None}
    export_types = []
    for t in {json.dumps(r, sort_keys=True): r for r in records.values()}.values():
        export_types.append({"name": t.get("name", "").split(" ", 1)[-1], "size": t["size"],
                             "members": [{"name": m["name"], "type": m["type"].get("name", "")}
                                         for m in t.get("members", [])]})
    variables = [{"name": g.name, "type": g.type.get("name", ""),
                  "cmdarg": {"long": g.name.replace("_", "-"), "help": ""}}
                 for g in spec.globals]
    maps = []
    for m in spec.maps:
        entry: Dict[str, Any] = {"name": m.name, "ident": m.name}
        maps.append(entry)
    doc: Dict[str, Any] = {
        "bpf_object": base64.b64encode(zlib.compress(elf, 9)).decode(),
        "bpf_object_size": len(elf),
        "meta": {
            "bpf_skel": {
                "obj_name": spec.name,
                "progs": [{"name": p.name, "attach": p.section, "link": True} for p in spec.programs],
                "maps": maps,
                "data_sections": [{"name": ".rodata", "variables": variables}] if variables else [],
            },
            "export_types": export_types,
        },
        "wasm_bpf": {"format": FORMAT, "records": records},
    }
    if spec.annotations is not None:  # in ecc's places, and where each was written
        doc["wasm_bpf"]["annotations"] = A.to_meta(spec.annotations, doc["meta"]["bpf_skel"])
    return json.dumps(doc, indent=1) + "\n"


def read(text: str, what: str) -> Package:
    doc = schema.parse(text, what)  # every bound checked before any use
    try:
        raw = base64.b64decode(doc["bpf_object"], validate=False)
    except (binascii.Error, ValueError):
        raise SpecError(f"{what}: \"bpf_object\" is not base64") from None
    elf = _decompressed(raw, what)
    size = doc.get("bpf_object_size")
    if size is not None and size != len(elf):
        raise SpecError(f"{what}: the object is {len(elf)} bytes, \"bpf_object_size\" says {size}: the file is damaged")
    meta = doc.get("meta") or {}
    skel = meta.get("bpf_skel") or {}
    pkg = Package(elf=elf, name=skel.get("obj_name") or "")
    exports = meta.get("export_types") or []
    if exports:
        pkg.event_type = exports[0].get("name", "")
    ours = doc.get("wasm_bpf") or {}
    pkg.records = ours.get("records") or {}
    pkg.attach = ours.get("attach") or {}
    pkg.annotations = A.from_meta(doc, what)
    return pkg


def _decompressed(raw: bytes, what: str) -> bytes:
    """The object, inflated to at most schema.MAX_OBJECT bytes (a few KiB of zlib
    can inflate to gigabytes)."""
    inflate = zlib.decompressobj()
    try:
        elf = inflate.decompress(raw, schema.MAX_OBJECT)
    except zlib.error:
        return raw  # stored uncompressed
    if inflate.unconsumed_tail:
        raise SpecError(f"{what}: the object inflates past {schema.MAX_OBJECT >> 20} MiB, more than a BPF object "
                        "may be")
    return elf


def is_package(data: bytes) -> bool:
    return data.lstrip()[:1] == b"{"
