"""Shared test fixtures. The tests run as root against the real kernel."""
import json
import os
import subprocess
import time

import pytest

from wasm_bpf._shim import ffi, lib


def _kernel_ids(next_id) -> set:
    ids, start, cur = set(), 0, ffi.new("uint32_t *")
    while next_id(start, cur) == 0:
        ids.add(cur[0])
        start = cur[0]
    return ids


def bpf_program_ids() -> set:
    return _kernel_ids(lib.bpf_prog_get_next_id)


def bpf_link_ids() -> set:
    return _kernel_ids(lib.bpf_link_get_next_id)


def _foreign(prog_ids: set) -> set:
    """Programs systemd attaches to cgroups on its own (names sd_*): not ours."""
    foreign = set()
    for prog_id in prog_ids:
        out = subprocess.run(["bpftool", "-j", "prog", "show", "id", str(prog_id)],
                             capture_output=True, text=True)
        if out.returncode == 0 and json.loads(out.stdout).get("name", "").startswith("sd_"):
            foreign.add(prog_id)
    return foreign


@pytest.fixture(autouse=True)
def no_bpf_leaks():
    """After every test, no BPF program or link the test created is left in the kernel."""
    if os.geteuid() != 0:
        pytest.skip("the tests load BPF programs: run them as root (sudo make test)")
    progs, links = bpf_program_ids(), bpf_link_ids()
    yield
    # The kernel frees programs after an RCU grace period: give it a moment.
    deadline = time.monotonic() + 3
    while True:
        new_progs, new_links = bpf_program_ids() - progs, bpf_link_ids() - links
        new_progs -= _foreign(new_progs)
        if not (new_progs or new_links) or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    assert not new_links, f"BPF links left attached after the test: {sorted(new_links)}"
    assert not new_progs, f"BPF programs left loaded after the test: {sorted(new_progs)}"
