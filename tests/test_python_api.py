"""wasm_bpf.load(): BPF objects from Python on the real kernel. The fixture object
(tests/pyapi_fixtures/counters.bpf.c) counts this process's own getpgid()/getsid()
calls into every kind of map the API decodes, so each test knows what to expect."""
import asyncio
import gc
import os
import subprocess
import sys

import pytest

import wasm_bpf
from conftest import held_bpf_ids
from ko_helpers import ROOT, compile_bpf

SRC = ROOT / "tests" / "pyapi_fixtures" / "counters.bpf.c"
ME = os.getpid()


@pytest.fixture(scope="module")
def obj_path(tmp_path_factory):
    return compile_bpf(SRC, tmp_path_factory.mktemp("pyapi") / "counters.bpf.o")


@pytest.fixture
def obj(obj_path):
    with wasm_bpf.load(obj_path, globals={"targ_tgid": ME}) as o:
        yield o


def calls(n: int) -> None:
    for _ in range(n):
        os.getpgid(0)


def test_a_source_file_loads_and_globals_set_rodata_before_load():
    with wasm_bpf.load(SRC, globals={"targ_tgid": ME}) as o:
        assert o.rodata.targ_tgid == ME
        calls(3)
        assert o.bss.hits == 3
    with wasm_bpf.load(SRC) as o:  # targ_tgid 0: no process of ours matches
        calls(3)
        assert o.bss.hits == 0


def test_maps_are_dicts_with_decoded_keys_and_values(obj):
    calls(5)
    m = obj.maps["calls"]
    key = {"pid": ME, "kind": 1}
    assert m[key] == 5
    assert m.items() == [(key, 5)]
    assert m.keys() == [key] and m.values() == [5] and len(m) == 1
    assert key in m and m.get({"pid": ME, "kind": 2}) is None
    with pytest.raises(KeyError):
        m[{"pid": ME, "kind": 2}]
    m[{"pid": 1, "kind": 2}] = 40
    assert m[{"pid": 1, "kind": 2}] == 40
    del m[{"pid": 1, "kind": 2}]
    assert len(m) == 1
    m.clear()
    assert m.items() == []
    assert sorted(obj.maps) == ["big", "calls", "hists", "percpu"]


def test_per_cpu_values_are_lists(obj):
    calls(7)
    values = obj.maps["percpu"][0]
    assert isinstance(values, list) and len(values) == os.cpu_count()
    assert sum(values) == 7
    obj.maps["percpu"][1] = [5] * len(values)
    assert obj.maps["percpu"][1] == [5] * len(values)
    obj.maps["percpu"].clear()  # an array: zeroed, not deleted
    assert obj.maps["percpu"][0] == [0] * len(values)


def test_items_of_a_large_map_match_what_was_written(obj):
    big = obj.maps["big"]
    for i in range(20000):
        big[i] = i * 3
    assert sorted(big.items()) == [(i, i * 3) for i in range(20000)]
    assert len(big) == 20000


def test_bad_keys_and_values_are_one_line_errors(obj):
    with pytest.raises(wasm_bpf.MapError, match=r"struct key has no field 'tid' \(fields: kind, pid\)"):
        obj.maps["calls"][{"tid": 1}]
    with pytest.raises(wasm_bpf.MapError, match="out of range"):
        obj.maps["big"][1] = -1
    with pytest.raises(wasm_bpf.MapError, match="per-CPU map takes a list"):
        obj.maps["percpu"][0] = 3
    with pytest.raises(wasm_bpf.MapError, match="cannot be deleted"):
        del obj.maps["percpu"][0]


def test_section_variables_are_attributes(obj):
    calls(2)
    assert (obj.bss.hits, obj.bss.sids, obj.data.step) == (2, 0, 1)
    obj.data.step = 10  # the program adds step to hits
    calls(1)
    assert obj.bss.hits == 12
    assert dir(obj.bss) == ["hits", "sids"]
    with pytest.raises(wasm_bpf.MapError, match=r"read-only once loaded: pass globals="):
        obj.rodata.targ_tgid = 1
    with pytest.raises(AttributeError, match=r"no variable 'nope' \(variables: hits, sids\)"):
        obj.bss.nope


def test_programs_detach_and_attach_one_by_one(obj):
    getsid = obj.programs["on_getsid"]
    os.getsid(0)
    getsid.detach()
    assert not getsid.attached and obj.programs["on_getpgid"].attached
    os.getsid(0)
    calls(1)
    assert (obj.bss.sids, obj.bss.hits) == (1, 1)
    getsid.attach()
    os.getsid(0)
    assert obj.bss.sids == 2


def test_histograms_print_like_the_cli_and_expose_buckets(obj):
    calls(10)  # slot = seq & 7: slots 0 and 1 twice, 2..7 once
    h = obj.maps["hists"][0]
    assert isinstance(h, wasm_bpf.Histogram)
    assert h.slots[:8] == [2, 2, 1, 1, 1, 1, 1, 1] and h.total == 10
    assert h.buckets[:3] == [(0, 1, 2), (2, 3, 2), (4, 7, 1)]
    assert h.fields == {"comm": open("/proc/self/comm").read().strip()}
    lines = str(h).splitlines()
    assert lines[0] == "               value : count    distribution"
    assert lines[1] == "              0 -> 1 : 2        |****************************************|"
    assert lines[3] == "              4 -> 7 : 1        |********************                    |"


def test_events_iterate_read_and_call_back(obj):
    ev = obj.events("events")
    calls(3)
    it = iter(ev)
    first = [next(it) for _ in range(3)]
    assert [r["seq"] for r in first] == [0, 1, 2]
    assert first[0] == {"pid": ME, "seq": 0, "comm": open("/proc/self/comm").read().strip()}
    got = []
    calls(2)
    assert ev.poll(got.append, timeout=1) == 2
    assert [r["seq"] for r in got] == [3, 4]
    assert ev.read(timeout=0.05) == []


def test_closing_the_object_while_iterating_its_records_ends_the_loop_with_an_error(obj_path):
    # iteration hands over one chunk at a time: the buffer is checked again before the next
    o = wasm_bpf.load(obj_path, globals={"targ_tgid": ME})
    calls(3)
    seen = []
    with pytest.raises(wasm_bpf.WasmBpfError, match="event buffer is closed"):
        for record in o.events("events"):
            seen.append(record["seq"])
            if len(seen) == 3:
                o.close()
    assert seen == [0, 1, 2]


def test_events_in_asyncio(obj):
    ev = obj.events("events")

    async def main():
        loop = asyncio.get_running_loop()
        loop.call_later(0.1, calls, 4)
        out = []
        async for record in ev:
            out.append(record["seq"])
            if len(out) == 4:
                return out

    assert asyncio.run(asyncio.wait_for(main(), 5)) == [0, 1, 2, 3]


def test_event_errors_name_the_fix(obj):
    with pytest.raises(wasm_bpf.LoadError, match=r"map 'calls' is a hash, not a ring buffer .*obj.maps\['calls'\]"):
        obj.events("calls")
    with pytest.raises(wasm_bpf.LoadError, match=r"no map named 'nope' \(maps: calls, percpu, hists, events, big, \.bss, \.data\)"):
        obj.events("nope")


def test_bad_globals_are_one_line_errors(obj_path):
    with pytest.raises(wasm_bpf.LoadError, match=r"no `const volatile` variable 'pid' \(variables: targ_tgid\)"):
        wasm_bpf.load(obj_path, globals={"pid": 1})
    with pytest.raises(wasm_bpf.LoadError, match=r"globals\['targ_tgid'\]: expected an integer"):
        wasm_bpf.load(obj_path, globals={"targ_tgid": "x"})
    with pytest.raises(wasm_bpf.LoadError, match="cannot read"):
        wasm_bpf.load("/nonexistent.bpf.o")


def test_close_gc_and_exceptions_leave_nothing_attached(obj_path):
    before = held_bpf_ids()
    o = wasm_bpf.load(obj_path, globals={"targ_tgid": ME})
    assert held_bpf_ids()[1] - before[1]  # links held
    o.close()
    o.close()
    assert held_bpf_ids() == before
    with pytest.raises(wasm_bpf.LoadError, match="closed"):
        o.programs["on_getsid"].attach()

    o = wasm_bpf.load(obj_path, globals={"targ_tgid": ME})
    o.events("events")
    del o
    gc.collect()
    assert held_bpf_ids() == before

    with pytest.raises(RuntimeError):
        with wasm_bpf.load(obj_path) as o:
            raise RuntimeError("boom")
    assert held_bpf_ids() == before

    with pytest.raises(wasm_bpf.LoadError, match=r"targets: no program named 'nope' \(programs: on_getpgid, on_getsid\)"):
        wasm_bpf.load(obj_path, targets={"nope": "eth0"})
    assert held_bpf_ids() == before


def test_attach_is_optional_and_a_package_loads(obj_path, tmp_path):
    with wasm_bpf.load(obj_path, globals={"targ_tgid": ME}, attach=False) as o:
        calls(2)
        assert o.bss.hits == 0 and not o.programs["on_getpgid"].attached
    pkg = tmp_path / "counters.json"
    subprocess.run([sys.executable, "-m", "wasm_bpf", "package", str(obj_path), "-o", str(pkg)], check=True)
    with wasm_bpf.load(pkg, globals={"targ_tgid": ME}) as o:
        calls(1)
        assert [r["seq"] for r in o.events("events").read()] == [0]


def test_dir_shows_the_api():
    names = dir(wasm_bpf)
    for name in ("load", "LoadedObject", "Map", "Histogram", "Events", "Program", "Variables", "run", "Instance"):
        assert name in names
    assert "TYPE_CHECKING" not in names


def test_the_docs_example_script_runs():
    proc = subprocess.run([sys.executable, str(ROOT / "docs" / "examples" / "python_api.py")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    lines = proc.stdout.splitlines()
    assert lines[:2] == ["exec true /bin/true 0", "exit true - 0"]
    assert "wake-ups, the most common latency" in lines[2]
    assert lines[3] == "               value : count    distribution"
