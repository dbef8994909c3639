"""Builds the ABI test guests once per test session (clang-19, wasm32-wasi).

`guests()` returns a dict name -> path of .wasm files (and "bpf" -> the BPF
object), built into a temporary directory.  Compile errors fail the tests that use
the guests, with clang's output.
"""
import atexit
import functools
import shutil
import subprocess
import tempfile
from pathlib import Path

HERE = Path(__file__).resolve().parent
CLANG = shutil.which("clang-19") or "clang-19"
BPF_CFLAGS = ["-g", "-O2", "-target", "bpf", "-D__TARGET_ARCH_x86",
              "-I/usr/include/x86_64-linux-gnu"]
WASM_CFLAGS = ["--target=wasm32-wasi", "--sysroot=/usr", "-O2", "-Wall",
               "-Wno-unused-function", "-Wl,--allow-undefined,--export-table"]
TP_SECTION = "tp/syscalls/sys_enter_getppid"
TRAMP_KINDS = ("fentry", "fexit", "fmod_ret", "lsm")  # the programs of tramp.bpf.c


class BuildError(RuntimeError):
    pass


def _run(cmd):
    proc = subprocess.run(cmd, capture_output=True, text=True)
    if proc.returncode != 0:
        raise BuildError(f"{' '.join(map(str, cmd))}\n{proc.stdout}{proc.stderr}")


def _prog_offset(obj: Path) -> int:
    """File offset of the tracepoint program's first instruction, checked to be an
    instruction libbpf does not relocate (so overwriting it reaches the verifier)."""
    from elftools.elf.elffile import ELFFile
    from elftools.elf.relocation import RelocationSection

    with open(obj, "rb") as f:
        elf = ELFFile(f)
        sec = elf.get_section_by_name(TP_SECTION)
        if sec is None:
            raise BuildError(f"{obj}: no section {TP_SECTION}")
        for rel_sec in elf.iter_sections():
            if isinstance(rel_sec, RelocationSection) and rel_sec.name == ".rel" + TP_SECTION:
                if any(r["r_offset"] == 0 for r in rel_sec.iter_relocations()):
                    raise BuildError("first instruction of the program is relocated")
        if sec.data()[0] == 0x18:
            raise BuildError("first instruction of the program is ld_imm64")
        return sec["sh_offset"]


def _symbol_offset(obj: Path, name: str) -> int:
    """File offset of a global variable's initial value."""
    from elftools.elf.elffile import ELFFile

    with open(obj, "rb") as f:
        elf = ELFFile(f)
        sym = elf.get_section_by_name(".symtab").get_symbol_by_name(name)[0]
        sec = elf.get_section(sym["st_shndx"])
        return sec["sh_offset"] + sym["st_value"]


def _c_array(name: str, data: bytes) -> str:
    lines = [f"static const unsigned char {name}[{len(data)}] __attribute__((aligned(8))) = {{"]
    for i in range(0, len(data), 16):
        lines.append("  " + ",".join(str(b) for b in data[i:i + 16]) + ",")
    lines.append("};")
    return "\n".join(lines) + "\n"


@functools.lru_cache(maxsize=None)
def guests() -> dict:
    out = Path(tempfile.mkdtemp(prefix="wasm-bpf-abi-guests-"))
    atexit.register(shutil.rmtree, out, True)
    built = {}

    bpf = out / "abi.bpf.o"
    _run([CLANG, *BPF_CFLAGS, "-I", HERE, "-c", HERE / "abi.bpf.c", "-o", bpf])
    built["bpf"] = bpf
    header = out / "abi_bpf_obj.h"
    header.write_text(
        "/* generated from abi.bpf.o by tests/guests/build.py */\n"
        f"#define ABI_PROG_OFF {_prog_offset(bpf)}\n"
        f"#define ABI_RODATA_MAGIC_OFF {_symbol_offset(bpf, 'rodata_magic')}\n" + _c_array("abi_bpf_obj", bpf.read_bytes()))

    def embed(name, src=None, *defines):
        """Compiles SRC.bpf.c (default NAME.bpf.c) and writes NAME_bpf_obj.h with the
        object as a C array."""
        obj = out / f"{name}.bpf.o"
        _run([CLANG, *BPF_CFLAGS, *defines, "-I", HERE, "-c", HERE / f"{src or name}.bpf.c", "-o", obj])
        built[f"{name}_bpf"] = obj
        (out / f"{name}_bpf_obj.h").write_text(
            f"/* generated from {name}.bpf.o by tests/guests/build.py */\n"
            + _c_array(f"{name}_bpf_obj", obj.read_bytes()))

    for name in ("attach", "matrix", "maps", "cgstorage", "isolation", "cleanup"):
        embed(name)
    for name in ("pin", "mapmem"):  # loaded from files by the objfile guest
        embed(name)
    embed("mapmem_inner", "mapmem", "-DINNER")
    for kind in TRAMP_KINDS:  # one object per kind: each loads (or is refused) alone
        embed(f"tramp_{kind}", "tramp", f"-DTRAMP_{kind.upper()}")

    def cc(name, src, *defines):
        wasm = out / f"{name}.wasm"
        _run([CLANG, *WASM_CFLAGS, "-I", HERE, "-I", out, *defines, HERE / src, "-o", wasm])
        built[name] = wasm

    cc("abi", "abi_guest.c")
    cc("limits", "limits_guest.c")
    cc("isolation", "isolation_guest.c")
    cc("cleanup", "cleanup_guest.c")
    cc("stop", "stop_guest.c")  # tests/test_stop.py
    cc("attach", "attach_guest.c")
    cc("link", "link_guest.c")
    for kind in TRAMP_KINDS:
        cc(f"link_{kind}", "link_guest.c", f'-DOBJ_HEADER="tramp_{kind}_bpf_obj.h"', f"-DOBJ_ARRAY=tramp_{kind}_bpf_obj")
    sdk = ("-I", HERE.parent.parent / "guest_sdk" / "include")
    cc("maps", "maps_guest.c", *sdk)
    cc("storage", "storage_guest.c", *sdk)
    cc("mapop64", "mapop64_guest.c")
    cc("hostile", "hostile_guest.c", "-Wl,--export=cb_not_func")  # tests/test_hostile.py
    cc("cbwrap", "cbwrap_guest.c")
    cc("objfile", "objfile_guest.c")  # tests/test_limits.py
    cc("cbwrap_noexport", "cbwrap_guest.c", "-DNO_EXPORT")
    cc("cbwrap_wrongtype", "cbwrap_guest.c", "-DWRONG_EXPORT_TYPE")
    cc("cbwrap_renamed", "cbwrap_guest.c", '-DCB_MODULE="my-wrapper"', '-DCB_EXPORT="my-cb"')
    cc("unknown_name", "badimport_guest.c", '-DIMPORT_MODULE="wasm_bpf"',
       '-DIMPORT_NAME="nonexistent"')
    cc("unknown_module", "badimport_guest.c", '-DIMPORT_MODULE="mystery_module"',
       '-DIMPORT_NAME="mystery_function"')

    import wasmtime

    for wat in sorted(HERE.glob("*.wat")):
        wasm = out / (wat.stem + ".wasm")
        wasm.write_bytes(wasmtime.wat2wasm(wat.read_text()))
        built[wat.stem] = wasm
    return built
