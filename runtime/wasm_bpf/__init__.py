"""wasm-bpf: run eBPF programs whose user-space half is a WebAssembly module.

    import wasm_bpf
    result = wasm_bpf.run("bootstrap.wasm", ["-d", "50"], capture_output=True)

See Instance for a run that another thread can stop, and host_abi/ABI.md for the
imports a guest gets."""
from typing import TYPE_CHECKING, Any

from .errors import WasmBpfError

__version__ = "0.1.0"
__all__ = ["Instance", "Policy", "RunConfig", "RunResult", "WasmBpfError", "run", "__version__"]

if TYPE_CHECKING:
    from .instance import Instance, RunConfig, RunResult, run
    from .policy import Policy


def __getattr__(name: str) -> Any:
    # The runtime (wasmtime, the libbpf shim) loads on first use, so that
    # `wasm-bpf --version` and the SDK commands start without it.
    if name in ("Instance", "RunConfig", "RunResult", "run"):
        from . import instance

        return getattr(instance, name)
    if name == "Policy":
        from .policy import Policy

        return Policy
    raise AttributeError(f"module 'wasm_bpf' has no attribute {name!r}")
