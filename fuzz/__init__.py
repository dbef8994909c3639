"""Fuzzing the host (docs/fuzzing.md): `python3 -m fuzz` or `make fuzz`.

Three targets: `imports` (every import, called from a guest with chosen integers),
`elf` (the loader with mutated BPF objects, in a worker process), `wasm` (mutated
guest modules run through wasm_bpf.Instance, in a worker process)."""
