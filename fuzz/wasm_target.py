"""Target "wasm": mutated guest modules, run through wasm_bpf.Instance.

The examples' .wasm files are mutated (mostly their data sections, which hold their
strings and their embedded BPF objects, so many mutants still validate and run; also
code, section ids and sizes, truncation, splices) and run in a worker process with a
0.5 s timeout. Property: a WasmBpfError with a message, or an exit status (the
guest's own, 1 after a trap, 124 after the timeout); never a crash of the worker,
never a run that outlasts the timeout, nothing left attached."""
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from .common import Stats, wasm_modules
from .mutate import wasm_mutation, wasm_seed
from .subproc import fuzz_in_worker, normalize
from .worker import WASM_GRACE, WASM_TIMEOUT

# A run is requested to stop after WASM_TIMEOUT and interrupted WASM_GRACE later;
# closing what it loaded takes a moment more. Beyond this it hangs.
TIMEOUT = WASM_TIMEOUT + WASM_GRACE + 9.0


def classify(reply: Dict[str, Any]) -> Tuple[Optional[str], str]:
    if "exception" in reply:
        return "python exception", reply["exception"]
    if "error" in reply:
        return (None, "WasmBpfError: " + normalize(reply["error"])) if reply["error"] else \
            ("bad result", "a WasmBpfError without a message")
    status = reply.get("status")
    if not isinstance(status, int) or not 0 <= status <= 255:
        return "bad result", f"exit status {status!r}"
    if status == 1 and reply.get("messages"):
        return None, "exit 1: " + normalize(reply["messages"][-1])
    return None, f"ok: exit {status}"


def fuzz(seconds: float, crash_dir: Path) -> Stats:
    stats = Stats("wasm")
    seeds = [wasm_seed(p.name, p.read_bytes()) for p in wasm_modules()]
    return fuzz_in_worker(stats, "wasm", wasm_mutation(seeds), seconds, crash_dir, ".wasm", TIMEOUT, classify)
