"""Kernel-only programs: run a .bpf.o, a .bpf.c or a JSON package with no user-space
code; events, histograms and flags are derived from BTF (docs/kernel-only.md).

  spec.py      what an object holds (programs, maps, .rodata globals, record types)
  types.py     type descriptions from BTF or DWARF
  decode.py    record bytes -> values; known-type formatting conventions
  output.py    table / JSON lines / CSV
  flags.py     .rodata globals as command-line flags
  annotations.py  ecc's /// annotations (@cmdarg, @sample, @tchook...), from a source or a package
  clang.py     compiling a .bpf.c: restricted includes, -I, --cflags, the kernel's -mcpu
  mapprint.py  histograms and map tables every interval
  package.py   the JSON package (eunomia-bpf compatible)
  runner.py    `wasm-bpf run` / `wasm-bpf package` for these inputs
"""

_KERNEL_ONLY_SUFFIXES = (".o", ".c", ".json")


def is_kernel_only_input(path: str) -> bool:
    """A BPF object, a BPF C source or a package (not a .wasm / .wat module)."""
    if path.endswith(_KERNEL_ONLY_SUFFIXES):
        return True
    try:
        with open(path, "rb") as f:
            head = f.read(4)
    except OSError:
        return False
    return head == b"\x7fELF" or head[:1] == b"{"
