"""Shared test fixtures. The tests run as root against the real kernel, except those
marked `unit` (`make test-unit`): kernel-free, they run as any user and need no
example built."""
import contextlib
import os
import subprocess
import sys
import time
import uuid
from pathlib import Path

import pytest


# One implementation of "which BPF programs and links exist, and who holds them",
# shared with the fuzzers (fuzz/common.py), split here into (program ids, link ids).
sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from fuzz.common import held_bpf_fds, held_by_others, kernel_bpf_ids  # noqa: E402


def _split(tagged: set) -> tuple:
    return {i for kind, i in tagged if kind == "prog"}, {i for kind, i in tagged if kind == "link"}


def bpf_program_ids() -> set:
    return _split(kernel_bpf_ids())[0]


def bpf_link_ids() -> set:
    return _split(kernel_bpf_ids())[1]


def held_bpf_ids(pid: str = "self") -> tuple:
    """(program ids, link ids) of the BPF fds a process holds, from /proc/PID/fdinfo."""
    return _split(held_bpf_fds(pid))


def bpf_ids_held_by_other_processes() -> tuple:
    """(program ids, link ids) held through fds by live processes other than this one:
    what systemd or another tool on the machine loads meanwhile is not a leak."""
    return _split(held_by_others())


@pytest.fixture(autouse=True)
def no_bpf_leaks(request):
    """After every test, no BPF program or link the test created is left in the kernel:
    neither held by this process nor attached without an owner (a test's `wasm-bpf run`
    subprocess has exited by then, so what it leaked has no holder). Unit tests load
    nothing."""
    if request.node.get_closest_marker("unit"):
        yield
        return
    if os.geteuid() != 0:
        pytest.skip("the tests load BPF programs: run them as root (make test as root, or sudo make test)")
    progs, links = bpf_program_ids(), bpf_link_ids()
    yield

    def leaked() -> tuple:
        other_progs, other_links = bpf_ids_held_by_other_processes()
        return bpf_program_ids() - progs - other_progs, bpf_link_ids() - links - other_links

    # The kernel frees programs after an RCU grace period: give it a moment.
    deadline = time.monotonic() + 3
    new_progs, new_links = leaked()
    while (new_progs or new_links) and time.monotonic() < deadline:
        time.sleep(0.05)
        new_progs, new_links = leaked()
    assert not new_links, f"BPF links left attached after the test: {sorted(new_links)}"
    assert not new_progs, f"BPF programs left loaded after the test: {sorted(new_progs)}"


@pytest.fixture
def cgroup():
    """A new child cgroup v2 directory (its path), removed after the test."""
    from wasm_bpf.attach import cgroup2_mount

    root = cgroup2_mount()
    if root is None:
        pytest.skip("cgroup v2 is not mounted (mount -t cgroup2 none /sys/fs/cgroup/unified)")
    path = os.path.join(root, f"wasm-bpf-test-{uuid.uuid4().hex[:8]}")
    os.mkdir(path)
    try:
        yield path
    finally:
        os.rmdir(path)


@contextlib.contextmanager
def veth_pair(subnet: str, prefix: str, if_prefix: str = ""):
    """A veth pair: SUBNET.1 on the host side, SUBNET.2 on the peer inside a new network
    namespace; yields (namespace, host interface). Both are removed afterwards. The
    interfaces' names start with if_prefix (default: prefix's first two letters)."""
    tag = uuid.uuid4().hex[:6]
    short = if_prefix or prefix[:2]
    ns, host, peer = f"{prefix}-{tag}", f"{short}{tag}a", f"{short}{tag}b"
    cmds = [["ip", "netns", "add", ns], ["ip", "link", "add", host, "type", "veth", "peer", "name", peer],
            ["ip", "link", "set", peer, "netns", ns], ["ip", "addr", "add", f"{subnet}.1/24", "dev", host],
            ["ip", "link", "set", host, "up"], ["ip", "-n", ns, "addr", "add", f"{subnet}.2/24", "dev", peer],
            ["ip", "-n", ns, "link", "set", peer, "up"], ["ip", "-n", ns, "link", "set", "lo", "up"]]
    try:
        for cmd in cmds:
            subprocess.run(cmd, check=True, capture_output=True)
        yield ns, host
    finally:
        subprocess.run(["ip", "netns", "del", ns], capture_output=True)
        subprocess.run(["ip", "link", "del", host], capture_output=True)
