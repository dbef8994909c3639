"""Python values -> map key/value bytes (mapview.encode), checked against the kernel-only
decoder: what a map gives back is what was written (kernel-free)."""
import pytest

from wasm_bpf.kernel_only.decode import decode
from wasm_bpf.mapview import MapError, encode

pytestmark = pytest.mark.unit

U8 = {"kind": "int", "size": 1, "signed": False, "name": "u8"}
S32 = {"kind": "int", "size": 4, "signed": True, "name": "int"}
U32 = {"kind": "int", "size": 4, "signed": False, "name": "u32"}
CHAR = {"kind": "int", "size": 1, "signed": True, "char": True, "name": "char"}
MODE = {"kind": "enum", "size": 4, "signed": False, "values": [["OFF", 0], ["ON", 1]], "name": "enum mode"}
REC = {"kind": "struct", "size": 20, "name": "struct rec", "members": [
    {"name": "pid", "type": S32, "bit_offset": 0, "bit_size": 0},
    {"name": "mode", "type": MODE, "bit_offset": 32, "bit_size": 0},
    {"name": "low", "type": U32, "bit_offset": 64, "bit_size": 3},
    {"name": "high", "type": U32, "bit_offset": 67, "bit_size": 5},
    {"name": "", "type": {"kind": "union", "size": 4, "name": "union", "members": [
        {"name": "word", "type": U32, "bit_offset": 0, "bit_size": 0}]}, "bit_offset": 96, "bit_size": 0},
    {"name": "comm", "type": {"kind": "array", "size": 4, "count": 4, "elem": CHAR, "name": "char[4]"},
     "bit_offset": 128, "bit_size": 0},
]}


def test_a_struct_round_trips_through_the_decoder():
    value = {"pid": -7, "mode": "ON", "low": 5, "high": 17, "word": 0xDEADBEEF, "comm": "abc"}
    assert decode(REC, encode(REC, value, 20, "value")) == value


def test_missing_fields_are_zero_and_bytes_pass_through():
    assert decode(REC, encode(REC, {"pid": 1}, 20, "value"))["mode"] == "OFF"
    assert encode(U8, b"\x07", 1, "key") == b"\x07"


@pytest.mark.parametrize("t, value, message", [
    (U8, 256, r"key: 256 is out of range for u8 \(0..255\)"),
    (MODE, "AUTO", "key: 'AUTO' is not one of OFF, ON"),
    (REC, {"pid": 1, "tid": 2}, r"key: struct rec has no field 'tid' \(fields: comm, high, low, mode, pid, word\)"),
    (REC, {"high": 32}, r"key.high: 32 is out of range"),
    (REC, {"comm": "abcde"}, "key.comm: 'abcde' is longer than 4 bytes"),
    (U8, b"\x00\x01", "key: 2 bytes given, the type has 1"),
    (None, 1, "key: the map has no BTF type for it, give 1 bytes"),
])
def test_values_that_do_not_fit_are_one_line_errors(t, value, message):
    with pytest.raises(MapError, match=message):
        encode(t, value, 1 if t in (U8, None) else t["size"], "key")
