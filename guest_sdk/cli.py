"""Click commands of the guest SDK: `wasm-bpf gen skeleton|header` and `wasm-bpf build`.

The wasm-bpf CLI registers `gen` and `build`; `python -m wasm_bpf_sdk.cli` runs
them without it."""
from __future__ import annotations

import shlex
import sys
from pathlib import Path

import click

from . import header as header_gen
from . import rust_build, rust_skeleton
from . import skeleton as skeleton_gen
from .btf import BtfError
from .build import BuildConfig, BuildError, app_name, build as run_build
from .elfobj import ObjectError


def _write(text: str, output: str | None) -> None:
    if output:
        Path(output).write_text(text)
    else:
        sys.stdout.write(text)


@click.group(short_help="Generate a skeleton or wasm32 type header from a BPF object.")
def gen() -> None:
    """Generate C headers (or a Rust module) for a wasm32 guest from a BPF object (compiled with -g)."""


@gen.command("skeleton")
@click.argument("bpf_object", type=click.Path(exists=True, dir_okay=False))
@click.option("--name", help="Skeleton name: struct NAME_bpf, NAME_bpf__open()... "
              "[default: the file name without .bpf.o]")
@click.option("--lang", type=click.Choice(["c", "rust"]), default="c", show_default=True,
              help="C header (X.skel.h) or Rust module (X.skel.rs).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to FILE instead of stdout.")
def skeleton(bpf_object: str, name: str | None, lang: str, output: str | None) -> None:
    """Write a libbpf-style skeleton (X.skel.h) for BPF_OBJECT.

    It embeds the object and declares struct X_bpf with its maps, progs and the
    wasm32 views rodata/data/bss/kconfig of the object's global variables, plus
    X_bpf__open/__load/__open_and_load/__attach/__detach/__destroy/__elf_bytes.
    Include it after (or instead of) libbpf-wasm.h from the SDK include directory.

    With --lang rust: module X_bpf for the wasm-bpf crate (guest_sdk/rust/wasm-bpf),
    with open() -> OpenSkel -> load() -> Skel, typed map handles and #[repr(C)]
    types of the object's own types, checked at compile time."""
    generator = rust_skeleton.generate if lang == "rust" else skeleton_gen.generate
    try:
        _write(generator(bpf_object, name), output)
    except (BtfError, ObjectError, skeleton_gen.SkeletonError) as e:
        raise click.ClickException(str(e)) from None


@gen.command("header")
@click.argument("bpf_object", type=click.Path(exists=True, dir_okay=False))
@click.argument("types", nargs=-1)
@click.option("--kernel-btf", default=header_gen.KERNEL_BTF, show_default=True,
              help="BTF of the kernel: its types are not emitted by default.")
@click.option("--all", "all_types", is_flag=True,
              help="Do not filter out kernel types (emit every named type of the object).")
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Write to FILE instead of stdout.")
def header(bpf_object: str, types: tuple[str, ...], kernel_btf: str, all_types: bool,
           output: str | None) -> None:
    """Write wasm32 definitions of BPF_OBJECT's types (e.g. its ring buffer events).

    TYPES are names such as 'event', 'struct event', 'union u', 'enum kind' or a
    typedef name. Default: every named struct, union and enum (and typedef of an
    anonymous struct/union) the object defines that the kernel's BTF does not.
    Layouts match the BPF side exactly: packed, explicit padding, pointers as
    uint64_t, long as int64_t, enums in structs as integers of their size, all
    checked by _Static_assert."""
    try:
        _write(header_gen.generate(bpf_object, list(types) or None,
                                   None if all_types else kernel_btf), output)
    except (BtfError, ObjectError) as e:
        raise click.ClickException(str(e)) from None


def _split(values: tuple[str, ...]) -> list[str]:
    return [arg for v in values for arg in shlex.split(v)]


@click.command(short_help="Build X.bpf.c + X.c into a wasm-bpf module (X.wasm).")
@click.argument("bpf_source", type=click.Path(dir_okay=False))
@click.argument("sources", nargs=-1, required=True, type=click.Path())
@click.option("-o", "--output", type=click.Path(dir_okay=False),
              help="The wasm module to write. [default: X.wasm next to X.bpf.c]")
@click.option("--build-dir", type=click.Path(file_okay=False),
              help="Keep the intermediates (X.bpf.o, X.skel.h, X.wasm.h) in this directory.")
@click.option("--cflags", multiple=True, metavar="FLAGS", help="Extra flags for the wasm32 compile.")
@click.option("--bpf-cflags", multiple=True, metavar="FLAGS", help="Extra flags for the BPF compile.")
@click.option("--clang", default="clang-19", show_default=True, help="The clang to use.")
@click.option("--sysroot", default="/usr", show_default=True, help="wasi-libc sysroot.")
@click.option("-v", "--verbose", is_flag=True, help="Print every command.")
def build(bpf_source: str, sources: tuple[str, ...], output: str | None, build_dir: str | None,
          cflags: tuple[str, ...], bpf_cflags: tuple[str, ...], clang: str, sysroot: str,
          verbose: bool) -> None:
    """Build a wasm-bpf guest: BPF_SOURCE (X.bpf.c) and the user-space SOURCES
    (X.c, ...; or one Rust main.rs, or a cargo project directory) into one wasm module.

    Generates vmlinux.h from the running kernel (cached in ~/.cache/wasm-bpf),
    compiles X.bpf.o with CO-RE, generates X.skel.h and X.wasm.h, and compiles
    the sources for wasm32-wasi with the SDK headers. The source directory and the
    build directory are on the include path of both compiles."""
    src = Path(bpf_source)
    out = Path(output) if output else src.with_name(f"{app_name(src)}.wasm")
    cfg = BuildConfig(src, [Path(s) for s in sources], out,
                      Path(build_dir) if build_dir else None, _split(cflags), _split(bpf_cflags),
                      clang=clang, sysroot=sysroot, verbose=verbose,
                      log=lambda msg: click.echo(msg, err=True))
    try:
        run_build(cfg, rust_build.build_in if rust_build.is_rust(cfg.sources) else None)
    except BuildError as e:
        click.echo(e.report(), err=True)
        sys.exit(1)
    if verbose:
        click.echo(f"wrote {out}", err=True)


@click.group()
def main() -> None:
    """The wasm-bpf guest SDK commands (also `wasm-bpf gen` and `wasm-bpf build`)."""


main.add_command(gen)
main.add_command(build)

if __name__ == "__main__":
    main()
