"""`python3 -m wasm_bpf ...` is the `wasm-bpf` command."""
from .cli import main

main(prog_name="wasm-bpf")
