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
-H, which lists headers) are refused wherever they are."""
from __future__ import annotations

import os
import platform
import re
import subprocess
import sys
from pathlib import Path
from typing import List, Sequence

from .spec import SpecError

ARCH_INCLUDE = f"/usr/include/{platform.machine()}-linux-gnu"
_HEADER_LINE = re.compile(r"^\.+ (.+)$")  # clang -H: one line per header read, dots for its depth
SYSTEM_HEADERS = ("/usr/include/linux", "/usr/include/asm-generic", "/usr/include/bpf", f"{ARCH_INCLUDE}/asm")


def compile_bpf(clang: str, src: Path, out: Path, vmlinux_dir: Path, defines: Sequence[str] = (),
                include_dirs: Sequence[Path] = (), verbose: bool = False) -> None:
    """Compiles src into out (-g -O2 -target bpf); SpecError with the reason.
    include_dirs: more directories the source may read (and -I)."""
    src = src.resolve()
    own = [vmlinux_dir, src.parent, *include_dirs]  # the order of the former flags: generated vmlinux.h first
    resource = _resource_include(clang)
    flags = [*defines, "-nostdinc", *(f"-I{d}" for d in own), f"-I{ARCH_INCLUDE}", "-I/usr/include",
             f"-I{resource}"]
    _check_reads(clang, src, flags, [*own, *SYSTEM_HEADERS, resource])
    argv = [clang, "-g", "-O2", "-target", "bpf", *flags, "-c", str(src), "-o", str(out)]
    if verbose:
        print("+ " + " ".join(argv), file=sys.stderr)
    proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    if proc.returncode != 0:
        raise SpecError(f"cannot compile {src} (fix the errors below, or pass a built .bpf.o):\n"
                        + proc.stdout.decode(errors="replace").rstrip())


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
                            f"build may read: the source's ({src.parent}), vmlinux.h's and the system's BPF "
                            "headers; copy what it needs next to the source")
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
