"""Target "elf": the loader with mutated BPF ELF objects.

Real objects (the examples' and fuzz/fuzz.bpf.o) are mutated (bits, bytes, header
and section header fields, symbols, relocations, BTF, truncation, splices) and handed
to the guest import wasm_load_bpf_object in a worker process. Property: the load
returns 0 with a message, or a handle (which then closes with 0); the worker never
dies (libbpf parsing a malformed ELF must not crash the host) nor hangs."""
from pathlib import Path
from typing import Any, Dict, Optional, Tuple

from .common import Stats, bpf_objects
from .mutate import elf_mutation, elf_seed
from .subproc import fuzz_in_worker, normalize

TIMEOUT = 30.0  # seconds for one load: the verifier is slow on big programs, never this slow


def classify(reply: Dict[str, Any]) -> Tuple[Optional[str], str]:
    if "exception" in reply:
        return "python exception", reply["exception"]
    handle = reply.get("handle")
    if not isinstance(handle, int):
        return "bad result", f"the load returned {handle!r}"
    if handle == 0:
        if not reply.get("messages"):
            return "bad result", "the load failed without a message"
        return None, normalize(reply["messages"][-1])
    if reply.get("closed") != 0:
        return "bad result", f"closing handle {handle} returned {reply.get('closed')}"
    return None, "ok: loaded"


def seeds() -> list:
    return [elf_seed(p.name, p.read_bytes()) for p in bpf_objects()]


def fuzz(seconds: float, crash_dir: Path) -> Stats:
    stats = Stats("elf")
    return fuzz_in_worker(stats, "elf", elf_mutation(seeds()), seconds, crash_dir, ".bpf.o", TIMEOUT, classify)
