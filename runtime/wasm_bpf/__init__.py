"""wasm-bpf: run eBPF programs whose user-space half is a WebAssembly module.

    import wasm_bpf
    result = wasm_bpf.run("bootstrap.wasm", ["-d", "50"], capture_output=True)

See Instance for a run that another thread can stop, and host_abi/ABI.md for the
imports a guest gets."""
__version__ = "0.1.0"

from .errors import WasmBpfError
from .instance import Instance, RunConfig, RunResult, run

__all__ = ["Instance", "RunConfig", "RunResult", "WasmBpfError", "run", "__version__"]
