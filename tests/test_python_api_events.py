"""Events' batch path (events._Rows): a chunk of equal-sized records is decoded by one
iter_unpack and one generated comprehension, into the same rows as the decoder's
row() (the `wasm-bpf run --json` rows), and much faster than record by record."""
import struct
import time

import pytest

from wasm_bpf.events import _Rows
from wasm_bpf.kernel_only.decode import RecordDecoder

pytestmark = pytest.mark.unit

U64 = {"kind": "int", "size": 8, "signed": False, "name": "u64"}
U32 = {"kind": "int", "size": 4, "signed": False, "name": "u32"}
S32 = {"kind": "int", "size": 4, "signed": True, "name": "int"}
CHAR = {"kind": "int", "size": 1, "signed": True, "char": True, "name": "char"}
EVENT = {"kind": "struct", "name": "struct event", "size": 88, "members": [
    {"name": "seq", "type": U64, "bit_offset": 0, "bit_size": 0},
    {"name": "pid", "type": U32, "bit_offset": 64, "bit_size": 0},
    {"name": "err", "type": S32, "bit_offset": 96, "bit_size": 0},
    {"name": "payload", "type": {"kind": "array", "elem": U64, "count": 5, "size": 40}, "bit_offset": 128, "bit_size": 0},
    {"name": "comm", "type": {"kind": "array", "elem": CHAR, "count": 16, "size": 16}, "bit_offset": 448, "bit_size": 0},
    {"name": "daddr", "type": U32, "bit_offset": 576, "bit_size": 0},
    {"name": "ret", "type": S32, "bit_offset": 608, "bit_size": 0},
    {"name": "sport", "type": U64, "bit_offset": 640, "bit_size": 0},
]}
LAYOUT = struct.Struct("<QIi5Q16sIiQ")


def record(i: int) -> bytes:
    return LAYOUT.pack(i, 100 + i, -(i % 5), *range(i, i + 5), f"task-{i}".encode(), 0x0100007F, -2 * (i % 3), 443)


def framed(records) -> bytes:
    """The shim's framing of take_chunks(): [u32 size][record][padding to 8]."""
    return b"".join(len(r).to_bytes(4, "little") + r + bytes(-len(r) % 8) for r in records)


@pytest.mark.parametrize("raw", [False, True])
def test_a_batch_gives_the_json_rows(raw):
    dec = RecordDecoder(EVENT, raw=raw)
    records = [record(i) for i in range(50)]
    rows = _Rows(dec)(framed(records))
    assert rows == [dec.row(r) for r in records]
    named = {"err": -2, "daddr": 0x0100007F, "ret": -4} if raw else {"err": "-ENOENT", "daddr": "127.0.0.1", "ret": "-EINTR"}
    assert rows[2] == {"seq": 2, "pid": 102, "payload": [2, 3, 4, 5, 6], "comm": "task-2", "sport": 443, **named}


def test_records_of_several_sizes_decode_record_by_record():
    dec = RecordDecoder(EVENT)
    records = [record(1), record(2) + bytes(8), record(3)[:40]]  # a longer one, and a short one (zero-filled)
    assert _Rows(dec)(framed(records)) == [dec.row(r) for r in records]


def test_a_batch_is_several_times_faster_than_record_by_record():
    dec = RecordDecoder(EVENT)
    records = [record(i) for i in range(20000)]
    chunk, rows = framed(records), _Rows(dec)

    def best(fn) -> float:
        times = []
        for _ in range(3):
            start = time.perf_counter()
            fn()
            times.append(time.perf_counter() - start)
        return min(times)

    assert best(lambda: [dec.row(r) for r in records]) > 3 * best(lambda: rows(chunk))
