"""`wasm_bpf.load()`: a BPF object loaded by and for the Python program itself (no
Wasm), with its programs, maps, variables and event buffers as Python objects.

    with wasm_bpf.load("prog.bpf.c", globals={"targ_pid": 42}) as obj:
        for record in obj.events("events"):
            print(record)

Everything the object holds (links, event buffers, the object) is released by
close(), by leaving the `with`, or when the object is garbage collected."""
from __future__ import annotations

import weakref
from pathlib import Path
from typing import Any, Dict, List, Mapping, Optional, Tuple, Union


from .attach import Link
from .errors import HostCallError, WasmBpfError
from .events import Events
from .kernel_only import flags as F
from .kernel_only.decode import RecordDecoder, decode
from .kernel_only.runner import PERF_PAGES, RunError, load_input
from .kernel_only.spec import GlobalSpec, ObjectSpec, SpecError, _elf, _symbols, object_btf
from .kernel_only import types as T
from .limits import Limits
from .bpf_object import BpfObject
from .mapview import Map, MapError, encode
from .sandbox import Sandbox
from wasm_bpf_sdk import btf as B

PathLike = Union[str, Path]
SECTIONS = (".bss", ".data", ".rodata")


class LoadError(WasmBpfError):
    """The object could not be read, loaded or attached; the message says why."""


class Program:
    """One BPF program of a loaded object; attach() takes the target syntax of the
    guests' wasm_attach_bpf_program (an interface for XDP, a cgroup path,
    binary:function for uprobes, "" when the section names it)."""

    def __init__(self, owner: "LoadedObject", name: str, section: str) -> None:
        self._owner = owner
        self.name = name
        self.section = section
        self._links: List[Link] = []

    def __repr__(self) -> str:
        return f"<Program {self.name!r} SEC({self.section!r}) attached={self.attached}>"

    @property
    def attached(self) -> bool:
        return any(link.alive for link in self._links)

    @property
    def fd(self) -> int:
        return self._owner._object().program_fd(self.name)

    def attach(self, target: str = "") -> None:
        """Attaches the program (once more, when it already is: one link per call)."""
        obj = self._owner._object()
        try:
            self._links.append(obj.attach(self.name, target))
        except HostCallError as e:
            raise LoadError(f"cannot attach {self.name} (SEC(\"{self.section}\")): {e}") from None

    def detach(self) -> None:
        """Destroys every link of this program; it stays loaded."""
        obj = self._owner._object()
        for link in self._links:
            obj.destroy_link(link)
        self._links.clear()


class Variables:
    """The global variables of one data section (.bss, .data, .rodata) as
    attributes, read from (and written to) the kernel's copy at each access. .rodata
    is frozen at load: set its values with load(globals=...)."""

    def __init__(self, section: str, map_: Optional[Map], layout: Dict[str, Tuple[T.Type, int]]) -> None:
        object.__setattr__(self, "_section", section)
        object.__setattr__(self, "_map", map_)
        object.__setattr__(self, "_layout", layout)

    def __dir__(self) -> List[str]:
        return sorted(self._layout)

    def __repr__(self) -> str:
        return f"<Variables {self._section}: {', '.join(sorted(self._layout)) or 'none'}>"

    def _where(self, name: str) -> Tuple[T.Type, int, Map]:
        if name not in self._layout or self._map is None:
            known = ", ".join(sorted(self._layout)) or "none"
            raise AttributeError(f"{self._section} has no variable {name!r} (variables: {known})")
        t, offset = self._layout[name]
        return t, offset, self._map

    def __getattr__(self, name: str) -> Any:
        t, offset, m = self._where(name)
        return decode(t, m[0][offset:offset + t["size"]])

    def __setattr__(self, name: str, value: Any) -> None:
        t, offset, m = self._where(name)
        if self._section == ".rodata":
            raise MapError(f".rodata is read-only once loaded: pass globals={{{name!r}: ...}} to wasm_bpf.load()")
        data = bytearray(m[0])
        data[offset:offset + t["size"]] = encode(t, value, t["size"], f"{self._section} variable {name!r}")
        m[0] = bytes(data)


class LoadedObject:
    """A loaded BPF object: `programs` and `maps` (dicts by name), `bss`, `data`,
    `rodata` (variables as attributes), and events(map) for its event buffers."""

    def __init__(self, spec: ObjectSpec, elf: bytes, attach: bool, targets: Mapping[str, str]) -> None:
        self.name = spec.name
        self._spec = spec
        try:
            obj = BpfObject(elf, sandbox=Sandbox(limits=Limits.unlimited()), name=spec.name)
        except HostCallError as e:
            raise LoadError(f"cannot load {spec.name}: {e}") from None
        self._obj: Optional[BpfObject] = obj
        # Garbage collection closes the object: the finalizer holds the BpfObject, not self.
        self._finalizer = weakref.finalize(self, obj.close)
        self._events: Dict[str, Events] = {}
        try:
            self.programs: Dict[str, Program] = {p.name: Program(self, p.name, p.section) for p in spec.programs}
            unknown = sorted(set(targets) - set(self.programs))
            if unknown:
                raise LoadError(f"targets: no program named {unknown[0]!r} (programs: {', '.join(self.programs)})")
            self.maps: Dict[str, Map] = {m.name: Map(m.name, obj.map_fd(m.name), m.key, m.value, self)
                                         for m in spec.maps if not m.is_buffer}
            layouts = _section_layouts(elf, spec.name)
            self.bss, self.data, self.rodata = (
                Variables(s, self._internal_map(s, layouts.get(s, {})), layouts.get(s, {})) for s in SECTIONS)
            if attach:
                for p in self.programs.values():
                    p.attach(targets.get(p.name, ""))
        except BaseException:  # nothing stays loaded or attached
            self.close()
            raise

    def _internal_map(self, section: str, layout: Dict[str, Tuple[T.Type, int]]) -> Optional[Map]:
        if not layout:
            return None
        obj = self._object()
        return Map(section, obj.map_fd(section), {"kind": "int", "size": 4, "signed": False, "name": "u32"},
                   None, self)

    def _object(self) -> BpfObject:
        if self._obj is None:
            raise LoadError(f"object {self.name!r} is closed")
        return self._obj

    def __repr__(self) -> str:
        state = "closed" if self._obj is None else f"programs={list(self.programs)} maps={list(self.maps)}"
        return f"<LoadedObject {self.name!r} {state}>"

    def events(self, name: str, raw: bool = False) -> Events:
        """The records of ring buffer or perf event array `name` (one reader per map).
        raw=True: numbers as they are, without errno/signal/address names."""
        if name in self._events:
            return self._events[name]
        try:
            spec = self._spec.map(name)
        except SpecError as e:
            raise LoadError(str(e)) from None
        if not spec.is_buffer:
            raise LoadError(f"map {name!r} is a {spec.type_name}, not a ring buffer or perf event array: "
                            f"read it as obj.maps[{name!r}]")
        if spec.record is None:
            raise LoadError(f"cannot tell the record type of {name!r}: pass event_type= to wasm_bpf.load() "
                            "(the struct the program submits), or compile with -g")
        obj = self._object()
        buffer = obj.buffer(obj.map_fd(name), PERF_PAGES)
        ev = self._events[name] = Events(buffer, RecordDecoder(spec.record, raw=raw), self)
        return ev

    def close(self) -> None:
        """Detaches every program and frees the object. Idempotent."""
        self._events.clear()
        self._obj = None
        self._finalizer()

    def __enter__(self) -> "LoadedObject":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def load(path: PathLike, globals: Optional[Mapping[str, Any]] = None, attach: bool = True,
         targets: Optional[Mapping[str, str]] = None, event_type: str = "") -> LoadedObject:
    """Loads x.bpf.c (compiled first), x.bpf.o or a x.json package. globals sets
    .rodata's `const volatile` variables before the load; attach=True attaches every
    program (targets: program name -> attach target, over a package's). event_type
    names the record struct of the event buffers when it cannot be found."""
    try:
        spec, pkg = load_input(str(path), event_type)
    except (SpecError, RunError) as e:
        raise LoadError(str(e)) from None
    elf = _patched(spec, dict(globals or {}))
    return LoadedObject(spec, elf, attach, {**(pkg.attach if pkg else {}), **(targets or {})})


def _patched(spec: ObjectSpec, values: Dict[str, Any]) -> bytes:
    by_name: Dict[str, GlobalSpec] = {g.name: g for g in spec.globals}
    raw: Dict[str, bytes] = {}
    for name, value in values.items():
        g = by_name.get(name)
        if g is None:
            known = ", ".join(by_name) or "none"
            raise LoadError(f"globals: {spec.name} has no `const volatile` variable {name!r} (variables: {known})")
        try:
            raw[name] = encode(g.type, value, g.type["size"], f"globals[{name!r}]")
        except MapError as e:
            raise LoadError(str(e)) from None
    return F.patch_rodata(spec.elf, spec.globals, raw)


def _section_layouts(elf_bytes: bytes, what: str) -> Dict[str, Dict[str, Tuple[T.Type, int]]]:
    """Section -> variable -> (type, offset) of .bss, .data and .rodata, from the
    object's BTF (types) and symbols (offsets; libbpf fixes the BTF's up at load)."""
    elf = _elf(elf_bytes, what)
    index = {s.name: i for i, s in enumerate(elf.iter_sections())}
    out: Dict[str, Dict[str, Tuple[T.Type, int]]] = {}
    with object_btf(elf, what) as btf:
        secs = btf.datasecs()
        for section in SECTIONS:
            if section not in secs or section not in index:
                continue
            offsets = {s.name: s["st_value"] for s in _symbols(elf)
                       if s["st_shndx"] == index[section] and s["st_info"]["type"] == "STT_OBJECT"}
            layout = {}
            for sv in btf.datasec_vars(secs[section]):
                name = btf.name(sv.type_id)
                if btf.kind(sv.type_id) == B.VAR and btf.var_linkage(sv.type_id) != B.VAR_EXTERN \
                        and name in offsets:
                    layout[name] = (T.from_btf(btf, btf.ref(sv.type_id)), int(offsets[name]))
            out[section] = layout
    return out


__all__ = ["LoadError", "LoadedObject", "Program", "Variables", "load"]
