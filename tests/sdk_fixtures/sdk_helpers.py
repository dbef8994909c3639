"""Helpers of the guest-SDK tests (tests/test_sdk_*.py)."""
from __future__ import annotations

import subprocess
from pathlib import Path

import wasmtime
from elftools.elf.elffile import ELFFile

from wasm_bpf_sdk.build import SDK_INCLUDE

FIXTURES = Path(__file__).resolve().parent
CLANG = "clang-19"


def run(argv: list[str]) -> None:
    proc = subprocess.run(argv, capture_output=True, text=True)
    assert proc.returncode == 0, f"{' '.join(argv)}\n{proc.stdout}{proc.stderr}"


def compile_bpf(src: Path, out: Path, *flags: str) -> Path:
    run([CLANG, "-g", "-O2", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu",
         f"-I{FIXTURES}", *flags, "-c", str(src), "-o", str(out)])
    return out


def compile_wasm(sources: list[Path], out: Path, *include_dirs: Path, flags: tuple = ()) -> Path:
    run([CLANG, "--target=wasm32-wasi", "--sysroot=/usr", "-O2", "-Wall", "-Werror",
         f"-I{SDK_INCLUDE}", f"-I{FIXTURES}", *[f"-I{d}" for d in include_dirs], *flags,
         *map(str, sources), "-Wl,--allow-undefined,--export-table", "-o", str(out)])
    return out


def run_wasi(module: Path, tmp: Path) -> str:
    """Run a plain WASI command (no wasm_bpf imports) and return its stdout."""
    engine = wasmtime.Engine()
    linker = wasmtime.Linker(engine)
    linker.define_wasi()
    store = wasmtime.Store(engine)
    out = tmp / f"{module.stem}.stdout"
    cfg = wasmtime.WasiConfig()
    cfg.stdout_file = str(out)
    store.set_wasi(cfg)
    instance = linker.instantiate(store, wasmtime.Module.from_file(engine, str(module)))
    try:
        instance.exports(store)["_start"](store)
    except wasmtime.ExitTrap as e:
        assert e.code == 0, f"{module} exited with {e.code}"
    return out.read_text()


def elf_symbol_bytes(obj: Path, name: str) -> bytes:
    """The initial bytes of a global variable of a BPF object."""
    with open(obj, "rb") as f:
        elf = ELFFile(f)
        sym = next(s for s in elf.get_section_by_name(".symtab").iter_symbols() if s.name == name)
        sec = elf.get_section(sym["st_shndx"])
        return sec.data()[sym["st_value"]: sym["st_value"] + sym["st_size"]]


def imports(module: Path) -> dict[tuple[str, str], tuple[list[str], list[str]]]:
    """(module, name) -> (param types, result types) of a wasm module's function imports."""
    m = wasmtime.Module.from_file(wasmtime.Engine(), str(module))
    return {(i.module, i.name): ([str(p) for p in i.type.params], [str(r) for r in i.type.results])
            for i in m.imports if isinstance(i.type, wasmtime.FuncType)}
