"""Which programs a kernel-only run loads: one variant per event (tp_btf / raw_tp / tp,
fentry / kprobe), absent events skipped, --only / --skip; maps user space would size
(max_entries 0, a stack map's value_size, --map-size); perf-event programs attached
on every CPU without --attach."""
import json
import os
import subprocess
import threading

import pytest

from ko_helpers import FIXTURES, compile_bpf
from test_kernel_only_run import ko_run, wasm_bpf
from wasm_bpf.kernel_only.spec import ProgramSpec, SpecError
from wasm_bpf.kernel_only.variants import Kernel, Variant, choose


@pytest.fixture(scope="module")
def variants(tmp_path_factory):
    return compile_bpf(FIXTURES / "variants.bpf.c", tmp_path_factory.mktemp("ko-var") / "variants.bpf.o")


def rename_three_times():
    with open("/proc/self/comm") as f:
        old = f.read().strip()
    for i in range(3):
        with open("/proc/self/comm", "w") as f:
            f.write(f"ko-rename-{i}")
    with open("/proc/self/comm", "w") as f:
        f.write(old)  # a fourth rename, counted too


def last_counts(out):
    rows = [json.loads(line) for line in out.splitlines()]
    final = {}
    for r in rows:
        assert r["map"] in ("counts", "sized_by_runner"), r
        if r["map"] == "counts":
            final[r["key"]] = r["value"]
    return final


def test_each_event_counted_once(variants):
    """tp_btf, raw_tp and tp on task_rename: only tp_btf runs, so 4 renames count 4;
    the absent tracepoint and function are skipped with a note; the perf event samples
    every CPU with no --attach, and its stack map (value_size left to user space) works."""
    args = ["--json", "--targ-tgid", str(os.getpid()), "--interval", "0.3"]
    rc, out, err = ko_run(variants, args, rename_three_times, settle=1.0)
    assert rc == 0, err
    counts = last_counts(out)
    assert counts.get(0) == 4, out
    assert 2 not in counts and 3 not in counts, out
    assert counts.get(4, 0) > 0 and counts.get(5, 0) > 0, out
    assert "not running rename_raw: the same event as rename_btf" in err
    assert "not running rename_tp: the same event as rename_btf" in err
    assert "not running absent_tp: no tracepoint wasm_bpf_test/no_such_tracepoint on this kernel" in err
    assert "not running absent_fentry:" in err
    assert "note: sample samples cpu-clock at 49 Hz on every online CPU (the default; " \
           "--attach sample=EVENT[,cpu=N][,freq=HZ] chooses)" in err


def test_hardware_perf_event_on_a_machine_without_one(variants):
    """A hardware event where the machine has no PMU (most VMs): one line that says
    so and names the software event that works."""
    from wasm_bpf.probe import unsupported_reason
    if unsupported_reason("perf_event_hardware") is None:
        pytest.skip("this machine has hardware perf events")
    proc = subprocess.run(wasm_bpf() + ["run", str(variants), "--attach", "sample=cycles"],
                          capture_output=True, text=True, timeout=60)
    assert proc.returncode != 0, proc.stdout
    assert "this machine has no hardware cycles counter; software events such as cpu-clock work" in proc.stderr


@pytest.mark.parametrize("choose_args, renames, note", [
    (["--only", "rename_raw", "rename_tp", "sample"], 8, "not running rename_btf: not named by --only"),
    (["--skip", "rename_btf"], 4, "not running rename_tp: the same event as rename_raw"),
])
def test_only_and_skip(variants, choose_args, renames, note):
    """--only runs exactly the named programs (both twins count: the user asked for
    them); --skip drops one and the next variant takes its place."""
    args = ["--json", "--targ-tgid", str(os.getpid()), "--interval", "0.3", *choose_args]
    rc, out, err = ko_run(variants, args, rename_three_times, settle=1.0)
    assert rc == 0, err
    assert last_counts(out).get(0) == renames, out
    assert note in err


def test_map_size_option(variants):
    """--map-size counts=4: the array the program indexes up to 5 has 4 slots."""
    args = ["--json", "--map-size", "counts=4", "--interval", "0.3"]
    rc, out, err = ko_run(variants, args, rename_three_times, settle=0.8)
    assert rc == 0, err
    counts = last_counts(out)
    assert counts.get(0, 0) > 0 and max(counts) < 4, out


@pytest.mark.parametrize("args, message", [
    (["--only", "nope"], "--only nope: no such program (programs: rename_btf, "),
    (["--skip", "sample", "nope"], "--skip nope: no such program"),
    (["--map-size", "counts"], "--map-size 'counts': expected NAME=N with N a positive number"),
    (["--map-size", "nomap=4"], "no map named 'nomap'"),
])
def test_choice_errors_are_one_line(variants, args, message):
    res = subprocess.run(wasm_bpf() + ["run", str(variants), *args], capture_output=True, text=True, timeout=60)
    assert res.returncode == 1 and res.stderr.count("\n") == 1, res.stderr
    assert res.stderr.startswith("wasm-bpf: error: ") and message in res.stderr, res.stderr


class FakeKernel(Kernel):
    """missing: flavours whose event does not exist; refused: kinds the kernel cannot run."""

    def __init__(self, missing, refused=()):
        super().__init__()
        self.missing, self.refused = missing, refused

    def absent(self, v: Variant) -> str:
        return "absent" if v.flavour in self.missing else ""

    def unsupported(self, v: Variant) -> str:
        return f"no {v.flavour} here" if v.flavour in self.refused else ""


PROGS = [ProgramSpec("f", "fentry/vfs_read"), ProgramSpec("k", "kprobe/vfs_read"),
         ProgramSpec("r", "kretprobe/vfs_read"), ProgramSpec("k2", "kprobe/vfs_read"),
         ProgramSpec("x", "xdp")]


@pytest.mark.unit
@pytest.mark.parametrize("missing, run", [
    ((), ["f", "r", "x"]),  # fentry preferred over both kprobes; the kretprobe has no fexit twin
    (("fentry",), ["k", "r", "k2", "x"]),  # both kprobes on one event: not variants of each other
])
def test_fentry_preferred_over_kprobe(missing, run):
    assert choose(PROGS, kernel=FakeKernel(missing)).run == run


@pytest.mark.unit
def test_an_event_no_variant_can_trace_here_is_a_warning():
    """fentry refused and no kprobes: the vfs_read programs are skipped and reported
    as uncovered (a warning without -v); a kprobe whose fentry twin runs is not; an
    absent function is not."""
    progs = PROGS[:3] + [ProgramSpec("t", "tp/syscalls/sys_enter_getppid")]
    choice = choose(progs, kernel=FakeKernel((), refused=("fentry", "kprobe", "kretprobe")))
    assert choice.run == ["t"] and choice.uncovered == ["f", "k", "r"]
    assert dict(choice.skipped)["k"] == "no kprobe here"
    choice = choose(progs, kernel=FakeKernel((), refused=("kprobe",)))
    assert choice.run == ["f", "r", "t"] and choice.uncovered == []
    choice = choose(progs, kernel=FakeKernel(("fentry", "kprobe", "kretprobe"), refused=("fentry",)))
    assert choice.run == ["t"] and choice.uncovered == []


@pytest.mark.unit
def test_nothing_exists_here_loads_the_preferred_variant():
    """When no variant's event exists, the preferred one is loaded anyway, so that its
    failure names what is missing (tests/test_errors.py checks those lines)."""
    assert choose(PROGS[:2], kernel=FakeKernel(("fentry", "kprobe"))).run == ["f"]
    with pytest.raises(SpecError, match=r"--skip leaves no program to run \(programs: f, k\)"):
        choose(PROGS[:2], skip=["f", "k"], kernel=FakeKernel(()))


def test_globals_and_numeric_keys(tmp_path):
    """No buffer, no histogram: the .bss globals print (calls, last_tgid) beside the
    hash map, whose keys come in numeric order."""
    obj = compile_bpf(FIXTURES / "globals.bpf.c", tmp_path / "globals.bpf.o")
    rc, out, err = ko_run(obj, ["--json", "--targ-tgid", str(os.getpid()), "--interval", "0.3"],
                          lambda: [os.getppid() for _ in range(3)], settle=1.0)
    assert rc == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    bss = [r for r in rows if r["map"] == ".bss"]
    assert bss and (bss[-1]["calls"], bss[-1]["last_tgid"]) == (3, os.getpid()), out
    last = [r for r in rows if r["map"] == "by_key"][-4:]
    assert [(r["key"], r["value"]) for r in last] == [(k, 3) for k in (1, 2, 10, 256)], out


@pytest.mark.unit
@pytest.mark.parametrize("name, value_name, targ_ms, unit", [
    ("hists", "struct hist", None, ""),
    ("hist_ns", "struct hist", None, "nsecs"),
    ("lat_usecs", "struct hist", None, "usecs"),
    ("hists", "struct hist_msec", None, "msecs"),
    ("hists", "struct hist", False, "usecs"),  # libbpf-tools' targ_ms: microseconds unless set
    ("hists", "struct hist", True, "msecs"),
    ("users", "struct hist", None, ""),  # "us" inside a word is no unit
])
def test_histogram_unit_from_names(name, value_name, targ_ms, unit):
    import argparse
    from wasm_bpf.kernel_only.runner import hist_unit
    from wasm_bpf.kernel_only.spec import MapSpec
    ns = argparse.Namespace() if targ_ms is None else argparse.Namespace(flag_targ_ms=targ_ms)
    assert hist_unit(MapSpec(name, 1, value={"kind": "struct", "name": value_name, "size": 8, "members": []}), ns) == unit


def test_record_type_from_a_map_value(tmp_path):
    """The record comes from a per-CPU map value and the output call spans lines: the
    type is read from the code (no --event-type), and the records print decoded."""
    obj = compile_bpf(FIXTURES / "heap.bpf.c", tmp_path / "heap.bpf.o")
    rc, out, err = ko_run(obj, ["--json", "--targ-tgid", str(os.getpid())], lambda: [os.getppid() for _ in range(3)])
    assert rc == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [r["pid"] for r in rows] == [os.getpid()] * 3, out
    assert all(r["calls"] >= 1 for r in rows) and rows[0]["comm"] == open("/proc/self/comm").read().strip()



def test_record_type_through_a_stack_spill(tmp_path):
    """mountsnoop's shape: the heap pointer is spilled to the stack and filled back
    before the output call (in a subprogram): the record type is still found."""
    obj = compile_bpf(FIXTURES / "spill.bpf.c", tmp_path / "spill.bpf.o")
    rc, out, err = ko_run(obj, ["--json", "--targ-tgid", str(os.getpid())], lambda: [os.getppid() for _ in range(3)])
    assert rc == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert [(r["pid"], r["tid"]) for r in rows] == [(os.getpid(), threading.get_native_id())] * 3, out
    assert all(r["b"] == 2 and r["a"] in (8, 9) for r in rows), out

def test_trace_pipe_program(tmp_path):
    """A program that only calls bpf_printk: the run says where its output goes, and
    --trace-pipe prints those lines."""
    obj = compile_bpf(FIXTURES / "printk.bpf.c", tmp_path / "printk.bpf.o")
    args = ["--targ-tgid", str(os.getpid())]
    rc, out, err = ko_run(obj, args, os.getppid, settle=0.3)
    assert rc == 0 and out == "", err
    assert "wasm-bpf: note: printk writes its output with bpf_printk() to the kernel's trace_pipe: " \
           "--trace-pipe prints it" in err
    rc, out, err = ko_run(obj, [*args, "--trace-pipe", "--json"], lambda: [os.getppid() for _ in range(2)], settle=1.0)
    assert rc == 0, err
    mine = [json.loads(line)["trace_pipe"] for line in out.splitlines()]
    mine = [line for line in mine if f"ko-printk-test tgid={os.getpid()}" in line]
    assert len(mine) >= 2, out  # trace_pipe also holds the first run's line, unless someone read it


def test_histograms_kept_in_globals(tmp_path):
    """softirqs/runqlen keep their histograms in .bss (an array of `struct hist`, one
    alone) beside plain counters: each non-empty histogram prints as one, labelled by
    its variable and index, with the unit its name or the `targ_ns` flag implies; the
    counters as a row; the empty histograms not at all."""
    obj = compile_bpf(FIXTURES / "globalhist.bpf.c", tmp_path / "globalhist.bpf.o")

    def trigger():
        for _ in range(5):
            os.getppid()
        for _ in range(2):
            os.getpgid(0)

    rc, out, err = ko_run(obj, ["--targ-tgid", str(os.getpid()), "--interval", "0.3"], trigger, settle=1.0)
    assert rc == 0, err
    last = out.split(" .bss hists[1]\n")[-1].split("\n\n")[0].splitlines()
    assert last[0].split() == ["usecs", ":", "count", "distribution"], out
    assert [line.split("|")[0].split() for line in last[-2:]] == [["4", "->", "7", ":", "0"],
                                                                    ["8", "->", "15", ":", "5"]], out
    assert " .bss hists[3]\n" in out and " .bss latency_usecs\n" in out and "usecs : count" in out, out
    assert "hists[0]" not in out and "hists[2]" not in out, out
    assert out.rstrip().splitlines()[-1].split()[-1] == "[0,5,0,2]", out

    rc, out, err = ko_run(obj, ["--targ-tgid", str(os.getpid()), "--targ-ns", "--interval", "0.3"], trigger,
                          settle=1.0)
    assert rc == 0, err
    assert "\n               nsecs : count    distribution\n" in out.split(" .bss hists[1]")[-1], out

    rc, out, err = ko_run(obj, ["--json", "--targ-tgid", str(os.getpid()), "--interval", "0.3"], trigger, settle=1.0)
    assert rc == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    hists = {r["variable"]: r["slots"] for r in rows if "variable" in r}
    assert hists["hists[1]"][3] == 5 and hists["hists[3]"][0] == 2 and hists["latency_usecs"][5] == 2, out
    assert set(hists) == {"hists[1]", "hists[3]", "latency_usecs"}, out
    table = [r for r in rows if "variable" not in r]
    assert table and table[-1]["counts"] == [0, 5, 0, 2] and "hists" not in table[-1], out
