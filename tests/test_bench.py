"""The benchmark's short mode: every record triggered reaches each consumer (native
libbpf, wasm-bpf per record, wasm-bpf batches), exactly once and in order, in both
the drain (its rounds: each round's records within that round) and the streaming
set-up. Speed is measured by `make bench`, not here."""
import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import pytest

BENCH = Path(__file__).resolve().parents[1] / "bench" / "run.py"


@pytest.fixture(scope="module")
def bench_run():
    """bench/run.py as a module, its binaries built."""
    spec = importlib.util.spec_from_file_location("bench_run", BENCH)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    module.build()
    return module


def test_every_record_arrives_in_order_for_every_consumer():
    proc = subprocess.run([sys.executable, str(BENCH), "--short"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "every record arrived, in order, for every consumer" in proc.stdout


@pytest.mark.parametrize("consumer", ["native", "wasm-record", "wasm-batch", "rust-record", "rust-batch"])
def test_drain_rounds_deliver_each_round_whole_and_in_order(bench_run, consumer):
    """The drain figure's rounds: the driver fills the 256 KiB ring nearly full (63 calls
    x 64 = 4032 of the 4095 records it holds), the consumer drains it; every round's
    records arrive within that round, and all of them once and in order."""
    res = bench_run.run_drain(consumer, 12, 63)
    assert res["round_min"] == res["round_max"] == 63 * 64, res
    assert res["records"] == res["emitted"] == 12 * 63 * 64 and not res["out_of_order"] and not res["drops"], res
    assert res["rounds"] == 12 and res["seconds"] > 0, res


def test_drain_rounds_fail_when_a_round_overflows_the_ring(bench_run):
    """65 calls x 64 records do not fit the ring: the drops fail the run, not a figure."""
    with pytest.raises(AssertionError, match="drain/native"):
        bench_run.run_drain("native", 3, 65)


def test_report_puts_each_target_beside_the_measured_figure(tmp_path):
    def figure(rate, ratio):
        return {"median": rate, "min": rate, "max": rate, "runs": [rate], "drops": [0], "ratio_to_native": ratio}

    def seconds(s):
        return {"median": s, "min": s, "max": s, "runs": [s]}

    def streamed(ns, drops):
        return {**figure(8e6, 1.0), "drops": drops, "cpu_ns_per_record": seconds(ns)}

    results = {"drain": {"native": figure(200e6, 1.0), "wasm-record": figure(20e6, 0.10),
                         "wasm-batch": figure(100e6, 0.50), "rust-record": figure(30e6, 0.15),
                         "rust-batch": figure(60e6, 0.30)},
               "cold_start": {"native": seconds(0.070), "wasm-bpf": seconds(0.140)},
               "rss_mib": {"peak": 30.0, "idle": 20.0},
               "stream": {"native": streamed(50, [0]), "wasm-record": streamed(90, [0]),
                          "rust-record": streamed(90, [0, 3])},
               "hot_load": {"native load+attach+close": seconds(0.010), "wasm-bpf": seconds(0.012)}}
    saved = tmp_path / "results.json"
    saved.write_text(json.dumps(results))
    proc = subprocess.run([sys.executable, str(BENCH), "--report", str(saved)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    verdicts = {line.split("  ")[0]: line.split()[-1] for line in proc.stdout.splitlines()
                if line.endswith(("PASS", "MISS"))}
    assert verdicts == {"drain, C guest, per record": "MISS", "drain, C guest, per batch": "PASS",
                        "drain, Rust guest, per record": "PASS", "drain, Rust guest, per batch": "MISS",
                        "stream K=8, C guest, CPU/record": "PASS", "stream K=8, Rust guest, CPU/record": "MISS",
                        "second instance in a process": "PASS",
                        "cold start (run start.wasm)": "MISS", "idle RSS (run bootstrap.wasm)": "PASS"}
    assert "10.0 %" in proc.stdout and "+70.0 ms (native 70.0)" in proc.stdout and "20.0 MiB" in proc.stdout
    assert "1.80x (90 ns), drops 3" in proc.stdout and "+2.0 ms" in proc.stdout


def test_report_of_a_partial_run_leaves_out_the_unmeasured_rows(tmp_path):
    saved = tmp_path / "results.json"
    rate = {"median": 1e6, "min": 1e6, "max": 1e6, "runs": [1e6], "drops": [0], "ratio_to_native": 0.5}
    saved.write_text(json.dumps({"drain": {k: rate for k in ("native", "wasm-record", "wasm-batch", "rust-record",
                                                              "rust-batch")},
                                 "cold_start": {"native": {"median": 0.07, "min": 0.07, "max": 0.07},
                                                "wasm-bpf": {"median": 0.1, "min": 0.1, "max": 0.1}},
                                 "rss_mib": {"peak": 30.0, "idle": 20.0}}))
    proc = subprocess.run([sys.executable, str(BENCH), "--report", str(saved)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert "drain, C guest, per record" in proc.stdout and "stream K=8" not in proc.stdout
