"""`wasm-bpf inspect MODULE`: what a module would ask of the kernel, without loading
anything. The skeleton embeds each .bpf.o in a data segment, so the Wasm data
segments are scanned for ELF objects of machine EM_BPF; each is opened with libbpf
(no bpf() calls) and its programs and maps are listed, with the module's imports.
`--policy-template` prints a policy that allows exactly that (docs/policy.md)."""
import io
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Dict, List

import click
from elftools.common.exceptions import ELFError
from elftools.elf.elffile import ELFFile

from ._native import ffi, lib
from .errors import HostCallError, HostCallUnwind, WasmBpfError
from .helpers import helpers_of
from .limits import human_size
from .objspec import DeclaredMap, DeclaredProgram, maps_of, open_object, programs_of
from .policy import policy_template
from .wasmfile import DATA_SECTION, imports, readers

EM_BPF = 247
WASM_MAGIC, ELF_MAGIC = b"\0asm", b"\x7fELF"


@dataclass
class ObjectReport:
    size: int
    programs: List[DeclaredProgram]
    maps: List[DeclaredMap]
    helpers: Dict[str, List[str]]  # program name -> the helpers it calls


@dataclass
class ModuleReport:
    path: str
    imports: List[str] = field(default_factory=list)  # "module.name"
    objects: List[ObjectReport] = field(default_factory=list)

    def to_json(self) -> Dict[str, Any]:
        return {"module": self.path, "imports": self.imports, "objects": [
            {"size": o.size,
             "programs": [{**p._asdict(), "target": p.target, "helpers": o.helpers[p.name]} for p in o.programs],
             "maps": [{**m._asdict(), "memory": m.memory} for m in o.maps]} for o in self.objects]}


# ---- finding the objects ---------------------------------------------------------------
def _data_segments(wasm: bytes) -> List[bytes]:
    segments = []
    for r in readers(wasm, DATA_SECTION):
        for _ in range(r.uleb()):
            flags = r.uleb()
            if flags == 2:
                r.uleb()  # memory index
            if flags in (0, 2):
                r.skip_const_expr()
            n = r.uleb()
            segments.append(wasm[r.pos:r.pos + n])
            r.pos += n
    return segments


def _bpf_elf_at(data: bytes, pos: int) -> int:
    """The size of the EM_BPF ELF object at data[pos:], or 0 if there is none."""
    try:
        elf = ELFFile(io.BytesIO(data[pos:]))
        header = elf.header
        if header["e_machine"] != "EM_BPF" and header["e_machine"] != EM_BPF:
            return 0
        end = header["e_shoff"] + header["e_shnum"] * header["e_shentsize"]
        for section in elf.iter_sections():
            if section["sh_type"] != "SHT_NOBITS":
                end = max(end, section["sh_offset"] + section["sh_size"])
    except (ELFError, ValueError, KeyError, OSError):
        return 0
    return end if pos + end <= len(data) else 0


def bpf_objects_in(data: bytes, path: str) -> List[bytes]:
    """The BPF ELF objects of a Wasm module (in its data segments), the object
    itself for a .bpf.o, or the one a kernel-only JSON package carries."""
    if data.lstrip()[:1] == b"{":
        from .kernel_only.package import read
        return [read(data.decode("utf-8", "replace"), path).elf]  # its errors are WasmBpfErrors
    if data.startswith(ELF_MAGIC):
        if not _bpf_elf_at(data, 0):
            raise WasmBpfError(f"{path} is an ELF file but not a BPF object (e_machine is not EM_BPF)")
        return [data]
    if not data.startswith(WASM_MAGIC):
        raise WasmBpfError(f"{path} is neither a WebAssembly module, a BPF object (.bpf.o) nor a "
                           "kernel-only JSON package")
    objects = []
    for segment in _data_segments(data):
        pos = segment.find(ELF_MAGIC)
        while pos >= 0:
            size = _bpf_elf_at(segment, pos)
            if size:
                objects.append(segment[pos:pos + size])
            pos = segment.find(ELF_MAGIC, pos + max(size, 1))
    return objects


def _imports(wasm: bytes) -> List[str]:
    return [f"{i.module}.{i.name}" for i in imports(wasm)]


def describe_object(elf: bytes) -> ObjectReport:
    buf = ffi.from_buffer(elf)
    obj = open_object(buf)
    try:
        return ObjectReport(len(elf), programs_of(obj), maps_of(obj), helpers_of(obj, elf))
    finally:
        lib.bpf_object__close(obj)


def inspect_module(path: str) -> ModuleReport:
    try:
        data = Path(path).read_bytes()
    except OSError as exc:
        raise WasmBpfError(f"cannot read {path}: {exc.strerror}") from None
    report = ModuleReport(path, _imports(data) if data.startswith(WASM_MAGIC) else [])
    for elf in bpf_objects_in(data, path):
        try:
            report.objects.append(describe_object(elf))
        except HostCallError as exc:
            raise WasmBpfError(f"{path}: an embedded BPF object cannot be opened: {exc}") from None
    return report


# ---- output -------------------------------------------------------------------------------
def human(report: ModuleReport) -> str:
    lines = [f"{report.path}: {len(report.objects)} BPF object(s)"]
    for i, obj in enumerate(report.objects, 1):
        lines.append(f"\nobject {i} ({obj.size} bytes)\n  programs:")
        lines.append(f"    {'NAME':<24} {'SECTION':<32} {'TYPE':<16} {'ATTACH':<12} TARGET")
        for p in obj.programs:
            load = "" if p.autoload else "  (not loaded)"
            lines.append(f"    {p.name:<24} {p.section:<32} {p.type:<16} {p.kind:<12} {p.target}{load}")
            lines.append(f"      helpers: {', '.join(obj.helpers[p.name]) or 'none'}")
        lines.append("  maps:")
        lines.append(f"    {'NAME':<24} {'TYPE':<20} {'KEY':>5} {'VALUE':>6} {'ENTRIES':>8} {'MEMORY':>10}")
        for m in obj.maps:
            lines.append(f"    {m.name:<24} {m.type:<20} {m.key_size:>5} {m.value_size:>6} {m.max_entries:>8} "
                         f"{human_size(m.memory):>10}")
        total = sum(m.memory for m in obj.maps)
        lines.append(f"  estimated map memory: {human_size(total)}")
    lines.append("\nimports:")
    lines.extend(f"  {name}" for name in report.imports)
    return "\n".join(lines)


def report_policy_template(report: ModuleReport) -> str:
    """What `--policy-template` prints for REPORT (also in a pushed artifact's config)."""
    helpers = [h for o in report.objects for p in o.programs if p.autoload for h in o.helpers[p.name]]
    return policy_template(Path(report.path).name, [p for o in report.objects for p in o.programs],
                           [m for o in report.objects for m in o.maps], helpers)


@click.command("inspect", short_help="List the programs and maps of a module or BPF object.")
@click.option("--json", "as_json", is_flag=True, help="Print the report as JSON.")
@click.option("--policy-template", "template", is_flag=True, help="Print a policy (TOML) that allows exactly what the module needs.")
@click.argument("module", type=click.Path(exists=True, dir_okay=False))
def inspect_command(as_json: bool, template: bool, module: str) -> None:
    """List the BPF programs and maps MODULE (a .wasm or a .bpf.o) would load, and
    its imports, without loading anything."""
    try:
        report = inspect_module(module)
    except HostCallUnwind:  # inspect_module answers its own: one here is a bug
        raise
    except WasmBpfError as exc:
        click.echo(f"wasm-bpf: error: {exc}", err=True)
        sys.exit(1)
    if template:
        click.echo(report_policy_template(report), nl=False)
    elif as_json:
        click.echo(json.dumps(report.to_json(), indent=2))
    else:
        click.echo(human(report))
