"""`wasm_bpf.Module`: a guest compiled once, for any number of Instances.

Each Instance keeps its own engine (stopping one interrupts its engine's epoch, which
must not touch another guest): the first Instance of a Module takes the engine the
module was compiled in, later ones deserialize it into engines of their own (no
compilation, only a copy). Compiled modules are kept between runs (compiled_cache.py)."""
from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Dict, FrozenSet, Optional, Tuple, Union

import wasmtime

from .errors import WasmBpfError
from .wasmfile import DeclaredItems, declared_items

ModuleSource = Union[str, "os.PathLike[str]", bytes]


# Every setting of the guests' engine, here and only here: the compiled-module cache
# is keyed by them (a module compiled under other settings is another entry).
# epoch_interruption: Instance.stop() interrupts the guest through its engine's epoch.
# memory_may_move False: a linear memory never moves (a growth that would move it fails
# instead), so the shim keeps the memory's base address across the guest calls of a
# poll; wasmtime reserves 4 GiB of address space per 32-bit memory, so a memory grows in
# place up to any --max-memory.
# cache: wasmtime's own cache too: measured, an idle bootstrap.wasm run holds 4.6 MiB
# less with it (less of libwasmtime's code resident, one thread fewer), though the
# module comes from our cache either way; why is not yet known.
ENGINE_SETTINGS: Dict[str, object] = {"epoch_interruption": True, "memory_may_move": False, "cache": True}


def new_engine() -> wasmtime.Engine:
    """An engine with ENGINE_SETTINGS."""
    config = wasmtime.Config()
    for name, value in ENGINE_SETTINGS.items():
        try:
            setattr(config, name, value)
        except wasmtime.WasmtimeError:
            if name != "cache":  # wasmtime's cache config cannot be read (HOME...): run without it
                raise
    return wasmtime.Engine(config)


class Module:
    """A validated, compiled guest module. `Instance(module, ...)` uses it as it is.
    cache=False compiles it even when the compiled-module cache holds it, and does
    not store it there."""

    def __init__(self, source: ModuleSource, *, cache: bool = True) -> None:
        self.path, data = _read(source)
        self.declared: Optional[DeclaredItems] = declared_items(data)  # for the store limits
        self._lock = threading.Lock()
        self._engine: Optional[wasmtime.Engine] = new_engine()
        self._compiled = _compile(self._engine, data, self.path, cache)
        self.imports: FrozenSet[Tuple[str, str]] = frozenset(
            (imp.module, imp.name or "") for imp in self._compiled.imports)  # (module, name) it imports
        self._code: Optional[bytearray] = None  # serialized, for the engines of later Instances

    def __repr__(self) -> str:
        return f"<Module {self.path!r}>"

    def take(self) -> Tuple[wasmtime.Engine, wasmtime.Module]:
        """An engine for one Instance alone, and the module compiled in it: the first
        call hands over the engine the module was compiled in, later calls make a new
        one (configured by new_engine())."""
        with self._lock:
            engine, self._engine = self._engine, None
            if engine is not None:
                return engine, self._compiled
            if self._code is None:
                self._code = self._compiled.serialize()
        engine = new_engine()
        return engine, wasmtime.Module.deserialize(engine, self._code)


def _compile(engine: wasmtime.Engine, data: bytes, path: str, cache: bool) -> wasmtime.Module:
    from .compiled_cache import CompiledCache

    store = CompiledCache(repr(sorted(ENGINE_SETTINGS.items()))) if cache else None
    compiled = store.load(engine, data) if store is not None else None
    if compiled is not None:
        return compiled
    try:
        compiled = wasmtime.Module(engine, data)
    except wasmtime.WasmtimeError as exc:
        lines = [line for line in str(exc).splitlines() if line.strip()]
        raise WasmBpfError(f"{path} is not a valid WebAssembly module: "
                           f"{lines[-1].strip() if lines else exc}") from None
    if store is not None:
        store.store(data, compiled)
    return compiled


def _read(source: ModuleSource) -> Tuple[str, bytes]:
    if isinstance(source, (bytes, bytearray)):
        path, data = "module.wasm", bytes(source)
    else:
        path = os.fspath(source)
        try:
            data = Path(path).read_bytes()
        except OSError as exc:
            raise WasmBpfError(f"cannot read module {path}: {exc.strerror}") from None
    if not data.startswith(b"\0asm"):
        try:  # WAT text is accepted too: handy for small test guests
            data = bytes(wasmtime.wat2wasm(data.decode()))
        except (UnicodeDecodeError, wasmtime.WasmtimeError):
            raise WasmBpfError(f"{path} is not a WebAssembly module (no \\0asm header, "
                               "and not WAT text)") from None
    return path, data
