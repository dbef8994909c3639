"""What the kernel-only runner prints beyond plain fields (issue 14; docs/kernel-only.md):
a union's member chosen by its discriminator (or the documented fallback), kernel and
user stacks as function names, syscall numbers as names. The program is
tests/kernel_only_fixtures/printing.bpf.c; the user stack is taken in a uprobe on
printing_target.c, built here."""
import csv
import datetime
import io
import json
import os
import socket
import struct
import subprocess
import time

import pytest
from elftools.elf.elffile import ELFFile

from ko_helpers import FIXTURES, compile_bpf
from test_kernel_only_run import ko_run
from wasm_bpf.kernel_only import decode as D
from wasm_bpf.kernel_only import output as O
from wasm_bpf.kernel_only import spec as S
from wasm_bpf.kernel_only import syscalls
from wasm_bpf.kernel_only.runner import run
from wasm_bpf.kernel_only.symbols import UNKNOWN, KernelSymbols, UserSymbols

U32 = {"kind": "int", "size": 4, "signed": False, "name": "u32"}
U8 = {"kind": "int", "size": 1, "signed": False, "name": "u8"}


def member(name, t, byte_offset):
    return {"name": name, "type": t, "bit_offset": byte_offset * 8, "bit_size": 0}


@pytest.fixture(scope="module")
def built(tmp_path_factory):
    d = tmp_path_factory.mktemp("koprint")
    obj = compile_bpf(FIXTURES / "printing.bpf.c", d / "printing.bpf.o")
    target = d / "printing_target"
    subprocess.run(["cc", "-O0", "-g", "-fno-omit-frame-pointer", "-o", str(target),
                    str(FIXTURES / "printing_target.c")], check=True)
    return obj, target


@pytest.fixture(scope="module")
def printing(built):
    return S.inspect(built[0].read_bytes(), str(built[0]))


def event_bytes(step: int, detail: bytes, kstack=-1, ustack=-1) -> bytes:
    """struct event of printing.bpf.c as the kernel lays it out."""
    return struct.pack("<II24sii", 4242, step, detail.ljust(24, b"\0"), kstack, ustack) + bytes(64)


# ---- unions ----------------------------------------------------------------------------
@pytest.mark.unit
@pytest.mark.parametrize("batch", [False, True])
def test_union_member_chosen_by_the_enum_beside_it(printing, batch):
    """`enum step step` names the union's members (STEP_CALL -> call, STEP_RET -> ret):
    only the chosen member prints, in every output format."""
    dec = D.RecordDecoder(printing.map("events").record)
    call = event_bytes(1, b"bash".ljust(16, b"\0") + struct.pack("<i", 7))
    ret = event_bytes(2, struct.pack("<qI", -5, 9))
    rows = dec.rows([call, ret]) if batch else [dec.row(call), dec.row(ret)]
    assert rows[0]["detail"] == {"call": {"comm": "bash", "arg": 7}}
    assert rows[1]["detail"] == {"ret": {"value": -5, "extra": 9}}
    assert [n for n, _ in dec.columns] == ["pid", "step", "detail", "kstack_id", "ustack_id", "ustack"]
    out = io.StringIO()
    O.writer("table", out, dec.columns).emit_records(datetime.datetime(2026, 1, 1), dec.plan, [call, ret])
    lines = out.getvalue().splitlines()
    assert "call: comm=bash arg=7" in lines[1] and "ret: value=-5 extra=9" in lines[2] and "comm" not in lines[2]
    out = io.StringIO()
    O.writer("json", out, dec.columns).emit_records(datetime.datetime(2026, 1, 1), dec.plan, [ret])
    assert json.loads(out.getvalue())["detail"] == {"ret": {"value": -5, "extra": 9}}


def union_record(disc_type, members, disc_name="kind"):
    size = max(m["type"]["size"] for m in members)
    return {"kind": "struct", "name": "struct ev", "size": 4 + size, "members": [
        member(disc_name, disc_type, 0),
        member("", {"kind": "union", "name": "union", "size": size, "members": members}, 4)]}


@pytest.mark.unit
def test_union_rules_option_family_and_fallback():
    """--union UNION=FIELD with an integer field picks by position; a family field picks
    the 4- or 16-byte member; with neither the largest member prints (every byte)."""
    members = [member("small", U8, 0), member("word", U32, 0)]
    rec = union_record(U32, members)
    data = struct.pack("<II", 0, 0x01020304)
    # no discriminator: the largest member
    assert D.RecordDecoder(rec).row(data)["union"] == {"word": 0x01020304}
    # the option: kind 0 -> the first member
    dec = D.RecordDecoder(rec, hints=D.Hints(unions={"union": "kind"}))
    assert dec.row(data)["union"] == {"small": 4}
    assert dec.row(struct.pack("<II", 1, 7))["union"] == {"word": 7}
    # an anonymous union is named by its members' common leading words; a family field
    # beside it picks the 4- or the 16-byte member
    u8x16 = {"kind": "array", "size": 16, "count": 16, "elem": U8, "name": "u8[16]"}
    peer = union_record(U32, [member("peer_v4", U32, 0), member("peer_v6", u8x16, 0)], disc_name="af")
    v4 = struct.pack("<I", socket.AF_INET) + bytes([1, 0, 0, 0]) + bytes(12)
    v6 = struct.pack("<I", socket.AF_INET6) + bytes(15) + b"\x01"
    dec = D.RecordDecoder(peer)
    assert [n for n, _ in dec.columns] == ["af", "peer"]
    assert [r["peer"] for r in dec.rows([v4, v6])] == [{"peer_v4": 1}, {"peer_v6": [0] * 15 + [1]}]
    # named like an address, the same union is one address printed by its family
    saddr = union_record(U32, [member("saddr_v4", U32, 0), member("saddr_v6", u8x16, 0)], disc_name="af")
    assert [r["saddr"] for r in D.RecordDecoder(saddr).rows([v4, v6])] == ["1.0.0.0", "::1"]


# ---- syscall names -----------------------------------------------------------------------
@pytest.mark.unit
def test_syscall_names_come_from_the_kernel_headers():
    table = syscalls.names("x86_64")
    if not table:
        pytest.skip("no asm/unistd_64.h (linux-libc-dev) here")
    assert table[0] == "read" and table[110] == "getppid" and len(table) > 300
    assert syscalls.parse("#define __NR_foo 7\n#define __NR_bar 8\n") == {7: "foo", 8: "bar"}


@pytest.mark.unit
@pytest.mark.parametrize("hints, shown", [
    (D.Hints(syscall_program=True), {"id": "getppid", "syscall_nr": "getppid", "other": 110}),
    (D.Hints(), {"id": 110, "syscall_nr": "getppid", "other": 110}),  # `id` only in raw_syscalls programs
    (D.Hints(syscalls={"other"}), {"id": 110, "syscall_nr": "getppid", "other": "getppid"}),
    (None, {"id": 110, "syscall_nr": 110, "other": 110}),  # the Python API's plain decoder
])
def test_syscall_number_columns(hints, shown):
    if not syscalls.names():
        pytest.skip("no syscall table for this machine")
    rec = {"kind": "struct", "name": "struct ev", "size": 12,
           "members": [member("id", U32, 0), member("syscall_nr", U32, 4), member("other", U32, 8)]}
    data = struct.pack("<III", 110, 110, 110)
    dec = D.RecordDecoder(rec, hints=hints)
    assert dec.row(data) == shown and dec.rows([data]) == [shown]


# ---- symbols --------------------------------------------------------------------------------
@pytest.mark.unit
def test_kernel_addresses_by_kallsyms(tmp_path):
    fake = tmp_path / "kallsyms"
    fake.write_text("ffffffff81000000 T first_func\nffffffff81000100 t second_func\n"
                    "ffffffff81000200 D some_data\nffffffffc0000000 t mod_func\t[mymod]\n")
    ks = KernelSymbols(str(fake))
    assert ks.name(0xffffffff81000010) == "first_func+0x10"
    assert ks.name(0xffffffff81000180) == "second_func+0x80"  # data symbols are not functions
    assert ks.name(0xffffffffc0000004) == "mod_func+0x4"
    assert ks.name(0x1000) == UNKNOWN


@pytest.mark.unit
def test_user_addresses_by_maps_and_elf_symbols(built):
    """An address in a running process: /proc/PID/maps gives the file and offset, the
    ELF's symbol table the function."""
    target = built[1]
    with open(target, "rb") as f:
        sym = ELFFile(f).get_section_by_name(".symtab").get_symbol_by_name("koprint_middle")[0]["st_value"]
    proc = subprocess.Popen([str(target)])
    try:
        time.sleep(0.2)
        base = None
        with open(f"/proc/{proc.pid}/maps") as maps:
            for line in maps:
                parts = line.split()
                if parts[-1] == str(target) and int(parts[2], 16) == 0:
                    base = int(parts[0].split("-")[0], 16)
                    break
        assert base is not None
        us = UserSymbols()
        assert us.name(proc.pid, base + sym + 5) == "koprint_middle+0x5"
        assert us.name(proc.pid, 0x10) == UNKNOWN
        assert us.name(999_999_999, base + sym) == UNKNOWN  # no such process
    finally:
        proc.kill()
        proc.wait()


# ---- against the kernel ---------------------------------------------------------------------
def run_printing(built, args, settle=1.0):
    obj, target = built

    def trigger():
        os.getppid()
        os.getppid()
        subprocess.Popen([str(target)])  # sleeps 3 s: its maps are there when its record prints

    return ko_run(obj, ["--targ-tgid", str(os.getpid()), "--attach", f"on_leaf={target}:koprint_leaf", *args],
                  trigger, settle=settle)


def test_stacks_and_union_in_a_run(built):
    """A kernel stack (bpf_get_stackid in a syscall tracepoint) and a user stack (the id
    and bpf_get_stack's addresses, in a uprobe) print as function names; the union
    prints the member the step selects."""
    rc, out, err = run_printing(built, ["--json"])
    assert rc == 0, err
    records = [json.loads(line) for line in out.splitlines() if line.startswith("{")]
    calls = [r for r in records if r["step"] == "STEP_CALL"]
    rets = [r for r in records if r["step"] == "STEP_RET"]
    assert len(calls) == 2 and len(rets) == 1, out
    assert calls[0]["detail"] == {"call": {"comm": calls[0]["detail"]["call"]["comm"], "arg": 7}}
    assert any(f.startswith("do_syscall_64+0x") for f in calls[0]["kstack_id"]), calls[0]
    assert calls[0]["ustack_id"] == []  # -1: no stack taken
    assert rets[0]["detail"] == {"ret": {"value": 42, "extra": 0}}
    for field in ("ustack_id", "ustack"):
        frames = [f.split("+")[0] for f in rets[0][field]]
        assert frames[0] == "koprint_leaf" and "main" in frames, rets[0]


def test_syscall_count_map_prints_names(built):
    rc, out, err = run_printing(built, ["--json", "--map", "syscall_counts", "--interval", "0.3"])
    assert rc == 0, err
    counts = [json.loads(line) for line in out.splitlines() if '"syscall_counts"' in line]
    assert counts, out
    last = {r["key"]: r["value"] for r in counts if r["time"] == counts[-1]["time"]}
    assert last.get("getppid", 0) >= 2 and all(isinstance(k, str) for k in last), last


@pytest.mark.unit
@pytest.mark.parametrize("args, message", [
    (["--kstack", "nosuch"], "--kstack nosuch: no field nosuch in the records or maps of printing"),
    (["--union", "detail=comm"], "--union FIELD comm: no field comm"),
    (["--union", "detail"], "--union 'detail': expected UNION=FIELD"),
    (["--syscall-names", "detail"], "--syscall-names detail: detail is not int but union"),
])
def test_bad_print_options_one_line(built, capsys, args, message):
    assert run(str(built[0]), ["--timeout", "0", "--attach", f"on_leaf={built[1]}:koprint_leaf", *args]) == 1
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1 and err.startswith("wasm-bpf: error: ") and message in err, err


@pytest.mark.unit
def test_options_reach_a_maps_key_decoder():
    """A map's key columns print as "key"/"key.NAME"; the options name them so, and the
    key's decoder (which names them "value"/"NAME") gets them, sharing the run's symbols."""
    h = D.Hints(unions={"key.u": "key.kind", "v": "kind"}, kstacks={"key.ks", "ks"}, syscalls={"key"})
    k = h.for_key()
    assert k.unions == {"u": "kind"} and k.kstacks == {"ks"} and k.syscalls == {"value"}
    assert k.symbols is h.symbols


def test_counts_or_histogram_in_one_value(tmp_path):
    """hardirqs' shape (tests/kernel_only_fixtures/irqinfo.bpf.c): without its dist flag
    the value's slots stay empty and its counts print as a table row, where value
    members named `map` and `key` do not replace the row's map name and key; with the
    flag, histograms, whose CSV form has a header and quotes a struct key."""
    obj = compile_bpf(FIXTURES / "irqinfo.bpf.c", tmp_path / "irqinfo.bpf.o")
    comm = open("/proc/self/comm").read().strip()
    mine = ["--targ-tgid", str(os.getpid()), "--interval", "0.3"]

    def trigger():
        for _ in range(5):
            os.getppid()

    rc, out, err = ko_run(obj, ["--json", *mine], trigger, settle=0.8)
    assert rc == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows and all(r["map"] == "infos" and r["key.comm"] == comm for r in rows), out
    assert rows[-1]["count"] == 5 and rows[-1]["value.map"] == 7 and rows[-1]["value.key"] == 9, out
    assert not any("slots" in r for r in rows), out

    rc, out, err = ko_run(obj, ["--csv", "--targ-dist", *mine], trigger, settle=0.8)
    assert rc == 0, err
    header, *cells = list(csv.reader(out.splitlines()))
    assert header == ["time", "map", "key", "low", "high", "count"], out
    assert cells and all(len(c) == 6 and c[1] == "infos" for c in cells), out
    assert json.loads(cells[-1][2]) == {"comm": comm} and cells[-1][3:] == ["4", "7", "5"], out


def test_staging_maps_are_not_printed_by_default(tmp_path):
    """A program with no buffer or histogram prints its maps, but not a map whose entries
    it deletes (syscount's and offcputime's `start`): -v says so; --map prints it."""
    obj = compile_bpf(FIXTURES / "staged.bpf.c", tmp_path / "staged.bpf.o")
    mine = ["--json", "--targ-tgid", str(os.getpid()), "--interval", "0.3"]
    rc, out, err = ko_run(obj, mine, lambda: [os.getppid() for _ in range(3)], settle=0.8)
    assert rc == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert {r["map"] for r in rows} == {"calls"}, out
    assert rows[-1]["key"] == os.getpid() and rows[-1]["value"] == 3, out
    assert "not printing start: the program deletes its entries (staging, not results); --map NAME prints it" in err
    spec = S.inspect(obj.read_bytes(), "staged.bpf.o")
    assert spec.staging == {"start"}
