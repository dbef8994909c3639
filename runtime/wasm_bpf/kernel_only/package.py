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
(types.py), so the package runs without the object's DWARF, which is left out (slim):
DWARF of a CO-RE program holds all of vmlinux.h's types and made packages ~13x larger. Read from an
eunomia file: the object, export_types[0].name as the record type, and the
annotations ecc writes (annotations.py: cmdarg, description, sample, tchook...)."""
from __future__ import annotations

import base64
import binascii
import json
import shutil
import subprocess
import tempfile
import zlib
from dataclasses import dataclass, field
from pathlib import Path
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


def slim(elf: bytes, what: str) -> bytes:
    """The object as it runs: libbpf's static linker (`bpftool gen object`) leaves out
    DWARF (.debug_* and their relocations) and .llvm_addrsig and deduplicates BTF; code,
    maps, globals, symbols, BTF and .BTF.ext (line info, CO-RE relocations) stay. It
    runs in its own process, so an object libbpf 1.1 mishandles cannot take the host down."""
    bpftool = shutil.which("bpftool") or shutil.which("/usr/sbin/bpftool")
    if bpftool is None:
        raise SpecError("wasm-bpf package needs bpftool (libbpf's linker) to leave DWARF out of the package: "
                        "install it (apt-get install bpftool)")
    with tempfile.TemporaryDirectory(prefix="wasm-bpf-pkg-") as tmp:
        src, dst = Path(tmp) / "in.bpf.o", Path(tmp) / "out.bpf.o"
        src.write_bytes(elf)
        try:
            proc = subprocess.run([bpftool, "gen", "object", str(dst), str(src)], capture_output=True, text=True,
                                  timeout=120)
        except subprocess.TimeoutExpired:
            raise SpecError(f"{what}: bpftool gen object took over 120 s") from None
        if proc.returncode != 0 or not dst.is_file():
            why = (proc.stderr.strip().splitlines() or [f"exit status {proc.returncode}"])[-1]
            raise SpecError(f"{what}: libbpf's linker (bpftool gen object) refused the object: {why}")
        return dst.read_bytes()


def write(spec: ObjectSpec) -> str:
    """The package of an inspected object: the record types come from the full object
    (its DWARF), the stored object is slim()."""
    elf = slim(spec.elf, spec.name)
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
    return json.dumps(doc, separators=(",", ":")) + "\n"  # compact: the size is the point


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
