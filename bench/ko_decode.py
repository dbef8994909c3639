"""Kernel-only decode + print rate: records of a type through RecordDecoder and a
writer (JSON lines, table, CSV) into /dev/null, in batches as EventBuffer.take_records()
hands them over. Two record types: the benchmark's bench_event (8 integers, from the
BTF of bench/build/drain/bench.bpf.o) and a snoop-like event (pid, comm, path, errno,
an IPv4 address, an enum). `per_record` is the one-dict-per-row path (row + emit),
kept for the maps' tables and the Python API; `batch` is what `wasm-bpf run` uses."""
import datetime
import os
import random
import struct
import time
from pathlib import Path
from typing import Dict, List

from wasm_bpf.kernel_only import spec as S
from wasm_bpf.kernel_only.decode import RecordDecoder
from wasm_bpf.kernel_only.output import writer
from wasm_bpf.kernel_only.types import Type

BATCH = 4096  # records per take_records() call, about what a busy 1 MiB chunk holds

_INT = lambda size, signed=False, name="": {"kind": "int", "size": size, "signed": signed, "name": name}  # noqa: E731
_CHARS = lambda n: {"kind": "array", "size": n, "count": n, "name": f"char[{n}]",  # noqa: E731
                    "elem": dict(_INT(1, True, "char"), char=True)}


def _member(name: str, t: Type, offset: int) -> dict:
    return {"name": name, "type": t, "bit_offset": offset * 8, "bit_size": 0}


SNOOP: Type = {"kind": "struct", "name": "struct event", "size": 112, "members": [
    _member("ts", _INT(8), 0), _member("pid", _INT(4, True), 8), _member("uid", _INT(4), 12),
    _member("ret", _INT(4, True), 16), _member("err", _INT(4, True), 20), _member("saddr", _INT(4), 24),
    _member("mode", {"kind": "enum", "size": 4, "signed": False, "name": "enum mode",
                     "values": [["OPEN", 0], ["CREATE", 1], ["TRUNC", 2]]}, 28),
    _member("comm", _CHARS(16), 32), _member("fname", _CHARS(64), 48)]}


def snoop_records(n: int) -> List[bytes]:
    rng = random.Random(1)
    names = [f"/usr/lib/x86_64-linux-gnu/lib{i}.so.{i % 7}".encode() for i in range(50)]
    return [struct.pack("<QiIiiII16s64s", 10**9 + i, 1000 + i % 300, 0, -2 if i % 5 == 0 else 3, 2 * (i % 5 == 0),
                        0x0100007F, i % 3, b"python3", rng.choice(names)) for i in range(n)]


def bench_records(n: int) -> List[bytes]:
    return [struct.pack("<QII5Q", i, 4242, i % 2, i, i * 3, 7, 8, 9) for i in range(n)]


def bench_type(obj: Path) -> Type:
    spec = S.inspect(obj.read_bytes(), str(obj), "struct bench_event")
    record = spec.buffers()[0].record
    assert record is not None
    return record


def rate(t: Type, records: List[bytes], fmt: str, batch: bool, seconds: float = 1.0) -> float:
    """Records per second, decoded and written: the best pass over the records within
    `seconds` (the machine is shared: the best pass is the least disturbed one)."""
    with open(os.devnull, "w") as out:
        dec = RecordDecoder(t)
        w = writer(fmt, out, dec.columns, True)
        best, start = float("inf"), time.perf_counter()
        while time.perf_counter() - start < seconds:
            begin = time.perf_counter()
            for i in range(0, len(records), BATCH):
                chunk = records[i:i + BATCH]
                when = datetime.datetime.now()
                if batch:
                    w.emit_records(when, dec.plan, chunk)
                else:
                    for r in chunk:
                        w.emit(when, dec.row(r))
            best = min(best, time.perf_counter() - begin)
        return len(records) / best


def measure(obj: Path, seconds: float = 1.0) -> Dict[str, Dict[str, float]]:
    """{"bench_event/json": {"per_record": r, "batch": r}, ...}"""
    out = {}
    for name, t, records in (("bench_event", bench_type(obj), bench_records(20000)),
                             ("snoop_event", SNOOP, snoop_records(20000))):
        for fmt in ("json", "table", "csv"):
            out[f"{name}/{fmt}"] = {"per_record": rate(t, records[:2000], fmt, False, seconds / 2),
                                    "batch": rate(t, records, fmt, True, seconds)}
    return out


if __name__ == "__main__":
    import sys
    here = Path(__file__).resolve().parent
    for figure, r in measure(Path(sys.argv[1]) if len(sys.argv) > 1 else here / "build/drain/bench.bpf.o").items():
        print(f"{figure:20} per-record {r['per_record'] / 1e3:7.0f} k/s   batch {r['batch'] / 1e3:7.0f} k/s")
