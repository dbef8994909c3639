"""One test (or a skip naming the kernel's refusal) per row of the attach table in
host_abi/ABI.md, through the wasm_bpf_ext link imports: each program of
guests/matrix.bpf.c counts its events, the guest attaches it with
wasm_bpf_attach_link, and the test triggers the event and checks the count.
Detaching is checked both by counts (nothing counted after wasm_bpf_link_destroy)
and by the kernel's state (no XDP program, tc filter or clsact qdisc left)."""
import errno
import os
import socket
import subprocess
import sys
import time

import pytest

from conftest import veth_pair
from guests.build import TRAMP_KINDS, guests
from guests.helpers import EACCES, EBADF, EINVAL, ENODEV, ENOENT, GuestThread, granted, run_in_cgroup
from wasm_bpf.attach.targets import Kprobe, NoTarget, parse
from wasm_bpf.errors import HostCallError
from wasm_bpf.probe import unsupported_reason

USDT_PROGRAM = r"""
#include <stdio.h>
#include <sys/sdt.h>
__attribute__((noinline)) int probe_target(int x) { __asm__ volatile("" ::: "memory"); return x + 1; }
int main(void) {
    int n = 0, sum = 0;
    if (scanf("%d", &n) != 1) return 1;  /* wait until the probes are attached */
    for (int i = 0; i < n; i++) { sum += probe_target(i); DTRACE_PROBE2(wasmbpf, tick, 2, 4); }
    return sum == n * (n + 1) / 2 ? 0 : 2;
}
"""


@pytest.fixture(scope="module")
def link_wasm():
    return guests()["link"]


def skip_unless_supported(kind):
    reason = unsupported_reason(kind)
    if reason:
        pytest.skip(f"{kind}: {reason}")


class Guest(GuestThread):
    """The link guest: attaches (prog, target) pairs for events of `pid`, in `mode`."""

    def __init__(self, wasm, pid, mode, *pairs, dirs=(), sockets=()):
        args = [pid, mode]
        for prog, target in pairs:
            args += [prog, target or "-"]
        config = granted(*dirs)
        config.sockets = sockets
        super().__init__(wasm, args, "ready", config=config)

    def stop(self):
        out = super().stop()
        assert out["close"] == 0 and out["lookup"] == 0, out
        return out


def run_guest(wasm, pairs, trigger, pid=None, mode="run", dirs=(), sockets=()):
    guest = Guest(wasm, os.getpid() if pid is None else pid, mode, *pairs, dirs=dirs, sockets=sockets)
    try:
        links = [guest.out.get(f"link{i}") for i in range(len(pairs))]
        assert all(isinstance(h, int) and h > 0 for h in links), (links, guest.inst.messages)
        trigger()
        time.sleep(0.1)
    finally:
        out = guest.stop()
    if mode in ("run", "again"):
        assert all(out[f"destroy{i}"] == 0 for i in range(len(pairs))), out
    assert out["destroy_again"] == -EINVAL, out
    return out


def getppid_times(n):
    return lambda: [os.getppid() for _ in range(n)]


# ---- tracing ----------------------------------------------------------------------------
@pytest.mark.parametrize("prog,counter", [("on_tp", "tp"), ("on_raw_tp", "raw_tp"), ("on_tp_btf", "tp_btf")])
def test_tracepoints_auto_attach(link_wasm, prog, counter):
    out = run_guest(link_wasm, [(prog, None)], getppid_times(5))
    assert out[counter] == 5, out


def test_destroyed_link_sees_nothing(link_wasm):
    out = run_guest(link_wasm, [("on_tp", None)], getppid_times(5), mode="detach")
    assert out["destroy0"] == 0 and out["tp"] == 0, out


def test_links_attach_and_detach_repeatedly(link_wasm):
    out = run_guest(link_wasm, [("on_tp", None), ("on_raw_tp", None)], getppid_times(3), mode="again")
    assert out["again0"] > 0 and out["again1"] > 0 and out["again0"] != out["link0"], out
    assert (out["tp"], out["raw_tp"]) == (3, 3), out


@pytest.fixture(scope="module")
def probed_exe(tmp_path_factory):
    if not any(os.path.exists(f"{d}/sys/sdt.h") for d in ("/usr/include", "/usr/include/x86_64-linux-gnu")):
        pytest.skip("<sys/sdt.h> is missing (apt-get install systemtap-sdt-dev)")
    d = tmp_path_factory.mktemp("probed")
    src, exe = d / "probed.c", d / "probed"
    src.write_text(USDT_PROGRAM)
    subprocess.run(["gcc", "-O1", "-o", exe, src], check=True)
    return exe


def function_file_offset(exe, name):
    from elftools.elf.elffile import ELFFile
    with open(exe, "rb") as f:
        elf = ELFFile(f)
        sym = elf.get_section_by_name(".symtab").get_symbol_by_name(name)[0]
        text = elf.get_section(sym["st_shndx"])
        return sym["st_value"] - text["sh_addr"] + text["sh_offset"]


@pytest.mark.parametrize("prog,spec,counter", [
    ("on_uprobe", "{exe}:probe_target,pid={pid}", "uprobe"),
    ("on_uretprobe", "{exe}:probe_target+0,pid={pid}", "uretprobe"),
    ("on_uprobe", "{exe}:{offset:#x}", "uprobe"),
    ("on_usdt", "{exe}:wasmbpf:tick,pid={pid}", "usdt"),
    ("on_usdt", "{exe}:wasmbpf:tick", "usdt"),
], ids=["uprobe-pid", "uretprobe-offset", "uprobe-file-offset", "usdt-pid", "usdt-any-pid"])
def test_user_space_probes(link_wasm, probed_exe, prog, spec, counter):
    child = subprocess.Popen([probed_exe], stdin=subprocess.PIPE, text=True)
    try:
        target = spec.format(exe=probed_exe, pid=child.pid, offset=function_file_offset(probed_exe, "probe_target"))

        def trigger():
            child.communicate("7\n", timeout=20)
            assert child.returncode == 0

        out = run_guest(link_wasm, [(prog, target)], trigger, pid=child.pid, dirs=[probed_exe.parent])
    finally:
        child.kill()
        child.wait()
    assert out[counter] == 7, out


@pytest.mark.parametrize("target", ["__x64_sys_getppid", "__x64_sys_getppid+0"])
def test_kprobe(link_wasm, target):
    skip_unless_supported("kprobe")
    out = run_guest(link_wasm, [("on_kprobe", target)], getppid_times(5))
    assert out["kprobe"] == 5, out


@pytest.mark.parametrize("target,expected", [
    ("do_sys_open", Kprobe("do_sys_open", 0)),
    ("do_sys_open+0x10", Kprobe("do_sys_open", 16)),
    ("do_sys_open+8", Kprobe("do_sys_open", 8)),
    ("0x10", None), ("do_sys_open+", None), ("do_sys_open+x", None), ("do_sys_open+-4", None),
    ("vmlinux:do_sys_open", None), ("do_sys_open,pid=1", None), ("", NoTarget()),
])
def test_kprobe_target_syntax(target, expected):
    """FUNCTION[+OFFSET], read before libbpf is asked (this kernel has no kprobes)."""
    if expected is None:
        with pytest.raises(HostCallError) as exc:
            parse("kprobe", target)
        assert exc.value.errno == errno.EINVAL
    else:
        parsed = parse("kprobe", target)
        assert type(parsed) is type(expected) and parsed == expected  # NamedTuples: Kprobe(...) == (...)


def busy(seconds):
    def spin():
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            pass
    return spin


@pytest.mark.parametrize("target", ["cpu-clock,freq=1000,pid={pid}", "cpu-clock,freq=1000",
                                    "task-clock,period=100000,cpu=all"])
def test_perf_event_software(link_wasm, target):
    out = run_guest(link_wasm, [("on_perf_event", target.format(pid=os.getpid()))], busy(0.4))
    assert out["perf_event"] > 10, out


def test_perf_event_hardware_skips_with_the_kernels_reason(link_wasm):
    skip_unless_supported("perf_event_hardware")
    out = run_guest(link_wasm, [("on_perf_event", "cycles,period=100000")], busy(0.4))
    assert out["perf_event"] > 0, out


def test_iterator_output_is_returned_to_the_guest(link_wasm):
    guest = Guest(link_wasm, 0, "iter", ("on_iter_task", None))
    guest.thread.join(20)
    guest.inst.close()
    out = guest.out
    text = guest.inst.stdout.decode(errors="replace")
    assert out["iter0_end"] == 0 and out["iter1_end"] == 0, out
    assert out["iter0_bytes"] > 0 and out["iter1_bytes"] > 0, out
    lines = [line for line in text.splitlines() if "=" not in line]
    assert len(lines) > 10 and all(line.split(" ", 1)[0].isdigit() for line in lines), text[:300]
    with open("/proc/self/comm") as f:
        comm = f.read().strip()
    assert any(line.split(" ", 1)[1] == comm[:15] for line in lines), (comm, text[:300])  # this process
    assert out["close"] == 0


def test_iter_read_of_a_program_that_is_not_an_iterator(link_wasm):
    guest = Guest(link_wasm, 0, "iter", ("on_tp", None))
    guest.thread.join(20)
    guest.inst.close()
    out = guest.out
    assert (out["iter0_bytes"], out["iter0_end"], out["close"]) == (0, -EINVAL, 0), out


@pytest.mark.parametrize("prog,target,expected", [
    ("on_tp", "lo", -EINVAL),                    # a tracepoint takes no target
    ("on_xdp", "no-such-if0", -ENODEV),
    ("on_xdp", "lo,mode=turbo", -EINVAL),
    ("on_xdp", "lo,speed=1", -EINVAL),           # unknown option
    ("on_tc", "lo:sideways", -EINVAL),
    ("on_tc", "tcx:no-such-if0:ingress", -ENODEV),
    ("on_perf_event", "no-such-event", -EINVAL),
    ("on_perf_event", "cpu-clock,freq=many", -EINVAL),
    ("on_sk_msg", "no_such_map", -ENOENT),
    ("on_socket", "{pid}:999999", -EBADF),       # no such fd in that process
    ("on_socket", "{pid}:{notsock}", -EACCES),  # the host's own fds: only the sockets handed over
    ("on_uprobe", "/bin/true", -EINVAL),
    ("on_usdt", "/bin/true:provider", -EINVAL),
    ("on_kprobe", "__x64_sys_getppid+junk", -EINVAL),
    ("no_such_program", None, -ENOENT),
], ids=lambda v: str(v))
def test_bad_targets(link_wasm, prog, target, expected):
    with open(os.devnull) as not_a_socket:
        target = target.format(pid=os.getpid(), notsock=not_a_socket.fileno()) if target else target
        guest = Guest(link_wasm, 0, "detach", (prog, target))
        out = guest.stop()
    assert out["link0"] == expected, (out, guest.inst.messages)


# ---- network ------------------------------------------------------------------------------
@pytest.fixture
def veth():
    """veth0 (10.213.0.1) here, veth1 (10.213.0.2) in a new network namespace."""
    with veth_pair("10.213.0", "wbpf") as pair:
        yield pair


def traffic(ns, count=5):
    """`count` UDP datagrams from the namespace to veth0 (received here), then `count`
    from here to the namespace: ingress and egress of veth0 both see >= count."""
    def trigger():
        sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        out = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            sink.bind(("10.213.0.1", 0))
            port = sink.getsockname()[1]
            code = ("import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                    f"for _ in range({count}): s.sendto(b'x', ('10.213.0.1', {port}))")
            subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", code], check=True, timeout=20)
            sink.settimeout(5)
            assert all(sink.recv(16) == b"x" for _ in range(count))
            for _ in range(count):
                out.sendto(b"y", ("10.213.0.2", 9))
        finally:
            sink.close()
            out.close()
    return trigger


@pytest.mark.parametrize("mode", ["", ",mode=generic", ",mode=native"])
def test_xdp_on_veth(link_wasm, veth, mode):
    ns, host = veth
    out = run_guest(link_wasm, [("on_xdp", host + mode)], traffic(ns))
    assert out["xdp"] >= 5, out
    link = subprocess.run(["ip", "link", "show", host], capture_output=True, text=True).stdout
    assert "xdp" not in link, link


@pytest.mark.parametrize("target", ["{host}:ingress", "{host}:egress", "tcx:{host}:ingress", "tcx:{host}:egress"])
def test_tc_and_tcx_on_veth(link_wasm, veth, target):
    ns, host = veth
    out = run_guest(link_wasm, [("on_tc", target.format(host=host))], traffic(ns))
    assert out["tc"] >= 5, out
    qdiscs = subprocess.run(["tc", "qdisc", "show", "dev", host], capture_output=True, text=True).stdout
    assert "clsact" not in qdiscs, qdiscs


def test_tc_leaves_an_existing_clsact_alone(link_wasm, veth):
    ns, host = veth
    subprocess.run(["tc", "qdisc", "add", "dev", host, "clsact"], check=True)
    out = run_guest(link_wasm, [("on_tc", f"{host}:ingress")], traffic(ns, 2))
    assert out["tc"] >= 2, out
    assert "clsact" in subprocess.run(["tc", "qdisc", "show", "dev", host], capture_output=True, text=True).stdout
    filters = subprocess.run(["tc", "filter", "show", "dev", host, "ingress"], capture_output=True, text=True).stdout
    assert "bpf" not in filters, filters


def test_socket_filter_on_an_interface(link_wasm, veth):
    ns, host = veth
    out = run_guest(link_wasm, [("on_socket", host)], traffic(ns))
    assert out["socket"] >= 10, out  # requests in, replies out


def test_socket_filter_on_a_socket_of_a_process(link_wasm):
    sink = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    sink.bind(("127.0.0.1", 0))
    sender = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        def trigger():
            for _ in range(5):
                sender.sendto(b"ping", sink.getsockname())
            sink.settimeout(5)
            assert all(sink.recv(16) == b"ping" for _ in range(5))
        out = run_guest(link_wasm, [("on_socket", f"{os.getpid()}:{sink.fileno()}")], trigger, sockets=[sink])
    finally:
        sink.close()
        sender.close()
    assert out["socket"] == 5, out


# ---- cgroups --------------------------------------------------------------------------------
CONNECT_UDP = "import socket\nfor _ in range(3): socket.socket(socket.AF_INET, socket.SOCK_DGRAM).connect(('127.0.0.1', 9))"
TCP_EXCHANGE = """
import socket
srv = socket.socket(); srv.bind(('127.0.0.1', 0)); srv.listen(1)
cli = socket.create_connection(srv.getsockname()); conn, _ = srv.accept()
for _ in range(2):
    cli.sendall(b'hello'); assert conn.recv(5) == b'hello'
"""


@pytest.mark.parametrize("prog,code,counter,least", [
    ("on_sock_create", CONNECT_UDP, "sock_create", 3),
    ("on_connect4", CONNECT_UDP, "connect4", 3),
    ("on_sysctl", "open('/proc/sys/kernel/ostype').read()", "sysctl", 1),
    ("on_device", "open('/dev/null').close(); open('/dev/zero').close()", "device", 2),
])
def test_cgroup_programs(link_wasm, cgroup, prog, code, counter, least):
    out = run_guest(link_wasm, [(prog, cgroup)], run_in_cgroup(cgroup, code), dirs=[os.path.dirname(cgroup)])
    assert out[counter] >= least, out


def test_sockops_sk_msg_and_sk_skb_on_a_sockhash(link_wasm, cgroup):
    pairs = [("on_sockops", cgroup), ("on_sk_msg", "socks"), ("on_sk_skb", "socks_rx")]
    out = run_guest(link_wasm, pairs, run_in_cgroup(cgroup, TCP_EXCHANGE), dirs=[os.path.dirname(cgroup)])
    assert out["sockops"] > 0 and out["sk_msg"] >= 2 and out["sk_skb"] >= 2, out


# ---- refused here --------------------------------------------------------------------------
@pytest.mark.parametrize("kind", TRAMP_KINDS)
def test_trampoline_kinds(kind, tmp_path):
    """guests/tramp.bpf.c is built into one object per kind (tests/guests/build.py),
    so each kind loads alone; it is loaded only where the probe says the kernel takes
    that kind of program."""
    assert guests()[f"tramp_{kind}_bpf"].stat().st_size > 0
    skip_unless_supported(kind)

    def unlink_and_open():
        for i in range(3):
            f = tmp_path / f"f{i}"
            f.write_text("x")   # an open (security_file_open: fmod_ret, LSM file_open)
            f.unlink()          # do_unlinkat (fentry/fexit)

    out = run_guest(guests()[f"link_{kind}"], [(f"on_{kind}", None)], unlink_and_open)
    assert out[kind] >= 3, out
