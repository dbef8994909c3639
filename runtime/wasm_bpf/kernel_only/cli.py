"""`wasm-bpf package`: a kernel-only program as one JSON file (package.py)."""
import sys
from typing import Optional, Tuple

import click


@click.command(short_help="Write a kernel-only program as one JSON package.")
@click.argument("program", type=click.Path(dir_okay=False))
@click.option("-o", "--output", metavar="FILE", help="Where to write the package (default: NAME.json).")
@click.option("--event-type", default="", metavar="NAME", help="Record type of the event buffers.")
@click.option("-I", "includes", multiple=True, metavar="DIR", help="A .bpf.c may include headers from DIR too.")
@click.option("--cflags", default="", metavar="FLAGS", help="More clang flags for a .bpf.c.")
@click.option("-v", "--verbose", is_flag=True, help="Show the build command.")
def package(program: str, output: Optional[str], event_type: str, includes: Tuple[str, ...], cflags: str,
            verbose: bool) -> None:
    """Write PROGRAM (.bpf.o or .bpf.c) as one self-contained JSON package (the
    object, compressed, plus programs, maps, record types, flags and the source's
    annotations) that `wasm-bpf run` accepts anywhere."""
    from .runner import Build, package_command
    sys.exit(package_command(program, output, event_type, verbose, build=Build(list(includes), cflags)))
