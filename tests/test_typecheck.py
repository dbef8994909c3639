"""The host package type-checks: mypy with the configuration in pyproject.toml."""
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

pytestmark = pytest.mark.unit


def test_mypy_is_clean_on_the_host_package(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "mypy", "--cache-dir", str(tmp_path / "cache"), "runtime/wasm_bpf"],
                          cwd=ROOT, capture_output=True, text=True)
    assert "No module named mypy" not in proc.stderr, "mypy is not installed: make install"
    assert proc.returncode == 0, proc.stdout + proc.stderr


# The public API (what `import wasm_bpf` offers) and the docs' example script that uses it.
PUBLIC = ["__init__", "objects", "mapview", "events", "hostfuncs", "module", "instance", "errors"]


def test_mypy_strict_is_clean_on_the_public_api_and_its_example(tmp_path):
    files = [f"runtime/wasm_bpf/{m}.py" for m in PUBLIC] + ["docs/examples/python_api.py"]
    proc = subprocess.run([sys.executable, "-m", "mypy", "--strict", "--follow-imports=silent",
                           "--cache-dir", str(tmp_path / "cache"), *files],
                          cwd=ROOT, capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr
