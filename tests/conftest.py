"""Shared test fixtures. The tests run as root against the real kernel."""
import contextlib
import os
import subprocess
import time
import uuid

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


def held_bpf_ids(pid: str = "self") -> tuple:
    """(program ids, link ids) of the BPF fds a process holds, from /proc/PID/fdinfo."""
    progs, links = set(), set()
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(f"{fd_dir}/{fd}")
            if target not in ("anon_inode:bpf-prog", "anon_inode:bpf_link"):
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                info = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:  # closed meanwhile
            continue
        if target == "anon_inode:bpf_link" and "link_id" in info:
            links.add(int(info["link_id"]))
        elif "prog_id" in info:
            progs.add(int(info["prog_id"]))
    return progs, links


def bpf_ids_held_by_other_processes() -> tuple:
    """(program ids, link ids) held through fds by live processes other than this one:
    what systemd or another tool on the machine loads meanwhile is not a leak."""
    progs, links = set(), set()
    me = str(os.getpid())
    for pid in os.listdir("/proc"):
        if pid.isdigit() and pid != me:
            try:
                p, l = held_bpf_ids(pid)
            except OSError:  # gone, or not ours to read
                continue
            progs |= p
            links |= l
    return progs, links


@pytest.fixture(autouse=True)
def no_bpf_leaks():
    """After every test, no BPF program or link the test created is left in the kernel:
    neither held by this process nor attached without an owner (a test's `wasm-bpf run`
    subprocess has exited by then, so what it leaked has no holder)."""
    if os.geteuid() != 0:
        pytest.skip("the tests load BPF programs: run them as root (sudo make test)")
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
def veth_pair(subnet: str, prefix: str):
    """A veth pair: SUBNET.1 on the host side, SUBNET.2 on the peer inside a new network
    namespace; yields (namespace, host interface). Both are removed afterwards."""
    tag = uuid.uuid4().hex[:6]
    ns, host, peer = f"{prefix}-{tag}", f"{prefix[:2]}{tag}a", f"{prefix[:2]}{tag}b"
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
