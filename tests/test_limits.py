"""Resource limits (runtime/wasm_bpf/limits.py, docs/sandbox.md): each limit stops
what it should, says which flag raises it, and leaves nothing attached (the autouse
leak check in conftest.py). The guest is tests/guests/limits_guest.c."""
import os
import subprocess
import sys
import time

import pytest

import wasm_bpf
from guests.build import guests
from guests.helpers import Trigger, parse
from wasm_bpf.limits import EXIT_LIMIT, MiB, Limits, parse_size

EMFILE = 33  # WASI


@pytest.fixture(scope="module")
def guest():
    return str(guests()["limits"])


def run(guest, *args, **limits):
    messages = []
    config = wasm_bpf.RunConfig(limits=Limits(**limits))
    with wasm_bpf.Instance(guest, [str(a) for a in args], config=config, capture_output=True,
                           report=messages.append) as inst:
        started = time.monotonic()
        code = inst.run()
        return code, parse(inst.stdout), messages, time.monotonic() - started


def test_memory_limit_makes_malloc_fail_and_is_named(guest):
    code, out, messages, _ = run(guest, "memory", max_memory=16 * MiB)
    assert code == 3 and 0 < out["blocks"] < 16
    assert any("--max-memory" in m and "16 MiB" in m for m in messages), messages
    code, out, messages, _ = run(guest, "memory", max_memory=64 * MiB)
    assert code == 3 and out["blocks"] > 40  # the limit, not something else, was the cause


def test_module_whose_memory_starts_over_the_limit_is_refused():
    module = '(module (memory (export "memory") 512) (func (export "_start")))'  # 32 MiB
    with pytest.raises(wasm_bpf.WasmBpfError, match=r"starts at 32 MiB.*--max-memory"):
        wasm_bpf.run(module.encode(), config=wasm_bpf.RunConfig(limits=Limits(max_memory=16 * MiB)))
    assert wasm_bpf.run(module.encode()).exit_code == 0  # the default allows it


def test_cpu_limit_stops_a_guest_spinning_in_wasm(guest):
    code, _, messages, elapsed = run(guest, "spin", cpu_limit=0.3)
    assert code == EXIT_LIMIT
    assert elapsed < 3
    assert messages == ["resource limit: the guest used 0.3 s of CPU time, its limit (raise it with --cpu-limit)"]


def test_callback_limit_stops_a_callback_that_never_returns(guest):
    with Trigger(period=0.01):
        code, out, messages, elapsed = run(guest, "callback", os.getpid(), callback_limit=0.3)
    assert (out["arm"], out["attach"], out["in_callback"]) == (0, 0, 1)
    assert code == EXIT_LIMIT and elapsed < 5
    assert any("event callback used 0.3 s" in m and "--callback-limit" in m for m in messages), messages


def test_object_limit(guest):
    code, out, messages, _ = run(guest, "objects", 3, max_objects=2)
    assert code == 0 and (out["load0"], out["load1"], out["load2"]) == (1, 1, 0)
    assert any("2 BPF objects loaded" in m and "--max-objects" in m for m in messages), messages


def test_link_limit_counts_live_links_only(guest):
    code, out, messages, _ = run(guest, "links", max_links=1)
    # The second attach is refused; closing the object frees its slot.
    assert (out["attach_tp"], out["attach_xdp"], out["attach_again"]) == (0, -EMFILE, 0)
    assert any("1 program attached" in m and "--max-links" in m for m in messages), messages


def test_map_memory_limit_refuses_before_load(guest):
    code, out, messages, _ = run(guest, "load", max_map_memory=32 * 1024)
    assert out["loaded"] == 0
    assert any("about 65.2 KiB" in m and "rb 64 KiB" in m and "--max-map-memory" in m for m in messages), messages
    assert run(guest, "load")[1]["loaded"] == 1


@pytest.mark.parametrize("text,size", [("65536", 65536), ("512M", 512 * MiB), ("2G", 2 << 30),
                                       ("1.5KiB", 1536), ("64 mb", 64 * MiB)])
def test_parse_size(text, size):
    assert parse_size(text) == size


def _cli(*args):
    return subprocess.run([sys.executable, "-m", "wasm_bpf", "run", *args], capture_output=True, text=True,
                          timeout=60)


def test_cli_flags_set_the_limits(guest):
    proc = _cli("--max-objects", "1", guest, "objects", "2")
    assert proc.returncode == 0 and parse(proc.stdout.encode()) == {"load0": 1, "load1": 0}
    assert "raise it with --max-objects" in proc.stderr
    proc = _cli("--cpu-limit", "0.2", guest, "spin")
    assert proc.returncode == EXIT_LIMIT and "--cpu-limit" in proc.stderr
    proc = _cli("--max-map-memory", "unlimited", "--max-memory", "8M", guest, "memory")
    assert proc.returncode == 3 and "--max-memory" in proc.stderr


@pytest.mark.parametrize("flag,value,error", [("--max-memory", "lots", "not a size"),
                                              ("--max-links", "0", "must be above 0"),
                                              ("--callback-limit", "-1", "must be above 0")])
def test_cli_rejects_bad_limit_values(guest, flag, value, error):
    proc = _cli(flag, value, guest, "load")
    assert proc.returncode == 2 and error in proc.stderr and flag in proc.stderr


# ---- --max-memory bounds the whole Wasm store (issue 13, finding 3) ----------------------
def _max_rss_mib(*args):
    """(exit status, peak RSS in MiB) of `wasm-bpf run ARGS` in a child process."""
    pid = os.fork()
    if pid == 0:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.dup2(devnull, 2)
        os.execv(sys.executable, [sys.executable, "-m", "wasm_bpf", "run", *map(str, args)])
    _, status, usage = os.wait4(pid, 0)
    return os.waitstatus_to_exitcode(status), usage.ru_maxrss / 1024


def test_growing_a_table_stops_at_the_memory_limit(tmp_path):
    trivial = tmp_path / "trivial.wat"
    trivial.write_text('(module (memory (export "memory") 1) (func (export "_start")))')
    _, baseline = _max_rss_mib("--max-memory", "16M", trivial)
    # The guest grows a table until refused (exit 3) or it holds 512 MiB (exit 4).
    code, rss = _max_rss_mib("--max-memory", "16M", guests()["grow_table"])
    assert code == 3
    assert rss - baseline < 16, (rss, baseline)


@pytest.mark.parametrize("module,error", [
    ("(memory 1) " * 16, "declares 16 memories; --max-memory budgets one store of 1 memory and up to 4 tables"),
    ("(memory 1) " + "(table 1 funcref) " * 5, "declares 5 tables; --max-memory"),
    ("(memory 1) (table 100000000 funcref)", r"table of 100000000 elements \(762.9 MiB\), over the 32768 per table "
                                             r"its 16 MiB limit allows \(raise it with --max-memory\)"),
    ("(memory 300)", r"memory starts at 18.8 MiB, over the limit of 16 MiB \(15 MiB for memory"),  # not exported
])
def test_module_whose_store_starts_over_the_limit_is_refused(module, error):
    wat = f'(module {module} (func (export "_start")))'
    with pytest.raises(wasm_bpf.WasmBpfError, match=error):
        wasm_bpf.run(wat.encode(), config=wasm_bpf.RunConfig(limits=Limits(max_memory=16 * MiB)))



# ---- --max-map-memory counts what the host creates for a guest (issue 13, finding 7) ----
def run_objfile(obj, action, *maps, policy=None, **limits):
    """Runs the objfile guest on BPF object file `obj` (its directory granted)."""
    messages = []
    config = wasm_bpf.RunConfig(dirs=[(str(obj.parent), "/obj")], policy=policy, limits=Limits(**limits),
                                grace_period=0.2)
    with wasm_bpf.Instance(guests()["objfile"], [f"/obj/{obj.name}", action, *maps], config=config,
                           capture_output=True, report=messages.append) as inst:
        code = inst.run()
        return code, parse(inst.stdout), messages


def test_perf_rings_the_host_creates_count_against_the_map_memory_limit():
    cpus = os.cpu_count()
    ring = cpus * 65 * 4096  # 64 pages and a header page per CPU: the host's default perf buffer
    code, out, messages = run_objfile(guests()["mapmem_bpf"], "return", "perf_a", "perf_b", "perf_c",
                                      max_map_memory=2 * ring + 64 * 1024)
    assert (out["loaded"], out["fd_perf_a"], out["fd_perf_b"], out["fd_perf_c"]) == (1, 1, 1, -1)  # -E2BIG
    assert any("perf_c (perf rings)" in m and "--max-map-memory" in m for m in messages), messages
    out = run_objfile(guests()["mapmem_bpf"], "return", "perf_a", "perf_b", "perf_c")[1]
    assert out["fd_perf_c"] == 1  # the default limit allows them


def test_inner_map_template_is_counted_and_checked_against_the_policy():
    obj = guests()["mapmem_inner_bpf"]
    code, out, messages = run_objfile(obj, "return", max_map_memory=16 * MiB)
    assert out["loaded"] == 0
    assert any("outer.inner 22.9 MiB" in m and "--max-map-memory" in m for m in messages), messages
    policy = wasm_bpf.Policy.parse('[maps]\ntypes = ["array_of_maps", "perf_event_array", "array"]', "test")
    code, out, messages = run_objfile(obj, "return", policy=policy)
    assert out["loaded"] == 0
    assert any("map 'outer.inner' type hash is not in [maps] types" in m for m in messages), messages
    assert run_objfile(obj, "return")[1]["loaded"] == 1
