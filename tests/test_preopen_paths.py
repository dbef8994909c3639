"""Host paths a guest names (cgroup directories, uprobe/USDT binaries) resolve only
inside the directories granted with --dir HOST[::GUEST] (RunConfig.dirs): a path
outside every grant, or one leaving its grant through `..` or a symlink, gives the
guest -EACCES, a message naming the path and the --dir that would grant it, and
nothing is attached."""
import os
import subprocess

import pytest

import wasm_bpf
from conftest import held_bpf_ids
from guests.build import guests
from guests.helpers import EACCES, LIBC_DIR, GuestThread, granted

PROBED = r"""
#include <stdio.h>
__attribute__((noinline)) int probe_target(int x) { __asm__ volatile("" ::: "memory"); return x + 1; }
int main(void) {
    int n = 0, sum = 0;
    if (scanf("%d", &n) != 1) return 1;
    for (int i = 0; i < n; i++) sum += probe_target(i);
    return sum == n * (n + 1) / 2 ? 0 : 2;
}
"""


@pytest.fixture(scope="module")
def probed(tmp_path_factory):
    d = tmp_path_factory.mktemp("granted")
    (d / "probed.c").write_text(PROBED)
    subprocess.run(["gcc", "-O1", "-o", d / "probed", d / "probed.c"], check=True)
    return d / "probed"


def attach(prog, target, config):
    """Runs the attach guest; returns (its attach result, host messages, links this
    process held while the guest ran)."""
    guest = GuestThread(guests()["attach"], [prog, target, 0], "attach", config=config)
    links = held_bpf_ids()[1]
    out = guest.stop()
    return out["attach"], guest.inst.messages, links


def test_a_binary_inside_the_grant_is_probed_under_its_guest_name(probed):
    child = subprocess.Popen([probed], stdin=subprocess.PIPE, text=True)
    try:
        config = wasm_bpf.RunConfig(dirs=[(str(probed.parent), "/app")])
        guest = GuestThread(guests()["attach"], ["on_uprobe", "/app/probed:probe_target", child.pid], "attach",
                            config=config)
        assert guest.out["attach"] == 0, guest.inst.messages
        child.communicate("4\n", timeout=20)
        out = guest.stop()
    finally:
        child.kill()
        child.wait()
    assert out["entries"] == 4, out


@pytest.mark.parametrize("target,expected", [
    ("{exe}:probe_target", "outside every directory granted to the module (granted: --dir {grant}::/app); "
                           "grant it with --dir {dir}"),
    ("/app/../../../../{exe}:probe_target", "leads out of --dir {grant}::/app (through '..' or a symlink)"),
    ("/app/link:probe_target", "leads out of --dir {grant}::/app (through '..' or a symlink)"),
    ("/app/rellink:probe_target", "leads out of --dir {grant}::/app (through '..' or a symlink)"),
    ("libc.so.6:getppid", "library 'libc.so.6' is outside every directory granted to the module "
                          "(granted: --dir {grant}::/app); grant it with --dir " + LIBC_DIR),
], ids=["absolute-outside", "dotdot", "absolute-symlink", "relative-symlink", "library-not-granted"])
def test_a_binary_outside_its_grant_is_refused(probed, tmp_path, target, expected):
    grant = tmp_path / "grant"
    grant.mkdir()
    (grant / "link").symlink_to(probed)
    (grant / "rellink").symlink_to(os.path.relpath(probed, grant))
    config = wasm_bpf.RunConfig(dirs=[(str(grant), "/app")])
    exe = str(probed).lstrip("/") if ".." in target else str(probed)
    rc, messages, links = attach("on_uprobe", target.format(exe=exe), config)
    assert rc == -EACCES, messages
    assert links == set(), "something was attached"
    assert any(expected.format(grant=grant, dir=probed.parent) in m for m in messages), messages


def test_a_binary_in_the_section_name_is_confined_too(tmp_path):
    rc, messages, links = attach("on_sec_uprobe", "-", granted(tmp_path))
    assert rc == -EACCES and links == set(), messages
    assert any("binary '/usr/bin/true' is outside every directory granted" in m for m in messages), messages


def test_a_library_name_is_found_in_a_granted_directory():
    rc, messages, links = attach("on_uprobe", "libc.so.6:getppid", granted(LIBC_DIR))
    assert rc == 0 and len(links) == 1, messages


@pytest.mark.parametrize("target,dirs,expected", [
    ("{cgroup}", ["/tmp"], "cgroup '{cgroup}' is outside every directory granted"),
    ("{cgroup}/../../../../etc", ["{root}"], "leads out of --dir {root}"),
    ("{name}", ["/tmp"], "'{name}' (relative to the cgroup v2 root {root}) is outside every directory granted"),
], ids=["outside", "dotdot", "relative-without-root"])
def test_a_cgroup_outside_its_grant_is_refused(cgroup, target, dirs, expected):
    root, name = os.path.dirname(cgroup), os.path.basename(cgroup)
    fill = lambda s: s.format(cgroup=cgroup, root=root, name=name)  # noqa: E731
    rc, messages, links = attach("on_egress", fill(target), granted(*map(fill, dirs)))
    assert rc == -EACCES, messages
    assert links == set(), "something was attached"
    assert any(fill(expected) in m for m in messages), messages


def test_a_cgroup_under_its_guest_name(cgroup):
    config = wasm_bpf.RunConfig(dirs=[(os.path.dirname(cgroup), "/cg")])
    rc, messages, links = attach("on_egress", "/cg/" + os.path.basename(cgroup), config)
    assert rc == 0 and len(links) == 1, messages


def test_no_grant_no_host_path(cgroup):
    rc, messages, _ = attach("on_egress", cgroup, None)
    assert rc == -EACCES
    assert any("(granted: none); grant it with --dir " + cgroup in m for m in messages), messages
