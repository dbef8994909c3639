"""The wasm-bpf guest SDK: the C headers (include/) and the generators and build
command behind `wasm-bpf gen` and `wasm-bpf build` (see README.md)."""
