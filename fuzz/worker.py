"""The subprocess that runs fuzzed inputs, so that a crash of libbpf or wasmtime kills
this process, not the fuzzer: `python3 -m fuzz.worker elf|wasm REQ_FD REPLY_FD`.

Requests on REQ_FD: a 4-byte little-endian length and the input. One JSON line per
input on REPLY_FD. stdin is /dev/null (a fuzzed guest may read it) and stdout goes
to stderr, so nothing a guest or libbpf prints can corrupt the replies."""
import json
import os
import struct
import sys
import traceback
from typing import Any, BinaryIO, Dict

from .common import held_bpf_fds

WASM_TIMEOUT = 0.5  # seconds a mutated module runs before its stop is requested
WASM_GRACE = 0.3


def _read_exact(stream: BinaryIO, n: int) -> bytes:
    data = b""
    while len(data) < n:
        chunk = stream.read(n - len(data))
        if not chunk:
            raise EOFError
        data += chunk
    return data


class ElfRunner:
    """Hands each input to the guest import wasm_load_bpf_object of a fresh guest."""

    def __init__(self) -> None:
        import wasmtime

        from . import guest

        self.engine = wasmtime.Engine()
        self.module = wasmtime.Module(self.engine, guest.module_bytes(0))

    def run(self, elf: bytes) -> Dict[str, Any]:
        from .guest import export_name
        from .imports_target import DATA_AT, Session

        s = Session(self.engine, self.module)
        try:
            needed = DATA_AT + len(elf) + 1
            if needed > s.mem_size:
                s.call("grow", (needed - s.mem_size + 0xFFFF) // 0x10000)
            s.write(DATA_AT, elf)
            handle = s.call(export_name("wasm_bpf", "wasm_load_bpf_object"), DATA_AT, len(elf))
            closed = s.call(export_name("wasm_bpf", "wasm_close_bpf_object"), handle) if handle else None
            return {"handle": handle, "closed": closed, "messages": s.messages[-3:]}
        finally:
            s.close()


class WasmRunner:
    """Runs each input as a guest module, with a short timeout."""

    def run(self, module: bytes) -> Dict[str, Any]:
        import wasm_bpf
        from wasm_bpf.errors import HostCallUnwind

        config = wasm_bpf.RunConfig(timeout=WASM_TIMEOUT, grace_period=WASM_GRACE)
        try:
            with wasm_bpf.Instance(module, config=config, capture_output=True, report=lambda m: None) as inst:
                status = inst.run()
                return {"status": status, "messages": inst.messages[-3:]}
        except HostCallUnwind:  # out of the host: a finding, reported by main()
            raise
        except wasm_bpf.WasmBpfError as exc:
            return {"error": str(exc)}


def main() -> None:
    mode, req_fd, reply_fd = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    os.dup2(2, 1)  # prints go to stderr, never into the replies
    requests = os.fdopen(req_fd, "rb")
    replies = os.fdopen(reply_fd, "w")
    runner = ElfRunner() if mode == "elf" else WasmRunner()
    held_before = held_bpf_fds()
    while True:
        try:
            size, = struct.unpack("<I", _read_exact(requests, 4))
            data = _read_exact(requests, size)
        except EOFError:
            return
        try:
            reply = runner.run(data)
        except BaseException as exc:  # a Python exception out of the host: a finding
            reply = {"exception": "".join(traceback.format_exception(exc))[-3000:]}
        left = held_bpf_fds() - held_before
        if left:
            reply["leaked"] = sorted(left)
        replies.write(json.dumps(reply) + "\n")
        replies.flush()


if __name__ == "__main__":
    main()
