"""The soak's short form (`make soak` runs it for 10 minutes): 20 s of the benchmark
producer at full rate into a ring buffer and a perf event array, each drained by
its own wasm-bpf host. The same criteria as the long run, read from its JSON
result: every record produced was delivered or counted as lost, exactly; both hosts
stop cleanly; neither host's RSS grows by 5 % or more after the warm-up."""
import json
import subprocess
import sys
from pathlib import Path

SOAK = Path(__file__).resolve().parents[1] / "bench" / "soak.py"


def test_short_soak_accounts_for_every_record_and_holds_its_memory(tmp_path):
    result = tmp_path / "soak.json"
    proc = subprocess.run([sys.executable, str(SOAK), "--seconds", "20", "--output", str(result)],
                          capture_output=True, text=True, timeout=300)
    assert result.exists(), proc.stdout + proc.stderr
    report = json.loads(result.read_text())
    assert set(report["buffers"]) == {"ring", "perf"}
    for name, buf in report["buffers"].items():
        assert buf["delivered"] > 0, (name, buf["delivered"])
        assert buf["produced"] == buf["delivered"] + buf["lost"], name
        assert buf["exit_code"] == 0 and buf["error"] == 0, name
        assert buf["rss"]["growth"] < 0.05, (name, buf["rss"])
    ring = report["buffers"]["ring"]
    assert ring["delivered"] == ring["emitted"] and ring["out_of_order"] == 0
    assert proc.returncode == 0, proc.stdout + proc.stderr
