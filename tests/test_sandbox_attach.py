"""Attacks on the attach path (docs/sandbox.md, "Attach targets"): a target is parsed
once and the check and the attach use the same value; a checked host file is opened
once and attached through that fd; a guest filters only the host sockets handed to
it; programs are governed by their real program type and the helpers they call.
Each attack asserts what got attached (events counted from the binary outside the
grant, or none) and the error the guest saw."""
import errno
import json
import os
import shutil
import socket
import subprocess
import threading
import time
from pathlib import Path

import pytest

import wasm_bpf
from fuzz.common import CLANG
from guests.helpers import EACCES, EINVAL
from test_attach_matrix import Guest, link_wasm, probed_exe  # noqa: F401 (fixtures)
from wasm_bpf.errors import HostCallError
from wasm_bpf.bpf_object import BpfObject
from wasm_bpf.objspec import open_object
from wasm_bpf.policy import Policy, PolicyRefusal
from wasm_bpf.sandbox import Sandbox
from wasm_bpf._native import ffi, lib


@pytest.fixture
def tree(tmp_path, probed_exe):
    """tmp/grant (granted; holds `a,b:c/probed` and `probed`) and tmp/outside/probed."""
    grant, outside = tmp_path / "grant", tmp_path / "outside"
    (grant / "a,b:c").mkdir(parents=True)
    outside.mkdir()
    for where in (grant / "a,b:c", grant, outside):
        shutil.copy(probed_exe, where / "probed")
    return grant, outside


def probe(wasm, prog, target, run_exe, grant):
    """Attaches `prog` to `target` with `grant` granted, runs `run_exe` (7 probe hits)
    and returns (the attach result, the events counted from that process)."""
    child = subprocess.Popen([run_exe], stdin=subprocess.PIPE, text=True)
    try:
        guest = Guest(wasm, child.pid, "run", (prog, target), dirs=[grant])
        child.communicate("7\n", timeout=20)
        out = guest.stop()
    finally:
        child.kill()
        child.wait()
    return out["link0"], out[prog.removeprefix("on_")], guest.inst.messages


SPECS = {"on_uprobe": "probe_target", "on_usdt": "wasmbpf:tick"}


@pytest.mark.parametrize("prog", sorted(SPECS))
def test_a_binary_in_a_directory_named_with_comma_and_colon_attaches(link_wasm, tree, prog):
    grant, _ = tree
    link, count, messages = probe(link_wasm, prog, f"{grant}/a,b:c/probed:{SPECS[prog]}",
                                  grant / "a,b:c" / "probed", grant)
    assert link > 0 and count == 7, messages


@pytest.mark.parametrize("prog", sorted(SPECS))
@pytest.mark.parametrize("via", ["a,b:c/../../outside/probed", "a,b:c/../../outside/probed,x"])
def test_a_comma_directory_does_not_lead_out_of_the_grant(link_wasm, tree, prog, via):
    """The finding: the sandbox split at the first ',', the attach at the last ':', so
    the attach probed tmp/outside/probed, outside every grant."""
    grant, outside = tree
    link, count, messages = probe(link_wasm, prog, f"{grant}/{via}:{SPECS[prog]}", outside / "probed", grant)
    assert count == 0, messages
    if via.endswith(",x"):  # ",x" is no option: part of the path, which does not exist
        assert link < 0, messages
    else:
        assert link == -EACCES and "leads out of --dir" in messages[-1], messages


def test_a_path_holding_an_option_is_refused_as_ambiguous(link_wasm, tree):
    grant, _ = tree
    (grant / "d,pid=1").mkdir()
    shutil.copy(grant / "probed", grant / "d,pid=1" / "probed")
    link, count, messages = probe(link_wasm, "on_uprobe", f"{grant}/d,pid=1/probed:probe_target",
                                  grant / "d,pid=1" / "probed", grant)
    assert (link, count) == (-EINVAL, 0) and "is ambiguous: ',pid=' inside it" in messages[-1], messages


@pytest.mark.parametrize("link_to", ["absolute", "relative"])
def test_a_symlink_out_of_the_grant_is_refused(link_wasm, tree, link_to):
    grant, outside = tree
    (grant / "out").symlink_to(outside / "probed" if link_to == "absolute" else "../outside/probed")
    link, count, messages = probe(link_wasm, "on_uprobe", f"{grant}/out:probe_target", outside / "probed", grant)
    assert (link, count) == (-EACCES, 0), messages


@pytest.fixture
def swap_after_check(monkeypatch, tree):
    """Right after the policy check (the file is open), grant/probed is renamed to
    grant/checked and replaced by a symlink to tmp/outside/probed."""
    grant, outside = tree
    check = Policy.check_attach

    def check_then_swap(self, *args, **kwargs):
        check(self, *args, **kwargs)
        os.rename(grant / "probed", grant / "checked")
        (grant / "probed").symlink_to(outside / "probed")
    monkeypatch.setattr(Policy, "check_attach", check_then_swap)
    return tree


@pytest.mark.parametrize("run,expected", [("outside/probed", 0), ("grant/probed", 7)])  # run before the swap
def test_a_symlink_swapped_after_the_check_does_not_redirect_the_attach(link_wasm, swap_after_check, run,
                                                                         expected):
    grant, _ = swap_after_check
    link, count, messages = probe(link_wasm, "on_uprobe", f"{grant}/probed:probe_target", grant.parent / run, grant)
    assert link > 0 and count == expected, messages


def test_a_grant_replaced_after_the_start_is_not_followed(link_wasm, tree, monkeypatch):
    """The grant itself swapped for a symlink to another directory once the guest
    runs: paths are looked up from the directory opened at the start, not by name."""
    grant, outside = tree
    from wasm_bpf.hostpaths import HostPaths
    open_binary = HostPaths.open_binary

    def swap_then_open(self, name):
        os.rename(grant, grant.with_name("granted-at-start"))
        grant.symlink_to(outside)
        return open_binary(self, name)
    monkeypatch.setattr(HostPaths, "open_binary", swap_then_open)
    link, count, messages = probe(link_wasm, "on_uprobe", f"{grant}/probed:probe_target", outside / "probed", grant)
    assert count == 0, messages
    assert link > 0, messages  # the file of the grant opened at the start (now granted-at-start/probed)


# ---- sockets --------------------------------------------------------------------------
def socket_guest(wasm, sock_fd, sockets):
    guest = Guest(wasm, os.getpid(), "detach", ("on_socket", f"{os.getpid()}:{sock_fd}"), sockets=sockets)
    out = guest.stop()
    return out["link0"], guest.inst.messages


def test_a_guest_cannot_filter_the_hosts_own_socket(link_wasm):
    """The embedding application's socket, named by the host's pid and its fd: the
    default policy let any guest attach (and detach) a filter on it."""
    mine = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        link, messages = socket_guest(link_wasm, mine.fileno(), ())
    finally:
        mine.close()
    assert link == -EACCES, messages
    assert "is the host's own and was not handed to the module" in messages[-1], messages


def test_a_granted_socket_attaches(link_wasm):
    granted = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        link, messages = socket_guest(link_wasm, granted.fileno(), [granted])
    finally:
        granted.close()
    assert link > 0, messages


def test_a_grant_is_the_socket_not_its_fd_number(bpf_object):
    """A granted socket closed and its fd number reused by another socket: the new
    one was not granted."""
    granted = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sandbox, number = Sandbox(dirs=(), sockets=[granted]), granted.fileno()
    granted.close()
    other = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    obj = open_object(ffi.from_buffer(bpf_object))
    try:
        assert other.fileno() == number
        prog = lib.bpf_object__find_program_by_name(obj, b"sock")
        with pytest.raises(HostCallError) as refused:
            with sandbox.attach_target("sock", prog, f"{os.getpid()}:{number}"):
                pass
        assert refused.value.errno == errno.EACCES, refused.value
    finally:
        lib.bpf_object__close(obj)
        other.close()


# ---- program types and helpers ----------------------------------------------------------
BPF_SOURCE = r"""
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";
static __attribute__((noinline)) int hidden(void) { return bpf_send_signal(9); }
SEC("ksyscall/getppid") int on_ksyscall(void *ctx) { return 0; }
SEC("tp/syscalls/sys_enter_getppid") int signals(void *ctx) { return bpf_send_signal(9); }
SEC("tp/syscalls/sys_enter_getpid") int signals_in_a_subprogram(void *ctx) { return hidden(); }
SEC("tp/syscalls/sys_enter_gettid") int harmless(void *ctx) { return bpf_get_prandom_u32() & 0; }
SEC("socket") int sock(void *ctx) { return 0; }
"""


@pytest.fixture(scope="module")
def bpf_object(tmp_path_factory):
    d = tmp_path_factory.mktemp("helpers")
    (d / "p.bpf.c").write_text(BPF_SOURCE)
    subprocess.run([CLANG, "-g", "-O2", "-target", "bpf", "-I/usr/include/x86_64-linux-gnu", "-c",
                    d / "p.bpf.c", "-o", d / "p.bpf.o"], check=True)
    return (d / "p.bpf.o").read_bytes()


def load(elf, policy, only, dirs=()):
    """Loads program `only` of the object for a guest (dirs: its grants) or, with dirs
    None, for the host itself (a kernel-only run)."""
    others = ["on_ksyscall", "signals", "signals_in_a_subprogram", "harmless", "sock"]
    return BpfObject(elf, no_load=[p for p in others if p != only], sandbox=Sandbox(policy, dirs=dirs))


@pytest.mark.parametrize("prog", ["signals", "signals_in_a_subprogram"])
def test_a_helper_acting_outside_tracing_needs_its_name_in_the_policy(bpf_object, tmp_path, prog):
    with pytest.raises(PolicyRefusal) as refused:
        load(bpf_object, None, prog)
    assert str(refused.value) == (f"policy (built-in default): program '{prog}' calls bpf_send_signal, which acts "
                                  "outside tracing and is allowed only by name; add \"bpf_send_signal\" to "
                                  "[helpers] allowed to allow it")
    allowed = Policy.parse('[helpers]\nallowed = ["*", "bpf_send_signal"]\n', "p.toml")
    load(bpf_object, allowed, prog).close()
    load(bpf_object, None, prog, dirs=None).close()  # the host's own object calls any helper
    only_listed = Policy.parse('[helpers]\nallowed = ["bpf_send_signal"]\n', "p.toml")
    with pytest.raises(PolicyRefusal, match="program 'harmless' helper bpf_get_prandom_u32 is not in "
                                            r"\[helpers\] allowed"):
        load(bpf_object, only_listed, "harmless")


def test_the_default_policy_reads_no_helper_names(bpf_object, monkeypatch):
    """Under a policy whose [helpers] holds "*" only the helpers allowed by name alone
    matter, and their ids are the UAPI's: a run does not parse the kernel's BTF (issue
    19, cold start). A list of names still reads them."""
    import wasm_bpf.helpers

    def no_btf():
        raise AssertionError("the helper names were read from the kernel's BTF")

    monkeypatch.setattr(wasm_bpf.helpers, "helper_names", no_btf)
    load(bpf_object, None, "harmless").close()
    load(bpf_object, Policy.parse('[helpers]\nallowed = ["*", "bpf_send_signal"]\n', "p.toml"), "signals").close()
    with pytest.raises(PolicyRefusal, match="program 'signals' calls bpf_send_signal, which acts outside tracing"):
        load(bpf_object, None, "signals")
    with pytest.raises(AssertionError, match="kernel's BTF"):
        load(bpf_object, Policy.parse('[helpers]\nallowed = ["bpf_get_prandom_u32"]\n', "p.toml"), "harmless")


def test_ksyscall_is_governed_by_the_kprobe_rule(bpf_object):
    """SEC("ksyscall/...") loads as a kprobe: a policy without kprobes refuses it,
    where it was classified "auto" and let through."""
    buf = ffi.from_buffer(bpf_object)
    obj = open_object(buf)
    try:
        prog = lib.bpf_object__find_program_by_name(obj, b"on_ksyscall")
        sandbox = Sandbox(Policy.parse('[attach]\nkinds = ["auto", "iter", "uprobe"]\n', "p.toml"), dirs=())
        with pytest.raises(PolicyRefusal, match="program 'on_ksyscall' attach kind kprobe is not in"):
            with sandbox.attach_target("on_ksyscall", prog, ""):
                pass
    finally:
        lib.bpf_object__close(obj)


def test_a_malformed_target_is_an_error_before_any_check(bpf_object):
    buf = ffi.from_buffer(bpf_object)
    obj = open_object(buf)
    try:
        prog = lib.bpf_object__find_program_by_name(obj, b"signals")
        with pytest.raises(HostCallError, match="takes no attach target"):
            with Sandbox(dirs=()).attach_target("signals", prog, "/etc/passwd:main"):
                pass
    finally:
        lib.bpf_object__close(obj)


def test_policy_template_lists_the_helpers(bpf_object, tmp_path):
    path = tmp_path / "p.bpf.o"
    path.write_bytes(bpf_object)
    out = subprocess.run(["wasm-bpf", "inspect", "--policy-template", str(path)], capture_output=True, text=True,
                         check=True).stdout
    assert '[helpers]\nallowed = ["bpf_get_prandom_u32", "bpf_send_signal"]' in out, out
    shown = subprocess.run(["wasm-bpf", "inspect", str(path)], capture_output=True, text=True, check=True).stdout
    assert "on_ksyscall              ksyscall/getppid                 kprobe           kprobe" in shown, shown
    assert "helpers: bpf_send_signal" in shown, shown
    report = json.loads(subprocess.run(["wasm-bpf", "inspect", "--json", str(path)], capture_output=True, text=True,
                                       check=True).stdout)
    helpers = {p["name"]: p["helpers"] for p in report["objects"][0]["programs"]}
    assert helpers["signals_in_a_subprogram"] == ["bpf_send_signal"] and helpers["on_ksyscall"] == [], helpers
    Path(tmp_path / "policy.toml").write_text(out.replace("<INTERFACE>", "lo"))
    Policy.load(tmp_path / "policy.toml")  # the template is a valid policy once filled in


def test_no_process_rule_reaches_the_hosts_own_sockets(bpf_object):
    """[attach] processes = ["*"] allows other processes' sockets, never the host's:
    not by its pid, nor by the id of one of its threads."""
    policy = Policy.parse('[attach]\nprocesses = ["*"]\n', "p.toml")
    mine = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    obj = open_object(ffi.from_buffer(bpf_object))
    done, thread_ids = threading.Event(), []
    thread = threading.Thread(target=lambda: (thread_ids.append(threading.get_native_id()), done.wait(10)))
    thread.start()
    try:
        while not thread_ids:
            time.sleep(0.01)
        prog = lib.bpf_object__find_program_by_name(obj, b"sock")
        for pid in (os.getpid(), thread_ids[0]):
            with pytest.raises(HostCallError) as refused:
                with Sandbox(policy, dirs=()).attach_target("sock", prog, f"{pid}:{mine.fileno()}"):
                    pass
            assert refused.value.errno in (errno.EACCES, errno.ENOENT), refused.value  # ENOENT: no pidfd of a thread
    finally:
        done.set()
        thread.join()
        lib.bpf_object__close(obj)
        mine.close()
