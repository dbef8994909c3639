"""Attach targets a guest can name (host_abi/ABI.md, wasm_attach_bpf_program):
uprobes by "binary:function" and cgroup programs by cgroup path, checked by the
events they deliver. Auto-attach and XDP are covered in test_abi.py."""
import os
import socket
import subprocess
import sys
import time
import uuid

import pytest

from guests.build import guests
from guests.helpers import EINVAL, ENOENT, LIBC_DIR, GuestThread, granted


@pytest.fixture(scope="module")
def attach_wasm():
    return guests()["attach"]


def Running(wasm, prog, target, pid=0, dirs=()):
    """The attach guest: attaches `prog` to `target` ("-" = NULL) for events of `pid`,
    with the host directories `dirs` granted."""
    return GuestThread(wasm, [prog, target or "-", pid], "attach", config=granted(*dirs))


@pytest.mark.parametrize("prog,kind", [("on_uprobe", "entries"), ("on_uretprobe", "returns")])
def test_uprobe_on_a_shared_library_function(attach_wasm, prog, kind):
    guest = Running(attach_wasm, prog, "libc.so.6:getppid", os.getpid(), dirs=[LIBC_DIR])
    assert guest.out["attach"] == 0, guest.inst.messages
    for _ in range(5):
        os.getppid()  # CPython calls libc's getppid()
    time.sleep(0.3)
    out = guest.stop()
    assert (out["records"], out[kind], out["probe_hits"]) == (5, 5, 5), out


PROBED_PROGRAM = r"""
#include <stdio.h>
__attribute__((noinline)) int probe_target(int x) { __asm__ volatile("" ::: "memory"); return x + 1; }
int main(void) {
    int n = 0, sum = 0;
    if (scanf("%d", &n) != 1) return 1;  /* wait until the probe is attached */
    for (int i = 0; i < n; i++) sum += probe_target(i);
    return sum == n * (n + 1) / 2 ? 0 : 2;
}
"""


def test_uprobe_on_an_executable_by_path(attach_wasm, tmp_path):
    src, exe = tmp_path / "probed.c", tmp_path / "probed"
    src.write_text(PROBED_PROGRAM)
    subprocess.run(["gcc", "-O1", "-o", exe, src], check=True)
    child = subprocess.Popen([exe], stdin=subprocess.PIPE, text=True)
    try:
        guest = Running(attach_wasm, "on_uprobe", f"{exe}:probe_target", child.pid, dirs=[tmp_path])
        assert guest.out["attach"] == 0, guest.inst.messages
        child.communicate("7\n", timeout=20)
        assert child.returncode == 0
        time.sleep(0.3)
        out = guest.stop()
    finally:
        child.kill()
    assert (out["records"], out["entries"], out["probe_hits"]) == (7, 7, 7), out


@pytest.mark.parametrize("target,expected", [
    ("no-colon", -EINVAL),
    ("libc.so.6:", -EINVAL),
    ("libc.so.6:no_such_function_in_libc", -ENOENT),
])
def test_bad_uprobe_targets(attach_wasm, target, expected):
    guest = Running(attach_wasm, "on_uprobe", target, dirs=[LIBC_DIR])
    assert guest.out["attach"] == expected, guest.inst.messages
    guest.stop()


def send_udp_from(cgroup_path, count):
    """Sends `count` UDP datagrams to a local socket from a child process in the cgroup."""
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    port = sink.getsockname()[1]
    code = ("import socket,sys; s=socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            f"[s.sendto(b'x', ('127.0.0.1', {port})) for _ in range({count})]")
    child = subprocess.Popen([sys.executable, "-c", f"import time; time.sleep(0.2)\n{code}"])
    with open(os.path.join(cgroup_path, "cgroup.procs"), "w") as procs:
        procs.write(str(child.pid))
    assert child.wait(20) == 0
    sink.settimeout(5)
    received = sum(1 for _ in range(count) if sink.recv(16))
    sink.close()
    return received


@pytest.mark.parametrize("relative", [False, True], ids=["absolute-path", "relative-to-cgroup2-root"])
def test_cgroup_skb_counts_egress_of_the_cgroup(attach_wasm, cgroup, relative):
    path = cgroup
    root = os.path.dirname(path)
    guest = Running(attach_wasm, "on_egress", os.path.basename(path) if relative else path, dirs=[root])
    assert guest.out["attach"] == 0, guest.inst.messages
    assert send_udp_from(path, 5) == 5
    out = guest.stop()
    assert out["egress_packets"] == 5, out


def test_sockops_with_the_upstream_cgroup_path(attach_wasm):
    # Upstream's sockops example passes "/sys/fs/cgroup/"; on a hybrid layout that is
    # not cgroup v2, and the host takes it as the v2 root (inside the same grant).
    guest = Running(attach_wasm, "on_sockops", "/sys/fs/cgroup/", dirs=["/sys/fs/cgroup"])
    assert guest.out["attach"] == 0, guest.inst.messages
    guest.stop()


def test_missing_cgroup_is_enoent(attach_wasm):
    guest = Running(attach_wasm, "on_egress", f"/sys/fs/cgroup/unified/no-such-{uuid.uuid4().hex}",
                    dirs=["/sys/fs/cgroup"])
    assert guest.out["attach"] == -ENOENT
    assert any("cgroup" in m for m in guest.inst.messages), guest.inst.messages
    guest.stop()
