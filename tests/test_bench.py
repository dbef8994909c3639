"""The benchmark's short mode: every record triggered reaches each consumer (native
libbpf, wasm-bpf per record, wasm-bpf batches), exactly once and in order, in both
the drain and the streaming set-up. Speed is measured by `make bench`, not here."""
import subprocess
import sys
from pathlib import Path

BENCH = Path(__file__).resolve().parents[1] / "bench" / "run.py"


def test_every_record_arrives_in_order_for_every_consumer():
    proc = subprocess.run([sys.executable, str(BENCH), "--short"], capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert "every record arrived, in order, for every consumer" in proc.stdout
