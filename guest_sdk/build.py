"""`wasm-bpf build`: X.bpf.c + X.c -> X.wasm in one command.

Steps: vmlinux.h from the running kernel's BTF (cached), the BPF object (clang,
CO-RE), the skeleton and the wasm32 type header (this SDK's generators), then the
wasm module (clang for wasm32-wasi against wasi-libc). A failing step raises
BuildError naming the step and the command, with the tool's output."""
from __future__ import annotations

import hashlib
import os
import platform
import re
import shlex
import shutil
import subprocess
import sys
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable

from wasm_bpf.errors import WasmBpfError

from . import hdrscan, header, skeleton
from .btf import Btf, BtfError
from .elfobj import ObjectError

SDK_INCLUDE = Path(__file__).resolve().parent / "include"
KERNEL_BTF = Path("/sys/kernel/btf/vmlinux")

# -D__TARGET_ARCH_<arch> for bpf_tracing.h, from the machine we build on.
_TARGET_ARCH = {"x86_64": "x86", "aarch64": "arm64", "armv7l": "arm", "ppc64le": "powerpc",
                "s390x": "s390", "riscv64": "riscv", "loongarch64": "loongarch"}


class BuildError(WasmBpfError):
    def __init__(self, step: str, command: str, output: str = "") -> None:
        self.step, self.command, self.output = step, command, output.rstrip()
        super().__init__(f"{step} failed: {command}")

    def report(self) -> str:
        head = f"wasm-bpf build: step '{self.step}' failed: {self.command}"
        return f"{head}\n{self.output}" if self.output else head


@dataclass
class BuildConfig:
    bpf_source: Path
    sources: list[Path]  # user-space C sources
    output: Path
    build_dir: Path | None = None  # keep intermediates there; None: a temporary dir
    cflags: list[str] = field(default_factory=list)  # extra flags for the wasm compile
    bpf_cflags: list[str] = field(default_factory=list)  # extra flags for the BPF compile
    clang: str = "clang-19"
    bpftool: str = "bpftool"
    sysroot: str = "/usr"
    verbose: bool = False
    log: Callable[[str], None] = lambda msg: print(msg, file=sys.stderr)


def app_name(bpf_source: Path) -> str:
    """X for X.bpf.c: the skeleton is X.skel.h, the object X.bpf.o."""
    name = bpf_source.name
    for suffix in (".bpf.c", ".c"):
        if name.endswith(suffix) and len(name) > len(suffix):
            return name[: -len(suffix)]
    return bpf_source.stem


def is_bpf_source(path: Path) -> bool:
    """Does this C file hold BPF programs (X.bpf.c, or any file using SEC())? The
    user-space half X.c does not; compiled for BPF it fails on glibc's headers
    (gnu/stubs-32.h), an error that does not say what went wrong."""
    if path.name.endswith(".bpf.c"):
        return True
    try:
        return "SEC(" in path.read_text(errors="replace")
    except OSError:
        return False


def cache_dir() -> Path:
    base = os.environ.get("WASM_BPF_CACHE") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "wasm-bpf")
    return Path(base)


def _run(step: str, argv: list[str], cfg: BuildConfig, stdout_to: Path | None = None,
         env: dict[str, str] | None = None) -> None:
    """Runs one step; env: variables added to the environment (shown in the command)."""
    shown = "".join(f"{k}={shlex.quote(v)} " for k, v in (env or {}).items())
    shown += shlex.join(argv) + (f" > {shlex.quote(str(stdout_to))}" if stdout_to else "")
    full_env = {**os.environ, **env} if env else None
    if cfg.verbose:
        cfg.log(f"+ {shown}")
    try:
        if stdout_to:
            with open(stdout_to, "wb") as out:
                proc = subprocess.run(argv, stdout=out, stderr=subprocess.PIPE, env=full_env)
            output = proc.stderr.decode(errors="replace")
        else:
            proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, env=full_env)
            output = proc.stdout.decode(errors="replace")
    except FileNotFoundError:
        raise BuildError(step, shown, f"{argv[0]}: command not found") from None
    if proc.returncode != 0:
        raise BuildError(step, shown, f"(exit status {proc.returncode})\n{output}")
    if output.strip() and cfg.verbose:
        cfg.log(output.rstrip())


def _find_tool(names: list[str]) -> str | None:
    return next((n for n in names if shutil.which(n)), None)


def vmlinux_header(cfg: BuildConfig) -> Path:
    """vmlinux.h of the running kernel, generated once per kernel BTF and cached
    (keyed by the BTF's hash, so a new kernel gets a new header)."""
    step = "generate vmlinux.h"
    try:
        digest = hashlib.sha256(KERNEL_BTF.read_bytes()).hexdigest()[:16]
    except OSError as e:
        raise BuildError(step, f"read {KERNEL_BTF}", f"{e.strerror} (the kernel needs CONFIG_DEBUG_INFO_BTF)") from None
    target = cache_dir() / f"vmlinux-{digest}" / "vmlinux.h"
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".vmlinux.h.{os.getpid()}")
    try:
        _run(step, [cfg.bpftool, "btf", "dump", "file", str(KERNEL_BTF), "format", "c"], cfg, tmp)
        tmp.replace(target)  # atomic: concurrent builds never see half a header
    finally:
        tmp.unlink(missing_ok=True)
    return target


def _generate(step: str, command: str, cfg: BuildConfig, produce: Callable[[], str], dest: Path) -> None:
    if cfg.verbose:
        cfg.log(f"+ {command}")
    try:
        dest.write_text(produce())
    except (BtfError, ObjectError, skeleton.SkeletonError) as e:
        raise BuildError(step, command, str(e)) from None


@dataclass
class SharedTypes:
    """The types the two halves share: X.h's if X.bpf.c includes one (compiled into a
    side object so that BTF has them all), else the BPF object's own types."""
    obj: Path  # whose BTF has them
    types: list[str] | None  # None: the object's own types
    preamble: list[str]  # X.h's macros and anonymous enums, for X.wasm.h
    bpf_only: list[str]  # types X.bpf.c itself defines that BTF does not have


def _shared_types(cfg: BuildConfig, name: str, compiler: list[str], bpf_flags: list[str],
                  obj: Path, work: Path) -> SharedTypes:
    own_h = cfg.bpf_source.resolve().parent / f"{name}.h"
    pre = work / f"{name}.types.i"
    _run("collect the shared types", [*bpf_flags, "-E", "-dD", str(cfg.bpf_source), "-o", str(pre)], cfg)
    text = pre.read_text()
    code = hdrscan.without_macros(text)
    in_bpf_c = hdrscan.defined_types(hdrscan.without_macros(hdrscan.header_text(text, cfg.bpf_source)))
    with Btf.from_file(str(obj)) as btf:
        bpf_only = [t for t in in_bpf_c if not _in_btf(btf, t)]
    own_text = hdrscan.header_text(text, own_h) if own_h.is_file() else ""
    types = hdrscan.defined_types(hdrscan.without_macros(own_text))
    if not types:
        return SharedTypes(obj, None, [], bpf_only)
    pre.write_text(code + hdrscan.type_refs(types))
    types_obj = work / f"{name}.types.o"
    # Already preprocessed: only the compiler (not the -I/-D) flags apply.
    _run("compile the types of " + own_h.name, [*compiler, "-c", str(pre), "-o", str(types_obj)], cfg)
    return SharedTypes(types_obj, types, hdrscan.guest_preamble(own_text, own_h), bpf_only)


def _in_btf(btf: Btf, spec: str) -> bool:
    try:
        header.find_type(btf, spec)
        return True
    except BtfError:
        return False


_ASSERT_FAILED = re.compile(r"static assertion failed due to requirement '.*': (.*): wasm32 (\w+) differs from BPF$")
_EVALUATES = re.compile(r"note: expression evaluates to '(\d+) == (\d+)'")


def _check_layouts(cfg: BuildConfig, checks: dict[str, list[str]], wasm_flags: list[str], work: Path) -> None:
    """Compiles each user-space source again with a _Static_assert on the BPF layout of
    every shared type it defines, so X.c including an X.h whose wasm32 layout differs
    (a long, a pointer) fails the build naming the struct and member, instead of
    reading garbage at run time."""
    for src in cfg.sources if checks else ():
        pre = work / f"{src.stem}.layout.i"
        _run("preprocess " + src.name, [*wasm_flags, "-E", str(src), "-o", str(pre)], cfg)
        text = pre.read_text()
        mine = [t for t in hdrscan.defined_types(text) if t in checks]
        if not mine:
            continue
        asserts = [line for t in mine for line in checks[t]]
        pre.write_text(f'{text}\n# 1 "BPF layout of the shared types"\n' + "\n".join(asserts) + "\n")
        argv = [cfg.clang, "--target=wasm32-wasi", f"--sysroot={cfg.sysroot}", "-fsyntax-only", str(pre)]
        if cfg.verbose:
            cfg.log("+ " + shlex.join(argv))
        proc = subprocess.run(argv, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        lines = proc.stdout.decode(errors="replace").splitlines()
        wrong = []
        for i, line in enumerate(lines):
            m = _ASSERT_FAILED.search(line)
            if m:
                v = next((_EVALUATES.search(n) for n in lines[i + 1:] if _EVALUATES.search(n)), None)
                wrong.append(f"{m[1]}: {m[2]} {v[1]} in wasm32, {v[2]} in the BPF object" if v
                             else f"{m[1]}: the {m[2]} differs")
        if wrong:  # any other error is the compile's to report
            raise BuildError(f"check the shared types in {src.name}", shlex.join(argv), "\n".join(wrong) + (
                f"\n{src.name} does not see these types as the BPF program does (long and pointers are 4 bytes on "
                "wasm32, 8 on BPF): use fixed-width types (int64_t, uint64_t) in the shared header, or "
                f"include the generated {app_name(cfg.bpf_source)}.wasm.h instead"))


def build(cfg: BuildConfig, steps: Callable[[BuildConfig, Path], Path] | None = None) -> Path:
    """Run every step (steps: the C guest's, or rust_build.build_in); returns the output path."""
    steps = steps or _build_in
    for src in [cfg.bpf_source, *cfg.sources]:
        if not src.exists():
            raise BuildError("check sources", str(src), "no such file")
    if not is_bpf_source(cfg.bpf_source):
        bpf = next((s for s in cfg.sources if is_bpf_source(s)), None)
        order = f"{bpf} {cfg.bpf_source}" if bpf else f"X.bpf.c {cfg.bpf_source}"
        raise BuildError("check sources", str(cfg.bpf_source),
                         f"{cfg.bpf_source} has no BPF program (no SEC(...)): the BPF source comes first, "
                         f"e.g. wasm-bpf build {order}")
    if cfg.build_dir is not None:
        cfg.build_dir.mkdir(parents=True, exist_ok=True)
        return steps(cfg, cfg.build_dir)
    with tempfile.TemporaryDirectory(prefix="wasm-bpf-build-") as tmp:
        return steps(cfg, Path(tmp))


@dataclass
class BpfBuild:
    """The BPF half of a build: the object and the compiler flags that made it."""
    name: str
    obj: Path
    compiler: list[str]
    flags: list[str]


def compile_bpf(cfg: BuildConfig, work: Path) -> BpfBuild:
    """vmlinux.h, then X.bpf.o (CO-RE), stripped of DWARF."""
    name = app_name(cfg.bpf_source)
    src_dir = cfg.bpf_source.resolve().parent
    vmlinux = vmlinux_header(cfg)

    obj = work / f"{name}.bpf.o"
    arch = _TARGET_ARCH.get(platform.machine(), platform.machine())
    compiler = [cfg.clang, "-g", "-O2", "-target", "bpf"]
    bpf_flags = [*compiler, f"-D__TARGET_ARCH_{arch}", f"-I{vmlinux.parent}", f"-I{src_dir}",
                 f"-I/usr/include/{platform.machine()}-linux-gnu", *cfg.bpf_cflags]
    _run("compile BPF object", [*bpf_flags, "-c", str(cfg.bpf_source), "-o", str(obj)], cfg)

    # DWARF is only for debuggers and is 10-100x the size of the rest; the skeleton
    # embeds the object, so drop it (BTF stays). Without llvm-strip, keep it.
    strip = _find_tool(["llvm-strip-19", "llvm-strip"])
    if strip:
        _run("strip debug info", [strip, "-g", str(obj)], cfg)
    elif cfg.verbose:
        cfg.log("wasm-bpf build: note: llvm-strip not found, the skeleton embeds DWARF too")
    return BpfBuild(name, obj, compiler, bpf_flags)


def _build_in(cfg: BuildConfig, work: Path) -> Path:
    bpf = compile_bpf(cfg, work)
    name, obj, compiler, bpf_flags = bpf.name, bpf.obj, bpf.compiler, bpf.flags
    src_dir = cfg.bpf_source.resolve().parent

    skel = work / f"{name}.skel.h"
    _generate("generate skeleton", f"wasm-bpf gen skeleton {obj} -o {skel}", cfg,
              lambda: skeleton.generate(obj), skel)
    # X.wasm.h, wasm32 layouts of X.h's types (else of the object's own types), with
    # the BPF layout whatever the C spelling. Optional: a guest that does not include
    # it must not fail because of it.
    types_h = work / f"{name}.wasm.h"
    checks: dict[str, list[str]] = {}
    try:
        shared = _shared_types(cfg, name, compiler, bpf_flags, obj, work)
        if cfg.verbose:
            cfg.log(f"+ wasm-bpf gen header {shlex.join([str(shared.obj), *(shared.types or [])])} -o {types_h}")
        types_h.write_text(header.generate(shared.obj, shared.types, name=name, preamble=shared.preamble))
        checks = header.layout_checks(shared.obj, shared.types)
    except (BtfError, ObjectError, BuildError) as e:
        cfg.log(f"wasm-bpf build: note: {types_h.name} not generated: {e}")
    else:
        if not checks and shared.bpf_only:
            cfg.log(f"wasm-bpf build: note: {types_h.name} has no types: {', '.join(shared.bpf_only)} "
                    f"(defined in {cfg.bpf_source.name}) is not in the object's BTF, as the program only "
                    f"reaches it through a pointer; define it in {name}.h, which both halves include")

    wasm_flags = [cfg.clang, "--target=wasm32-wasi", f"--sysroot={cfg.sysroot}", "-O2",
                  f"-I{SDK_INCLUDE}", f"-I{src_dir}", f"-I{work}", *cfg.cflags]
    _check_layouts(cfg, checks, wasm_flags, work)
    cfg.output.parent.mkdir(parents=True, exist_ok=True)
    # No --allow-undefined: the SDK declares each host import with its import module,
    # so any other undefined symbol (a forgotten source file) is a link error.
    _run("compile wasm module", [*wasm_flags, *[str(s) for s in cfg.sources],
                                 "-Wl,--export-table", "-o", str(cfg.output)], cfg)
    return cfg.output
