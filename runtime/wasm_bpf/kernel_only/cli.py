"""`wasm-bpf package`: a kernel-only program as one JSON file (package.py)."""
import sys
from typing import Optional

import click


@click.command(short_help="Write a kernel-only program as one JSON package.")
@click.argument("program", type=click.Path(dir_okay=False))
@click.option("-o", "--output", metavar="FILE", help="Where to write the package (default: NAME.json).")
@click.option("--event-type", default="", metavar="NAME", help="Record type of the event buffers.")
@click.option("-v", "--verbose", is_flag=True, help="Show the build command.")
def package(program: str, output: Optional[str], event_type: str, verbose: bool) -> None:
    """Write PROGRAM (.bpf.o or .bpf.c) as one self-contained JSON package (the
    object, compressed, plus programs, maps, record types and flags) that
    `wasm-bpf run` accepts anywhere."""
    from .runner import package_command
    sys.exit(package_command(program, output, event_type, verbose))
