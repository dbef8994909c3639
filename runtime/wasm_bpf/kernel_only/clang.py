"""Compiling a .bpf.c for `wasm-bpf run` and `wasm-bpf package` with a restricted
include path (docs/kernel-only.md): the object, its BTF and a package made from it
hold only what the source and the headers it may read give them.

A program may read headers from its own directory, from the generated vmlinux.h's,
and from the system's BPF headers (linux/, asm/, asm-generic/, bpf/, the compiler's
own): clang runs with -nostdinc and those -I directories. Since clang still opens
absolute paths and `..` given to #include or #embed, the files the preprocessor reads
are listed first (clang -M, its diagnostics without source lines) and every one must
resolve (symlinks followed) inside those directories; only then does the compile,
whose errors quote source lines, run. Files read with #embed (listed by -M, not by
-H, which lists headers) are refused wherever they are.

The ISA is the newest one the kernel takes (-mcpu=v3 when it loads jmp32 and alu32
instructions, else v2, as bpftool's `probe` tells them apart); --cflags may override
it. A compile that fails on a libbpf name the installed headers lack (bpf_for,
bpf_ksym_exists, __arg_ctx...) says that it comes from a newer libbpf."""
from __future__ import annotations

import functools
import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import List, Optional, Sequence

from wasm_bpf._native import ffi, lib

from .spec import SpecError

ARCH_INCLUDE = f"/usr/include/{platform.machine()}-linux-gnu"
_HEADER_LINE = re.compile(r"^\.+ (.+)$")  # clang -H: one line per header read, dots for its depth
SYSTEM_HEADERS = ("/usr/include/linux", "/usr/include/asm-generic", "/usr/include/bpf", f"{ARCH_INCLUDE}/asm")


def compile_bpf(clang: str, src: Path, out: Path, vmlinux_dir: Path, defines: Sequence[str] = (),
                include_dirs: Sequence[Path] = (), verbose: bool = False, cflags: Sequence[str] = ()) -> None:
    """Compiles src into out (-g -O2 -target bpf -mcpu=the kernel's); SpecError with the
    reason. include_dirs: more directories the source may read (-I DIR); cflags: more
    clang flags (--cflags), after ours."""
    src = src.resolve()
    own = [vmlinux_dir, src.parent, *include_dirs]  # the order of the former flags: generated vmlinux.h first
    resource = _resource_include(clang)
    flags = [*defines, "-nostdinc", *(f"-I{d}" for d in own), f"-I{ARCH_INCLUDE}", "-I/usr/include",
             f"-I{resource}", *cflags]
    _check_reads(clang, src, flags, [*own, *SYSTEM_HEADERS, resource])
    mcpu = kernel_mcpu()
    isa = [f"-mcpu={mcpu}"] if mcpu and not any(f.startswith("-mcpu") for f in cflags) else []
    argv = [clang, "-g", "-O2", "-target", "bpf", *isa, *flags, "-c", str(src), "-o", str(out)]
    if verbose:
        print("+ " + " ".join(argv), file=sys.stderr)
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        output = proc.stdout.decode(errors="replace").rstrip()
        newer = _newer_libbpf(output, verbose)
        if newer:
            raise SpecError(f"cannot compile {src}: {newer}")
        raise SpecError(f"cannot compile {src} (fix the errors below, or pass a built .bpf.o):\n" + output)


# clang's words for a name nothing declares
_UNDECLARED = re.compile(r"^(.*?error: (?:use of undeclared identifier|call to undeclared function|"
                         r"implicit declaration of function|unknown type name) '(\w+)'.*)$", re.M)
# names of libbpf's BPF-side headers (bpf_helpers.h, bpf_tracing.h, bpf_core_read.h...)
_LIBBPF_NAME = re.compile(r"(bpf_|BPF_|__bpf|__arg_|__k?ptr|__percpu_kptr|__uptr|__ksym|barrier_var|can_loop|"
                          r"cond_break|__contains|__may_goto)\w*")
LIBBPF_HEADERS = Path("/usr/include/bpf")


def installed_libbpf() -> str:
    """The version of the libbpf headers in /usr/include/bpf ("1.1"), or ""."""
    try:
        text = (LIBBPF_HEADERS / "libbpf_version.h").read_text()
    except OSError:
        return ""
    found = dict(re.findall(r"#define LIBBPF_(MAJOR|MINOR)_VERSION (\d+)", text))
    return f"{found.get('MAJOR', '?')}.{found.get('MINOR', '?')}" if found else ""


def _newer_libbpf(output: str, verbose: bool) -> str:
    """The one-line reason when clang failed on a libbpf name the installed headers
    lack (with clang's line under -v); "" for any other failure."""
    found = next((m for m in _UNDECLARED.finditer(output) if _LIBBPF_NAME.fullmatch(m.group(2))), None)
    if found is None:
        return ""
    version = installed_libbpf()
    line = (f"'{found.group(2)}' is not declared: it comes from a newer libbpf than the one installed "
            f"({version or 'unknown version'}, "
            f"{LIBBPF_HEADERS}); install a newer libbpf-dev, or put a newer libbpf's bpf/*.h headers in a "
            "directory and give it with -I DIR")
    return line + (f"\n{found.group(1).strip()}" if verbose else "")


def _check_reads(clang: str, src: Path, flags: List[str], roots: Sequence[os.PathLike | str]) -> None:
    """Every file the preprocessor reads for src lies inside roots, and none is
    #embed-ed: clang -M lists all of them, -H only the headers."""
    proc = subprocess.run([clang, "-M", "-MT", "deps", "-H", "-target", "bpf", "-fno-caret-diagnostics", *flags,
                           str(src)], stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    stderr = proc.stderr.decode(errors="replace").splitlines()
    headers = {os.path.realpath(m.group(1)) for m in map(_HEADER_LINE.match, stderr) if m}
    if proc.returncode != 0:  # the lines name files and causes, never a file's contents
        raise SpecError(f"cannot compile {src}:\n" + "\n".join(line for line in stderr if not _HEADER_LINE.match(line)))
    allowed = [os.path.realpath(r) for r in roots]
    for path in _dependencies(proc.stdout.decode(errors="replace")):
        real = os.path.realpath(path)
        if not any(real == root or real.startswith(root.rstrip("/") + "/") for root in allowed):
            raise SpecError(f"{src} reads {path} (#include or #embed), outside the directories a kernel-only "
                            f"build may read: the source's ({src.parent}), vmlinux.h's, the system's BPF "
                            "headers and those given with -I DIR; copy what it needs next to the source, or "
                            "give its directory with -I DIR")
        if real not in headers and real != str(src):
            raise SpecError(f"{src} embeds {path} (#embed, or probes it with __has_embed): kernel-only builds "
                            "do not embed files; put the data in the source")


def _dependencies(make_rule: str) -> List[str]:
    """The prerequisites of clang -M's make rule ("deps: a.c b.h \\", spaces as "\\ ")."""
    prerequisites = make_rule.replace("\\\n", " ").removeprefix("deps:")
    paths, current = [], ""
    i = 0
    while i < len(prerequisites):
        ch = prerequisites[i]
        if ch == "\\" and i + 1 < len(prerequisites) and prerequisites[i + 1] in " #":
            current += prerequisites[i + 1]
            i += 2
            continue
        if ch.isspace():
            if current:
                paths.append(current)
            current = ""
        else:
            current += ch
        i += 1
    if current:
        paths.append(current)
    return paths


def _resource_include(clang: str) -> str:
    """clang's own headers (stdint.h, stdbool.h... for -target bpf)."""
    out = subprocess.run([clang, "-print-resource-dir"], capture_output=True, text=True).stdout.strip()
    return os.path.join(out, "include")


# the instructions of the ISA probes (linux/bpf_common.h, linux/bpf.h)
_BPF_ALU, _BPF_K, _BPF_JGT, _BPF_JLT, _BPF_EXIT = 0x04, 0x00, 0x20, 0xA0, 0x90
_W0_IS_0 = bytes([_BPF_ALU | lib.BPF_MOV | _BPF_K, 0, 0, 0, 0, 0, 0, 0])  # alu32: w0 = 0
_EXIT = bytes([lib.BPF_JMP | _BPF_EXIT, 0, 0, 0, 0, 0, 0, 0])
ISA_PROBES = (  # (-mcpu, r0 = 0 ... exit with the instruction that ISA added)
    ("v3", _W0_IS_0 + bytes([lib.BPF_JMP32 | _BPF_JGT | _BPF_K, 0, 0, 0, 1, 0, 0, 0]) + _EXIT),  # if w0 > 1 goto +0
    ("v2", _W0_IS_0 + bytes([lib.BPF_JMP | _BPF_JLT | _BPF_K, 0, 0, 0, 1, 0, 0, 0]) + _EXIT),  # if r0 < 1 goto +0
)


@functools.lru_cache(maxsize=None)
def kernel_mcpu() -> Optional[str]:
    """The newest -mcpu whose instructions this kernel loads (v3, v2), or None when
    no probe loads (not allowed to load programs: clang's default then)."""
    for mcpu, code in ISA_PROBES:
        fd = lib.bpf_prog_load(lib.BPF_PROG_TYPE_SOCKET_FILTER, b"wbpf_isa", b"GPL", ffi.from_buffer(code),
                               len(code) // 8, ffi.NULL)
        if fd >= 0:
            os.close(fd)
            return mcpu
    return None
