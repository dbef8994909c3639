"""wasm-bpf: run eBPF programs whose user-space half is a WebAssembly module."""
__version__ = "0.1.0"
