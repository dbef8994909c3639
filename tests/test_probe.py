"""`wasm-bpf probe`: what this kernel supports, checked against what the tests see.
A kind the probe calls supported must attach (test_attach_matrix.py does it); here
the report's shape, its exit status, and a few facts every kernel with BPF has."""
import re
import subprocess
import sys

import pytest

from wasm_bpf import probe


def run(*args):
    return subprocess.run([sys.executable, "-m", "wasm_bpf", "probe", *args], capture_output=True, text=True,
                          timeout=60)


def test_report_lists_every_section():
    res = run()
    assert res.returncode == 0, res.stderr
    sections = re.findall(r"^(program types|attach kinds|map types):$", res.stdout, re.M)
    assert sections == ["program types", "attach kinds", "map types"], res.stdout
    rows = re.findall(r"^  (\S+)\s+(yes|no)(?:\s+\((.+)\))?$", res.stdout, re.M)
    assert len(rows) > 60, res.stdout
    assert all(reason for _, ok, reason in rows if ok == "no"), "every 'no' names a reason"
    assert not any(reason for _, ok, reason in rows if ok == "yes")
    found = {name: ok for name, ok, _ in rows}
    for always in ("socket_filter", "hash", "array", "ringbuf", "tracepoint", "xdp"):
        assert found[always] == "yes", always


@pytest.mark.parametrize("kind", sorted(probe.ATTACH_CHECKS))
def test_kind_exit_status_matches_the_module(kind):
    res = run("--kind", kind)
    reason = probe.unsupported_reason(kind)
    assert res.returncode == (1 if reason else 0), res.stdout + res.stderr
    assert res.stdout.strip() == (f"{kind}: no ({reason})" if reason else f"{kind}: yes")


@pytest.mark.unit
def test_unknown_kind_is_a_usage_error():
    res = run("--kind", "warp-drive")
    assert res.returncode == 2 and "unknown kind" in res.stderr


def test_refusals_carry_the_kernel_errno():
    reason = probe.unsupported_reason("fentry")
    if reason is None:
        pytest.skip("this kernel loads fentry programs")
    assert "BPF_PROG_LOAD" in reason and re.search(r"(not permitted|Invalid argument|not supported)", reason)
