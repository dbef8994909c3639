"""wasm-bpf: run eBPF programs whose user-space half is a WebAssembly module.

    import wasm_bpf
    result = wasm_bpf.run("bootstrap.wasm", ["-d", "50"], capture_output=True)

    with wasm_bpf.load("runqlat.bpf.c") as obj:     # kernel objects, no Wasm
        print(obj.maps["hists"].items())

See Instance for a run that another thread can stop, docs/python-api.md for the
Python API, and host_abi/ABI.md for the imports a guest gets."""
from typing import TYPE_CHECKING, Any, List

from .errors import WasmBpfError

__version__ = "0.1.0"
__all__ = ["Events", "Histogram", "HostFunction", "Instance", "LoadError", "LoadedObject", "Map", "MapError",
           "Module", "Policy", "Program", "RunConfig", "RunResult", "Variables", "WasmBpfError", "host_function",
           "load", "run", "__version__"]

# name -> the module that defines it, imported on first use
_LAZY = {"Instance": "instance", "RunConfig": "instance", "RunResult": "instance", "run": "instance",
         "Policy": "policy", "load": "objects", "LoadedObject": "objects", "LoadError": "objects",
         "Program": "objects", "Variables": "objects", "Map": "mapview", "MapError": "mapview",
         "Histogram": "mapview", "Events": "events", "Module": "module", "HostFunction": "hostfuncs",
         "host_function": "hostfuncs"}

if TYPE_CHECKING:
    from .events import Events
    from .hostfuncs import HostFunction, host_function
    from .module import Module
    from .mapview import Histogram, Map, MapError
    from .objects import LoadedObject, LoadError, Program, Variables, load
    from .instance import Instance, RunConfig, RunResult, run
    from .policy import Policy


def __getattr__(name: str) -> Any:
    # The runtime (wasmtime, the libbpf shim) loads on first use, so that
    # `wasm-bpf --version` and the SDK commands start without it.
    module = _LAZY.get(name)
    if module is not None:
        import importlib

        return getattr(importlib.import_module(f".{module}", __name__), name)
    raise AttributeError(f"module 'wasm_bpf' has no attribute {name!r}")


def __dir__() -> List[str]:
    return sorted(__all__)  # the API, not the module's imports
