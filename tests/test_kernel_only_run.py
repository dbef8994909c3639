"""Kernel-only runs against the kernel: the examples' kernel code with no user-space
code (sigsnoop from its .bpf.c, opensnoop and runqlat from .bpf.o), in every output
format; flags from .rodata changing what is printed; the package round trip."""
import csv
import io
import json
import os
import shutil
import signal
import subprocess
import sys
import threading
import time

import pytest

from ko_helpers import EXAMPLES, FIXTURES, compile_bpf, compile_example

FORMATS = ("table", "json", "csv")
FMT_ARGS = {"table": [], "json": ["--json"], "csv": ["--csv"]}


def wasm_bpf() -> list:
    exe = shutil.which("wasm-bpf")
    return [exe] if exe else [sys.executable, "-m", "wasm_bpf"]


def ko_run(path, args, trigger, settle=0.6, timeout=60):
    """Runs `wasm-bpf run PATH ARGS -v`, calls trigger() once the programs are attached,
    then stops it with SIGINT after `settle` seconds; returns (status, stdout, stderr)."""
    proc = subprocess.Popen(wasm_bpf() + ["run", str(path), *args, "-v"], stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)
    attached = threading.Event()
    err_lines = []

    def read_err():
        for line in proc.stderr:
            err_lines.append(line)
            if "attached" in line:
                attached.set()

    t = threading.Thread(target=read_err, daemon=True)
    t.start()
    try:
        ok = attached.wait(timeout)
        if ok:
            trigger()
            time.sleep(settle)
        proc.send_signal(signal.SIGINT)
        out = proc.stdout.read()
        rc = proc.wait(timeout)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    t.join(5)
    err = "".join(err_lines)
    assert ok, f"the programs were never attached:\n{err}"
    return rc, out, err


def rows(fmt, out):
    """Printed rows as dicts of strings (table: split on whitespace by the header)."""
    lines = [line for line in out.splitlines() if line.strip()]
    if fmt == "json":
        return [{k: v if isinstance(v, (str, list, dict)) else json.dumps(v) for k, v in json.loads(line).items()}
                for line in lines]
    if fmt == "csv":
        return list(csv.DictReader(io.StringIO("\n".join(lines) + "\n")))
    header = lines[0].split()
    return [dict(zip([h.lower() for h in header], line.split(None, len(header) - 1))) for line in lines[1:]]


def my_comm() -> str:
    with open("/proc/self/comm") as f:
        return f.read().strip()


@pytest.fixture(scope="module")
def objs(tmp_path_factory):
    d = tmp_path_factory.mktemp("ko-objs")
    return {name: compile_example(name, d) for name in ("sigsnoop", "opensnoop", "runqlat")} | {
        "kinds": compile_bpf(FIXTURES / "kinds.bpf.c", d / "kinds.bpf.o"),
        "ucall": compile_bpf(FIXTURES / "ucall.bpf.c", d / "ucall.bpf.o")}


@pytest.fixture
def sleeper():
    p = subprocess.Popen(["sleep", "30"])
    yield p
    p.kill()
    p.wait()


@pytest.mark.parametrize("fmt", FORMATS)
def test_sigsnoop_from_source_only(fmt, tmp_path, sleeper):
    """Only the kernel code (sigsnoop.bpf.c + its header): one command, decoded rows."""
    for f in ("sigsnoop.bpf.c", "sigsnoop.h"):
        shutil.copy(EXAMPLES / "sigsnoop" / f, tmp_path / f)
    missing = 999_991

    def trigger():
        os.kill(sleeper.pid, signal.SIGUSR1)
        try:
            os.kill(missing, signal.SIGTERM)
        except ProcessLookupError:
            pass

    rc, out, err = ko_run(tmp_path / "sigsnoop.bpf.c", FMT_ARGS[fmt], trigger)
    assert rc == 0, err
    got = rows(fmt, out)
    mine = [r for r in got if r["pid"] == str(os.getpid())]
    assert {"tpid": str(sleeper.pid), "sig": "SIGUSR1", "ret": "0", "comm": my_comm()}.items() <= \
        next(r for r in mine if r["tpid"] == str(sleeper.pid)).items(), out
    assert {"sig": "SIGTERM", "ret": "-ESRCH"}.items() <= next(r for r in mine if r["tpid"] == str(missing)).items()
    if fmt == "table":
        assert out.splitlines()[0].split() == ["TIME", "PID", "TPID", "SIG", "RET", "COMM"]
    else:
        assert "time" in got[0]


def test_sigsnoop_pid_flag_filters(objs):
    """--filter-pid (const volatile filter_pid) keeps only the helper's signals."""
    helper = subprocess.Popen(["sh", "-c", "read x; kill -0 999993 2>/dev/null; true"], stdin=subprocess.PIPE, text=True)

    def trigger():
        for target in (999994,):
            try:
                os.kill(target, 0)  # sent by this process: filtered out
            except ProcessLookupError:
                pass
        helper.stdin.write("go\n")
        helper.stdin.flush()
        helper.wait(10)

    try:
        rc, out, err = ko_run(objs["sigsnoop"], ["--json", "--filter-pid", str(helper.pid)], trigger)
    finally:
        helper.kill()
        helper.wait()
    got = [json.loads(line) for line in out.splitlines()]
    assert rc == 0 and got, err
    assert {r["pid"] for r in got} == {helper.pid}
    assert any(r["tpid"] == 999993 and r["ret"] == "-ESRCH" and r["sig"] == 0 for r in got)


@pytest.mark.parametrize("fmt", FORMATS)
def test_opensnoop_perf_buffer(fmt, objs, tmp_path):
    path = str(tmp_path / "no-such-file")

    def trigger():
        for _ in range(2):
            try:
                os.open(path, os.O_RDONLY)
            except FileNotFoundError:
                pass

    rc, out, err = ko_run(objs["opensnoop"], FMT_ARGS[fmt] + ["--failed-only"], trigger)
    assert rc == 0, err
    got = rows(fmt, out)
    mine = [r for r in got if r["path"] == path]
    assert len(mine) == 2, out
    assert {"pid": str(os.getpid()), "fd": "-1", "err": "ENOENT", "comm": my_comm()}.items() <= mine[0].items()
    assert all(r["err"] != "0" for r in got)  # --failed-only took effect in the kernel


@pytest.mark.parametrize("fmt", FORMATS)
def test_runqlat_histogram(fmt, objs):
    def trigger():
        for _ in range(20):
            time.sleep(0.01)

    rc, out, err = ko_run(objs["runqlat"], FMT_ARGS[fmt] + ["--interval", "0.5"], trigger, settle=1.2)
    assert rc == 0, err
    lines = out.splitlines()
    if fmt == "table":
        assert any(line.endswith(" hists") for line in lines), out
        bars = [line.split() for line in lines if "->" in line]
        assert bars and sum(int(b[4]) for b in bars) > 0
        assert lines[1].split() == ["usecs", ":", "count", "distribution"]  # targ_ms unset: microseconds
    elif fmt == "json":
        got = [json.loads(line) for line in lines]
        assert got and all(g["map"] == "hists" for g in got) and sum(got[-1]["slots"]) > 0
    else:  # a header once, then a row per non-empty slot of each interval
        header, *cells = list(csv.reader(lines))
        assert header == ["time", "map", "key", "low", "high", "count"], out
        assert cells and all(len(c) == 6 and c[1] == "hists" for c in cells) and sum(int(c[-1]) for c in cells) > 0


def test_flags_change_kernel_behaviour(objs):
    """Every kind of record field as the kernel wrote it, with the .rodata flags set on
    the command line; --targ-pid filters in the kernel; the log2 histogram map prints."""
    args = ["--json", "--targ-pid", str(os.getpid()), "--targ-mode", "MODE_ON",
            "--min-duration-ns", "5", "--no-verbose-mode", "--interval", "0.3"]
    rc, out, err = ko_run(objs["kinds"], args, lambda: [os.getppid() for _ in range(3)])
    assert rc == 0, err
    got = [json.loads(line) for line in out.splitlines()]
    events = [g for g in got if "map" not in g]
    hists = [g for g in got if g.get("map") == "pid_hist"]
    assert len(events) == 3 and {e["pid"] for e in events} == {os.getpid()}
    e = events[0]
    assert (e["mode"], e["ts"], e["ok"], e["comm"]) == ("MODE_ON", 5, False, my_comm())
    assert (e["flag_a"], e["level"], e["sbits"], e["err"], e["sig"]) == (1, 5, -3, "ENOENT", "SIGUSR1")
    assert (e["saddr"], e["daddr_v6"], e["dport"], e["ret"]) == ("127.0.0.1", "::", 8080, "-EPERM")
    slot = os.getpid().bit_length() - 1
    assert hists and hists[-1]["slots"][slot] == 3 and sum(hists[-1]["slots"]) == 3


def test_package_round_trip(tmp_path, sleeper):
    """package sigsnoop.bpf.c, copy only the JSON elsewhere, run it."""
    src = tmp_path / "src"
    src.mkdir()
    for f in ("sigsnoop.bpf.c", "sigsnoop.h"):
        shutil.copy(EXAMPLES / "sigsnoop" / f, src / f)
    res = subprocess.run(wasm_bpf() + ["package", str(src / "sigsnoop.bpf.c"), "-o", str(src / "sigsnoop.json")],
                         capture_output=True, text=True)
    assert res.returncode == 0, res.stderr
    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    shutil.copy(src / "sigsnoop.json", elsewhere / "sigsnoop.json")
    shutil.rmtree(src)
    rc, out, err = ko_run(elsewhere / "sigsnoop.json", ["--csv"], lambda: os.kill(sleeper.pid, signal.SIGUSR2))
    assert rc == 0, err
    got = rows("csv", out)
    assert any(r["tpid"] == str(sleeper.pid) and r["sig"] == "SIGUSR2" and r["pid"] == str(os.getpid()) for r in got), out


def test_map_table_cleared_after_printing(objs):
    """--map prints a hash map as rows of decoded key and value fields; --clear empties
    it after each interval, so the entry is printed once."""
    args = ["--json", "--targ-pid", str(os.getpid()), "--map", "last", "--clear", "--interval", "0.3"]
    rc, out, err = ko_run(objs["kinds"], args, os.getppid, settle=1.0)
    assert rc == 0, err
    got = [json.loads(line) for line in out.splitlines()]
    last = [g for g in got if g.get("map") == "last"]
    assert len(last) == 1, out
    assert (last[0]["key"], last[0]["pid"], last[0]["comm"], last[0]["sig"], last[0]["saddr"]) == \
        (0, os.getpid(), my_comm(), "SIGUSR1", "127.0.0.1")


def test_eunomia_package_runs(objs, tmp_path):
    """An eunomia-bpf package.json: the record type named by export_types, a rodata
    default from "value", a flag renamed by "cmdarg", a map sampled as log2_hist."""
    import base64
    import zlib
    elf = objs["kinds"].read_bytes()
    doc = {"bpf_object": base64.b64encode(zlib.compress(elf)).decode(), "bpf_object_size": len(elf),
           "meta": {"bpf_skel": {"obj_name": "kinds_bpf",
                                 "data_sections": [{"name": ".rodata", "variables": [
                                     {"name": "targ_pid", "type": "int", "cmdarg": {"long": "pid"}},
                                     {"name": "min_duration_ns", "type": "unsigned long long", "value": 5}]}],
                                 "maps": [{"name": "pid_hist", "ident": "pid_hist",
                                           "sample": {"interval": 1000, "type": "log2_hist", "unit": "pid"}}]},
                    "export_types": [{"name": "record", "members": [], "size": 96, "type_id": 1}]}}
    pkg = tmp_path / "package.json"
    pkg.write_text(json.dumps(doc))
    rc, out, err = ko_run(pkg, ["--pid", str(os.getpid()), "--interval", "0.3"], os.getppid)
    assert rc == 0, err
    lines = out.splitlines()
    header = lines[0].split()
    assert header[:4] == ["TIME", "PID", "TS", "MODE"], out
    row = dict(zip(header, lines[1].split()))
    assert (row["PID"], row["TS"], row["MODE"]) == (str(os.getpid()), "5", "MODE_AUTO")
    assert any(line.split()[:2] == ["pid", ":"] for line in lines), out  # the histogram's unit label


def test_attach_target_per_program(objs):
    """A uprobe gets its target from --attach PROG=BINARY:FUNCTION; without one the run
    stops with a line that says which option to give."""
    rc, out, err = ko_run(objs["ucall"], ["--json", "--attach", "on_call=libc.so.6:getpid"],
                          lambda: [os.getpid() for _ in range(3)])
    assert rc == 0, err
    mine = [r for r in map(json.loads, out.splitlines()) if r["pid"] == os.getpid()]
    assert len(mine) >= 3 and mine[0]["comm"] == my_comm(), out
    res = subprocess.run(wasm_bpf() + ["run", str(objs["ucall"])], capture_output=True, text=True, timeout=60)
    assert res.returncode == 1
    assert res.stderr.startswith("wasm-bpf: error: cannot attach on_call (SEC(\"uprobe\")):")
    assert res.stderr.rstrip().endswith("give a target with --attach on_call=BINARY:FUNCTION[+OFFSET]") and res.stderr.count("\n") == 1


def test_a_malformed_object_is_a_one_line_error(tmp_path):
    """An object that crashed libbpf 1.1 (fuzz/regressions/) is refused before libbpf
    parses it, with the cause named."""
    bad = tmp_path / "bad.bpf.o"
    bad.write_bytes((EXAMPLES.parent / "fuzz" / "regressions" / "btf-member-type-id.elf").read_bytes())
    proc = subprocess.run([*wasm_bpf(), "run", str(bad)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("wasm-bpf: error: cannot open") and "refers to type" in proc.stderr, proc.stderr
    assert "Traceback" not in proc.stderr and proc.stderr.count("\n") == 1, proc.stderr


def test_array_global_is_a_list_flag(tmp_path):
    """An array global (tcplife's `target_sports[4]`) is a flag taking a comma-separated
    list, the rest zero; too many values or a bad one is one line naming the flag."""
    from ko_helpers import FIXTURES, compile_bpf
    obj = compile_bpf(FIXTURES / "tgidlist.bpf.c", tmp_path / "tgidlist.bpf.o")
    help_text = subprocess.run(wasm_bpf() + ["run", str(obj), "--help"], capture_output=True, text=True).stdout
    assert "--targ-tgids N[,...]" in help_text and "up to 3 comma-separated values" in help_text, help_text

    def trigger():
        for _ in range(5):
            os.getppid()

    listed = ["--json", "--filter-tgids", "--targ-tgids", f"1,{os.getpid()}"]
    rc, out, err = ko_run(obj, listed, trigger, settle=1.2)
    assert rc == 0, err
    assert json.loads(out.splitlines()[-1])["calls"] == 5, out
    for bad, why in (("1,2,3,4", "'1,2,3,4': 4 values, at most 3"), ("1,x", "'x': not an integer")):
        proc = subprocess.run(wasm_bpf() + ["run", str(obj), "--targ-tgids", bad], capture_output=True, text=True)
        assert proc.returncode != 0 and f"--targ-tgids {why}" in proc.stderr, proc.stderr
