"""Kernel-only runs, the parts that need no kernel: decoding recorded record bytes
through the fixture's BTF/DWARF, the output formats, flags from .rodata, packages,
and the one-line errors."""
import io
import json
import shutil
import struct
import subprocess

import pytest

from ko_helpers import EXAMPLES, FIXTURES, compile_bpf
from wasm_bpf.kernel_only import decode as D
from wasm_bpf.kernel_only import flags as F
from wasm_bpf.kernel_only import output as O
from wasm_bpf.kernel_only import package as P
from wasm_bpf.kernel_only import spec as S
from wasm_bpf.kernel_only.mapprint import format_hist, hist_member
from wasm_bpf.kernel_only.runner import run

pytestmark = pytest.mark.unit  # kernel-free (make test-unit)


@pytest.fixture(scope="module")
def kinds_obj(tmp_path_factory):
    return compile_bpf(FIXTURES / "kinds.bpf.c", tmp_path_factory.mktemp("ko") / "kinds.bpf.o")


@pytest.fixture(scope="module")
def kinds(kinds_obj):
    return S.inspect(kinds_obj.read_bytes(), str(kinds_obj))


def recorded_record() -> bytes:
    """A struct record as the kernel lays it out (offsets from the C ABI, by hand)."""
    b = bytearray(96)
    struct.pack_into("<i", b, 0, 4242)                      # pid
    struct.pack_into("<Q", b, 8, 123456789012)              # ts
    struct.pack_into("<I", b, 16, 7)                        # mode = MODE_AUTO
    b[20:26] = b"hello\0"                                   # comm[16]
    struct.pack_into("<3H", b, 36, 1, 2, 65535)             # counts
    struct.pack_into("<Hb", b, 42, 513, -5)                 # in.a, in.b
    b[48:52] = bytes([1, 2, 3, 4])                          # u
    # flag_a:1 = 1, level:3 = 5, neg:4 = 9, then sbits:5 = -3 in the same 32-bit unit
    struct.pack_into("<I", b, 52, 1 | (5 << 1) | (9 << 4) | ((-3 & 0x1F) << 8))
    b[54] = 1                                               # ok (after the bitfields' 2 bytes)
    struct.pack_into("<iiI", b, 56, 2, 10, 0x0100007F)      # err, sig, saddr (127.0.0.1)
    b[68:84] = bytes(15) + b"\x01"                          # daddr_v6 = ::1
    struct.pack_into("<H", b, 84, 8080)                     # dport
    struct.pack_into("<q", b, 88, -1)                       # ret
    return bytes(b)


def test_record_type_found_from_source(kinds):
    rec = kinds.map("events").record
    assert rec["name"] == "struct record" and rec["size"] == 96
    # the record type from DWARF (via the reserve call) equals the BTF one (map value)
    assert rec == kinds.map("last").value


def test_decode_every_kind(kinds):
    row = D.RecordDecoder(kinds.map("events").record).row(recorded_record())
    assert row == {
        "pid": 4242, "ts": 123456789012, "mode": "MODE_AUTO", "comm": "hello",
        "counts": [1, 2, 65535], "in.a": 513, "in.b": -5,
        "u": {"word": 0x04030201},  # a union without a discriminator: its first largest member
        "flag_a": 1, "level": 5, "neg": 9, "sbits": -3, "ok": True,
        "err": "ENOENT", "sig": "SIGUSR1", "saddr": "127.0.0.1", "daddr_v6": "::1",
        "dport": 8080, "ret": "-EPERM",
    }


def test_decode_raw_and_edge_values(kinds):
    rec = kinds.map("events").record
    data = bytearray(recorded_record())
    struct.pack_into("<I", data, 16, 3)       # no enum constant has 3
    data[20:36] = b"x" * 16                   # no NUL: all 16 bytes
    data[54] = 0
    struct.pack_into("<i", data, 60, 0)       # signal 0 stays 0
    row = D.RecordDecoder(rec, raw=True).row(bytes(data))
    assert row["mode"] == 3 and row["comm"] == "x" * 16 and row["ok"] is False
    assert row["err"] == 2 and row["sig"] == 0 and row["saddr"] == 0x0100007F and row["ret"] == -1
    assert D.RecordDecoder(rec).row(bytes(data))["sig"] == 0


def test_short_record_is_padded(kinds):
    row = D.RecordDecoder(kinds.map("events").record).row(recorded_record()[:8])
    assert row["pid"] == 4242 and row["ts"] == 0


def test_output_formats(kinds):
    import datetime
    dec = D.RecordDecoder(kinds.map("events").record)
    when = datetime.datetime(2026, 1, 2, 3, 4, 5, 600000)
    row = dec.row(recorded_record())
    out = io.StringIO()
    w = O.writer("table", out, dec.columns)
    w.emit(when, row)
    head, line = out.getvalue().splitlines()
    assert head.split()[:4] == ["TIME", "PID", "TS", "MODE"]
    assert line.split()[:4] == ["03:04:05", "4242", "123456789012", "MODE_AUTO"]
    # columns are aligned: each value starts where its header does
    assert line.index("MODE_AUTO") == head.index("MODE") and line.index("127.0.0.1") == head.index("SADDR")
    out = io.StringIO()
    O.writer("json", out, dec.columns).emit(when, row)
    obj = json.loads(out.getvalue())
    assert obj["time"] == "2026-01-02T03:04:05.600000" and obj["sig"] == "SIGUSR1" and obj["counts"] == [1, 2, 65535]
    out = io.StringIO()
    O.writer("csv", out, dec.columns).emit(when, row)
    import csv
    rows = list(csv.reader(io.StringIO(out.getvalue())))
    assert rows[0][:3] == ["time", "pid", "ts"] and rows[1][1] == "4242" and rows[1][rows[0].index("comm")] == "hello"


def test_flags_from_rodata(kinds, kinds_obj):
    flags = {f.option: f for f in F.flags_of(kinds.globals)}
    assert set(flags) == {"--min-duration-ns", "--targ-pid", "--verbose-mode", "--failed-only",
                          "--targ-mode", "--targ-comm", "--small"}
    assert flags["--min-duration-ns"].default == 1000000 and flags["--targ-mode"].default == "MODE_AUTO"
    assert F.encode(flags["--targ-pid"], "-42") == struct.pack("<i", -42)
    assert F.encode(flags["--targ-mode"], "MODE_ON") == struct.pack("<I", 1)
    assert F.encode(flags["--small"], "0xff") == b"\xff"
    with pytest.raises(S.SpecError, match="out of range"):
        F.encode(flags["--small"], "256")
    with pytest.raises(S.SpecError, match="not a number or one of MODE_OFF"):
        F.encode(flags["--targ-mode"], "SOMETIMES")
    with pytest.raises(S.SpecError, match="too long"):
        F.encode(flags["--targ-comm"], "x" * 16)
    # new values land in .rodata: the patched object reads them back as defaults
    patched = F.patch_rodata(kinds.elf, kinds.globals, {"targ_pid": F.encode(flags["--targ-pid"], "42"),
                                                       "targ_comm": F.encode(flags["--targ-comm"], "bash")})
    again = {f.var.name: f.default for f in F.flags_of(S.inspect(patched, "patched.bpf.o").globals)}
    assert again["targ_pid"] == 42 and again["targ_comm"] == "bash" and again["min_duration_ns"] == 1000000


def test_help_shows_flags(kinds_obj, capsys):
    with pytest.raises(SystemExit) as exc:
        run(str(kinds_obj), ["--help"])
    assert exc.value.code == 0
    text = capsys.readouterr().out
    assert "--min-duration-ns N" in text and "default 1000000" in text
    assert "--no-verbose-mode" in text and "--failed-only" in text and "MODE_OFF|MODE_ON|MODE_AUTO" in text


def test_histogram_detection_and_format(kinds):
    assert hist_member(kinds.map("pid_hist").value) == ("slots", "log2")
    assert hist_member(kinds.map("last").value) == ("", "")
    lines = format_hist([0, 2, 4, 0, 1], "log2", "usecs")
    assert lines[0].split() == ["usecs", ":", "count", "distribution"]
    assert lines[2].split()[:5] == ["2", "->", "3", ":", "2"] and lines[3].count("*") == 40
    assert lines[-1].split()[:5] == ["16", "->", "31", ":", "1"] and len(lines) == 6
    assert [line.split()[0] for line in format_hist([0, 0, 3, 1], "linear")[1:]] == ["2", "3"]


def test_package_round_trip(kinds, tmp_path):
    path = tmp_path / "kinds.json"
    path.write_text(P.write(kinds))
    doc = json.loads(path.read_text())
    assert doc["meta"]["export_types"][0]["name"] == "record"
    assert {p["name"] for p in doc["meta"]["bpf_skel"]["progs"]} == {"on_getppid", "hist_getppid"}
    pkg = P.read(path.read_text(), str(path))
    # the object without its DWARF: the same programs, maps and flags
    assert doc["bpf_object_size"] == len(pkg.elf) < len(kinds.elf)
    assert pkg.records["events"] == kinds.map("events").record
    again = S.inspect(pkg.elf, "kinds.bpf.o")
    assert again.programs == kinds.programs and again.globals == kinds.globals
    assert [(m.name, m.key, m.value) for m in again.maps] == [(m.name, m.key, m.value) for m in kinds.maps]


def test_eunomia_package_flags_and_event_type(kinds, tmp_path, capsys):
    """An eunomia-bpf package.json (its public schema): object zlib+base64, export_types
    naming the record struct, rodata variables with a cmdarg and a value."""
    import base64
    import zlib
    doc = {"bpf_object": base64.b64encode(zlib.compress(kinds.elf)).decode(),
           "bpf_object_size": len(kinds.elf),
           "meta": {"eunomia_version": "0.3.4",
                    "bpf_skel": {"obj_name": "kinds_bpf",
                                 "data_sections": [{"name": ".rodata", "variables": [
                                     {"name": "targ_pid", "type": "int",
                                      "cmdarg": {"long": "pid", "help": "only this process", "default": 7}},
                                     {"name": "min_duration_ns", "type": "unsigned long long", "value": 5}]}],
                                 "maps": [{"name": "pid_hist", "ident": "pid_hist",
                                           "sample": {"interval": 1000, "type": "log2_hist"}}],
                                 "progs": [{"name": "on_getppid", "attach": "tp/syscalls/sys_enter_getppid", "link": True}]},
                    "export_types": [{"name": "record", "members": [], "size": 96, "type_id": 1}]}}
    path = tmp_path / "package.json"
    path.write_text(json.dumps(doc))
    with pytest.raises(SystemExit):
        run(str(path), ["--help"])
    text = capsys.readouterr().out
    assert "--pid N" in text and "only this process" in text and "default 7" in text and "default 5" in text
    assert "record struct record" in text


@pytest.mark.parametrize("content, args, message", [
    (b"hello, not an object", [], "is not an ELF file"),
    (None, ["--event-type", "struct nosuch"], "--event-type 'struct nosuch': no such type"),
    (None, ["--targ-pid", "abc"], "--targ-pid 'abc': not an integer"),
    (None, ["--attach", "nosuch=eth0"], "expected PROG=TARGET"),
    (b'{"meta": {}}', [], 'has no "bpf_object"'),
    (None, ["--no-such-option"], "unrecognized arguments: --no-such-option (the options and the program's flags"),
    (None, ["--small", "300"], "--small 300: out of range for __u8 (0..255)"),
], ids=["not-elf", "unknown-event-type", "bad-flag", "bad-attach", "bad-package", "unknown-option", "flag-range"])
def test_bad_inputs_one_line(kinds_obj, tmp_path, capsys, content, args, message):
    path = kinds_obj
    if content is not None:
        path = tmp_path / ("x.json" if content.startswith(b"{") else "x.bpf.o")
        path.write_bytes(content)
    assert run(str(path), args) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("wasm-bpf: error: ") and message in err


def test_stripped_object_record_type_from_header(tmp_path, capsys):
    """Without DWARF the reserve call cannot be typed: the run asks for a fix in one
    line; with sigsnoop.h next to the object (the documented convention) it is typed."""
    from ko_helpers import compile_example
    obj = compile_example("sigsnoop", tmp_path)
    strip = shutil.which("llvm-strip-19") or shutil.which("llvm-strip")
    if strip is None:
        pytest.skip("llvm-strip is not installed")
    subprocess.run([strip, "-g", str(obj)], check=True)
    assert S.inspect(obj.read_bytes(), str(obj)).map("events").record is None
    assert run(str(obj), ["--timeout", "0"]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and "cannot tell the record type of events" in err and "PROG.h" in err
    shutil.copy(EXAMPLES / "sigsnoop" / "sigsnoop.h", tmp_path / "sigsnoop.h")
    rec = S.inspect(obj.read_bytes(), str(obj), header=tmp_path / "sigsnoop.h").map("events").record
    assert rec["name"] == "struct event" and [m["name"] for m in rec["members"]] == ["pid", "tpid", "sig", "ret", "comm"]


def random_records(rng, size, n, lengths=(0,)):
    return [bytes(rng.getrandbits(8) for _ in range(size + rng.choice(lengths))) for _ in range(n)]


@pytest.mark.parametrize("raw", [False, True])
@pytest.mark.parametrize("lengths", [(0,), (4,), (-7, 0, 5)])  # ring records, padded perf samples, mixed
@pytest.mark.parametrize("whole", [True, False])
def test_batch_decoding_equals_row_decoding(kinds, raw, lengths, whole):
    """values()/rows() -- the compiled batch path the runner uses -- give what row()
    gives for every field kind (bitfields, unions, enums with unnamed values, errno,
    signal, addresses, strings with bytes that are not UTF-8, short records padded);
    without the bitfields and the union, the whole batch is unpacked at once."""
    import random
    rng = random.Random(14)
    rec_type = kinds.map("events").record
    if not whole:
        rec_type = dict(rec_type, members=[m for m in rec_type["members"]
                                           if not m["bit_size"] and m["type"]["kind"] != "union"])
        assert not D.RecordDecoder(rec_type).plan.needs_data
    records = [recorded_record()] + random_records(rng, rec_type["size"], 300, lengths)
    dec = D.RecordDecoder(rec_type, raw=raw)
    assert dec.rows(records) == [dec.row(r) for r in records]
    assert dec.rows(records[:1]) == [dec.row(records[0])]


@pytest.mark.parametrize("fmt", ["table", "json", "csv"])
def test_batch_writing_equals_row_writing(kinds, fmt):
    """emit_records (a line function compiled per record type) writes what emit writes."""
    import datetime
    import random
    rng = random.Random(15)
    rec_type = kinds.map("events").record
    records = [recorded_record()] + random_records(rng, rec_type["size"], 200)
    dec = D.RecordDecoder(rec_type)
    when = datetime.datetime(2026, 1, 2, 3, 4, 5, 678)
    one, many = io.StringIO(), io.StringIO()
    w1 = O.writer(fmt, one, dec.columns)
    for r in records:
        w1.emit(when, dec.row(r))
    O.writer(fmt, many, dec.columns).emit_records(when, dec.plan, records)
    assert many.getvalue() == one.getvalue()


@pytest.mark.parametrize("fmt, first_line", [
    ("json", '{"timestamp": "2026-01-02T03:04:05", "time": 7, "pid": 1}'),
    ("csv", "timestamp,time,pid"),
    ("table", "TIMESTAMP TIME                 PID"),
])
def test_a_field_named_time_keeps_its_value(fmt, first_line):
    """A record field named `time` is printed as the record has it; the receive time
    moves to `timestamp`."""
    import datetime
    rec = {"kind": "struct", "name": "struct ev", "size": 12, "members": [
        {"name": "time", "type": {"kind": "int", "size": 8, "signed": False, "name": "u64"}, "bit_offset": 0, "bit_size": 0},
        {"name": "pid", "type": {"kind": "int", "size": 4, "signed": True, "name": "int"}, "bit_offset": 64, "bit_size": 0}]}
    dec = D.RecordDecoder(rec)
    out = io.StringIO()
    O.writer(fmt, out, dec.columns).emit_records(datetime.datetime(2026, 1, 2, 3, 4, 5), dec.plan,
                                                 [struct.pack("<Qi", 7, 1)])
    assert out.getvalue().splitlines()[0] == first_line, out.getvalue()


@pytest.mark.parametrize("family, saddr, shown", [
    (2, bytes([10, 1, 2, 3]) + bytes(12), "10.1.2.3"),
    (10, bytes(15) + b"\x01", "::1"),
])
@pytest.mark.parametrize("batch", [False, True])
def test_address_printed_by_its_family_field(family, saddr, shown, batch):
    """A 16-byte address with an `af` field beside it: AF_INET prints its first 4 bytes
    as IPv4, AF_INET6 all 16 as IPv6 (tcp tools keep both in one 16-byte field)."""
    u8 = {"kind": "int", "size": 1, "signed": False, "name": "u8"}
    rec = {"kind": "struct", "name": "struct ev", "size": 20, "members": [
        {"name": "af", "type": {"kind": "int", "size": 2, "signed": False, "name": "u16"}, "bit_offset": 0, "bit_size": 0},
        {"name": "saddr", "type": {"kind": "array", "size": 16, "count": 16, "elem": u8, "name": "u8[16]"},
         "bit_offset": 32, "bit_size": 0}]}
    data = struct.pack("<HH", family, 0) + saddr
    dec = D.RecordDecoder(rec)
    row = dec.rows([data])[0] if batch else dec.row(data)
    assert row == {"af": family, "saddr": shown}


@pytest.mark.parametrize("args, expected", [
    (["--targ_pid", "42"], {"targ_pid": 42}),  # ecli's spelling: the variable's name
    (["--targ-pid", "42"], {"targ_pid": 42}),
    (["--enable-failed-only"], {"failed_only": True}),
    (["--disable-verbose-mode"], {"verbose_mode": False}),
    (["--verbose_mode"], {}),  # already the default
])
def test_ecli_flag_spellings(kinds, args, expected):
    """Flags are accepted as ecli spells them beside ours."""
    import argparse
    flags = F.flags_of(kinds.globals)
    parser = argparse.ArgumentParser()
    F.add_to_parser(parser, flags)
    values = F.values_from_args(flags, parser.parse_args(args))
    by_name = {f.var.name: f for f in flags}
    assert values == {name: F.encode(by_name[name], v) for name, v in expected.items()}


@pytest.mark.parametrize("with_size, shown", [(True, "ls -l /tmp"), (False, "ls -l /tmp")])
@pytest.mark.parametrize("batch", [False, True])
def test_nul_separated_args_print_whole(with_size, shown, batch):
    """A char array named args holds several NUL-separated strings (execsnoop): all of
    them print, up to args_size when the record has it, and a stale tail after the
    end (a reused per-CPU buffer) does not."""
    char = {"kind": "int", "size": 1, "signed": True, "char": True, "name": "char"}
    members = [{"name": "args", "type": {"kind": "array", "size": 32, "count": 32, "elem": char, "name": "char[32]"},
                "bit_offset": 32, "bit_size": 0}]
    if with_size:
        members.insert(0, {"name": "args_size", "type": {"kind": "int", "size": 4, "signed": True, "name": "int"},
                           "bit_offset": 0, "bit_size": 0})
    rec = {"kind": "struct", "name": "struct ev", "size": 36, "members": members}
    args = b"ls\0-l\0/tmp\0"
    stale = b"old-argument" if with_size else b"\0old-argument"
    data = struct.pack("<i", len(args)) + (args + stale).ljust(32, b"\0")
    dec = D.RecordDecoder(rec)
    row = dec.rows([data])[0] if batch else dec.row(data)
    assert row["args"] == shown
