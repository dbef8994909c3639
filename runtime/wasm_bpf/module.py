"""`wasm_bpf.Module`: a guest compiled once, for any number of Instances.

Each Instance keeps its own engine (stopping one interrupts its engine's epoch, which
must not touch another guest), so a Module holds the compiled code serialized and
each Instance deserializes it: no compilation, only a copy."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Optional, Tuple, Union

import wasmtime

from .errors import WasmBpfError
from .wasmfile import DeclaredItems, declared_items

ModuleSource = Union[str, "os.PathLike[str]", bytes]


def new_engine() -> wasmtime.Engine:
    """The engine configuration of every guest: epoch interruption for stop(), and a
    linear memory that never moves (a growth that would move it fails instead): the
    shim keeps the memory's base address across the guest calls of a poll. wasmtime
    reserves 4 GiB of address space per 32-bit memory, so a memory grows in place up
    to any --max-memory."""
    config = wasmtime.Config()
    config.epoch_interruption = True
    config.memory_may_move = False
    try:
        config.cache = True  # compiled modules are reused across runs
    except wasmtime.WasmtimeError:
        pass
    return wasmtime.Engine(config)


class Module:
    """A validated, compiled guest module. `Instance(module, ...)` uses it as it is."""

    def __init__(self, source: ModuleSource) -> None:
        self.path, data = _read(source)
        self.declared: Optional[DeclaredItems] = declared_items(data)  # for the store limits
        try:
            compiled = wasmtime.Module(new_engine(), data)
        except wasmtime.WasmtimeError as exc:
            lines = [line for line in str(exc).splitlines() if line.strip()]
            raise WasmBpfError(f"{self.path} is not a valid WebAssembly module: "
                               f"{lines[-1].strip() if lines else exc}") from None
        self._code = compiled.serialize()

    def __repr__(self) -> str:
        return f"<Module {self.path!r}>"

    def for_engine(self, engine: wasmtime.Engine) -> wasmtime.Module:
        """The compiled module in an Instance's engine (configured by new_engine())."""
        return wasmtime.Module.deserialize(engine, self._code)


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
