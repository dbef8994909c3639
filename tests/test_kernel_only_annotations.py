"""ecc's source annotations in kernel-only runs: tc and XDP programs attach where
`/// @tchook`, `@tcopts`, `@ifindex`, `@flags` say (or --ifname / --ifindex), and
nothing stays attached; `/// @cmdarg` names a flag (long, short, help, default);
`/// @sample` sets a map's print interval and clearing; `/// @description` shows in
--help and -v; a package keeps all of them; a wrong one is one line naming its line."""
import json
import os
import socket
import subprocess
import sys
import time

import pytest

from conftest import veth_pair
from ko_helpers import FIXTURES, compile_bpf
from test_kernel_only_run import ko_run, wasm_bpf
from wasm_bpf.kernel_only import annotations as A
from wasm_bpf.kernel_only.spec import SpecError, inspect

NETCOUNT = FIXTURES / "netcount.bpf.c"
PIDCOUNT = FIXTURES / "pidcount.bpf.c"
SUBNET = "10.214.7"


def udp_to(addr, port, count=5):
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    try:
        for _ in range(count):
            s.sendto(b"x", (addr, port))
    finally:
        s.close()


def free_udp_port():
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def slots(out):
    """packets' last printed value per slot (0 XDP, 1 tc ingress, 2 tc egress)."""
    final = {}
    for line in out.splitlines():
        row = json.loads(line)
        assert row["map"] == "packets", row
        final[row["key"]] = row["value"]
    return final


def net_state(dev, ns=None):
    """What tc and XDP hold on an interface: its filters, qdiscs and link line."""
    pre = ["ip", "netns", "exec", ns] if ns else []
    run = lambda *cmd: subprocess.run([*pre, *cmd], capture_output=True, text=True).stdout  # noqa: E731
    return (run("tc", "filter", "show", "dev", dev, "ingress") + run("tc", "filter", "show", "dev", dev, "egress")
            + run("tc", "qdisc", "show", "dev", dev) + run("ip", "link", "show", dev))


def assert_nothing_left(dev, before):
    after = net_state(dev)
    assert "count_" not in after and "xdp" not in after, after
    assert ("clsact" in after) == ("clsact" in before), (before, after)


def test_xdp_and_tc_on_lo_from_the_annotations():
    """@ifindex 1 + @flags 2: generic XDP on lo; @tchook ifindex 1 ingress/egress with
    @tcopts handle/priority: each sees the 5 datagrams once; no --attach given."""
    before = net_state("lo")
    port = free_udp_port()
    seen = {}

    def trigger():
        udp_to("127.0.0.1", port)
        seen["state"] = net_state("lo")

    rc, out, err = ko_run(NETCOUNT, ["--json", "-P", str(port)], trigger, settle=0.8)
    assert rc == 0, err
    assert slots(out) == {0: 5, 1: 5, 2: 5}, out
    assert "count_xdp attaches to lo,mode=generic (@ifindex at netcount.bpf.c:46, @flags at netcount.bpf.c:47" in err
    assert "count_ingress attaches to lo:ingress,handle=7,priority=7 (@tchook at netcount.bpf.c:56" in err
    assert "xdpgeneric" in seen["state"] and "pref 7 bpf chain 0 handle 0x7 count_ingress" in seen["state"]
    assert "pref 8 bpf chain 0 handle 0x8 count_egress" in seen["state"]
    assert_nothing_left("lo", before)


@pytest.fixture
def veth():
    """A veth pair: wbka<tag>a (SUBNET.1) here, its peer (SUBNET.2) in netns wbka-<tag>."""
    with veth_pair(SUBNET, "wbka", "wbka") as pair:
        yield pair


def both_ways(ns, port):
    """5 datagrams from the namespace to this side's address (ingress and XDP of the
    host interface), then 5 from here to the namespace (its egress)."""
    def trigger():
        code = (f"import socket; s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
                f"for _ in range(5): s.sendto(b'x', ('{SUBNET}.1', {port}))")
        subprocess.run(["ip", "netns", "exec", ns, sys.executable, "-c", code], check=True, timeout=20)
        udp_to(f"{SUBNET}.2", port)
    return trigger


@pytest.mark.parametrize("how", ["annotation", "--ifname", "--ifindex"])
def test_tc_and_xdp_on_a_veth(veth, tmp_path, how):
    """The veth's index written in @tchook/@ifindex, or the annotations' lo overridden
    by --ifname / --ifindex: ingress, egress and XDP each count the 5 datagrams, and the
    filters, the clsact qdisc and the XDP program are gone afterwards."""
    ns, host = veth
    index = socket.if_nametoindex(host)
    src, args = NETCOUNT, []
    if how == "annotation":
        src = tmp_path / "netcount.bpf.c"
        src.write_text(NETCOUNT.read_text().replace('"ifindex": 1', f'"ifindex": {index}')
                       .replace("/// @ifindex 1", f"/// @ifindex {index}"))
    else:
        args = [how, host if how == "--ifname" else str(index)]
    port = free_udp_port()
    before = net_state(host)
    rc, out, err = ko_run(src, ["--json", "--port", str(port), *args], both_ways(ns, port), settle=0.8)
    assert rc == 0, err
    assert slots(out) == {0: 5, 1: 5, 2: 5}, out
    assert f"count_egress attaches to {host}:egress,handle=8,priority=8" in err
    assert_nothing_left(host, before)


def getppid_child():
    """A process that calls getppid() 4 times when it reads a line (its start-up is over by then)."""
    child = subprocess.Popen([sys.executable, "-c", "import os, sys\nsys.stdout.write('ready\\n'); sys.stdout.flush()\n"
                              "sys.stdin.readline()\nfor _ in range(4): os.getppid()"],
                             stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    assert child.stdout.readline() == "ready\n"
    return child


def calls_rows(out):
    return [json.loads(line) for line in out.splitlines()]


@pytest.mark.parametrize("spelling", ["-p", "--pid"])
def test_cmdarg_flag_filters_by_pid(spelling):
    """@cmdarg's short and long names set targ_pid: only the
    child's 4 calls are counted, not this process's own."""
    child = getppid_child()

    def trigger():
        child.stdin.write("go\n")
        child.stdin.flush()
        child.wait(10)
        for _ in range(3):
            os.getppid()

    try:
        rc, out, err = ko_run(PIDCOUNT, ["--json", spelling, str(child.pid)], trigger, settle=0.6)
    finally:
        child.kill()
        child.wait()
    assert rc == 0, err
    rows = calls_rows(out)
    assert {r["key"] for r in rows} == {child.pid}, out
    assert sum(r["value"] for r in rows) == 4, out  # cleared after each print: the rows add up


def test_sample_interval_and_clear():
    """@sample {"interval": 200, "clear_map": true}: three calls 0.5 s apart print as
    three rows of 1 (200 ms apart they are not merged; cleared, they do not add up);
    --interval overrides the annotation's interval."""
    def trigger():
        for _ in range(3):
            os.getppid()
            time.sleep(0.5)

    rc, out, err = ko_run(PIDCOUNT, ["--json", "--pid", str(os.getpid())], trigger, settle=0.3)
    assert rc == 0, err
    assert "maps calls every 0.2 s (cleared)" in err
    assert [r["value"] for r in calls_rows(out)] == [1, 1, 1], out
    rc, out, err = ko_run(PIDCOUNT, ["--json", "--pid", str(os.getpid()), "--interval", "5"], trigger, settle=0.3)
    assert rc == 0, err
    assert "maps calls every 5 s (cleared)" in err
    assert [r["value"] for r in calls_rows(out)] == [3], out


def help_of(path):
    return subprocess.run(wasm_bpf() + ["run", str(path), "--help"], capture_output=True, text=True, timeout=60)


@pytest.mark.unit
def test_help_shows_description_and_cmdarg():
    proc = help_of(NETCOUNT)
    assert proc.returncode == 0, proc.stderr
    assert "netcount: Counts UDP datagrams to one port at XDP, tc ingress and tc egress." in proc.stdout
    assert "-P N, --port N, --targ_port N" in proc.stdout
    assert "UDP destination port to count (0: every UDP datagram)" in proc.stdout
    assert "--ifname NAME" in proc.stdout and "--ifindex N" in proc.stdout


def test_package_keeps_the_annotations(tmp_path):
    """A package made from the source holds them in ecc's places, with their lines,
    and runs the same way: -v names the source line, --help the description and flags."""
    pkg = tmp_path / "netcount.json"
    proc = subprocess.run(wasm_bpf() + ["package", str(NETCOUNT), "-o", str(pkg)], capture_output=True, text=True,
                          timeout=120)
    assert proc.returncode == 0, proc.stderr
    doc = json.loads(pkg.read_text())
    skel = doc["meta"]["bpf_skel"]
    progs = {p["name"]: p for p in skel["progs"]}
    assert progs["count_ingress"]["tchook"] == {"ifindex": 1, "attach_point": "BPF_TC_INGRESS"}
    assert progs["count_xdp"]["flags"] == 2 and progs["count_xdp"]["ifindex"] == 1
    assert skel["maps"][0]["sample"] == {"interval": 300, "type": "default_kv"}
    assert skel["data_sections"][0]["variables"][0]["cmdarg"]["short"] == "P"
    assert skel["doc"]["description"].startswith("Counts UDP datagrams")
    assert doc["wasm_bpf"]["annotations"]["progs.count_egress.tchook"] == "netcount.bpf.c:65"
    help_text = help_of(pkg).stdout
    assert "Counts UDP datagrams" in help_text and "-P N, --port N" in help_text
    port = free_udp_port()
    rc, out, err = ko_run(pkg, ["--json", "-P", str(port)], lambda: udp_to("127.0.0.1", port), settle=0.6)
    assert rc == 0, err
    assert slots(out) == {0: 5, 1: 5, 2: 5}, out
    assert "(@tchook at netcount.bpf.c:56, @tcopts at netcount.bpf.c:57)" in err
    # an ecc package without our lines: the place in the package is named instead
    del doc["wasm_bpf"]["annotations"]
    progs["count_ingress"]["tchook"]["attach_point"] = "BPF_TC_SIDEWAYS"
    pkg.write_text(json.dumps(doc))
    proc = subprocess.run(wasm_bpf() + ["run", str(pkg)], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
    assert f"{pkg}: progs[count_ingress].tchook: /// @tchook" in proc.stderr
    assert "attach_point 'BPF_TC_SIDEWAYS' is not BPF_TC_INGRESS or BPF_TC_EGRESS" in proc.stderr


@pytest.fixture(scope="module")
def netcount_spec(tmp_path_factory):
    obj = compile_bpf(NETCOUNT, tmp_path_factory.mktemp("ko-ann") / "netcount.bpf.o")
    return inspect(obj.read_bytes(), str(obj))


WRONG = [
    ('/// @tchook {"ifindex": 1, "attach_point": "BPF_TC_INGRESS"}', '/// @tchook {"ifindex": 1,',
     'netcount.bpf.c:56: /// @tchook {"ifindex": 1,: not JSON'),
    ('"attach_point": "BPF_TC_EGRESS"', '"attach_point": "BPF_TC_CUSTOM"',
     "netcount.bpf.c:65: /// @tchook {\"ifindex\": 1, \"attach_point\": \"BPF_TC_CUSTOM\"}: attach_point "
     "'BPF_TC_CUSTOM' is not BPF_TC_INGRESS or BPF_TC_EGRESS (BPF_TC_CUSTOM needs a parent qdisc"),
    ("/// @ifindex 1", '/// @tchook {"ifindex": 1}',
     'netcount.bpf.c:46: /// @tchook is for SEC("tc") programs; count_xdp is SEC("xdp")'),
    ('/// @flags 2', '/// @flags 8', "netcount.bpf.c:47: /// @flags 8: only XDP_FLAGS_UPDATE_IF_NOEXIST"),
    ('/// @xdpopts {"old_prog_fd": 0}', '/// @xdpopts {"old_prog_fd": 5}',
     "netcount.bpf.c:48: /// @xdpopts {\"old_prog_fd\": 5}: old_prog_fd must be 0"),
    ('"short": "P"', '"short": "v"', "netcount.bpf.c:18: /// @cmdarg"),
    ('"long": "port"', '"long": "port", "colour": 1', "unknown key 'colour'"),
    ('/// @sample {"interval": 300, "type": "default_kv"}', '/// @sample {"type": "pie"}',
     "netcount.bpf.c:21: /// @sample {\"type\": \"pie\"}: type must be one of log2_hist, linear_hist, default_kv"),
    ('/// @sample {"interval": 300, "type": "default_kv"}', '/// @cmdarg {"long": "x"}',
     "netcount.bpf.c:21: /// @cmdarg must come right before a const volatile global"),
    ("static __always_inline void count_if_ours",
     '/// @tchook {"ifindex": 1}\nstatic __always_inline void count_if_ours',
     "netcount.bpf.c:29: attach annotations on count_if_ours(), which is not a BPF program"),
]


@pytest.mark.unit
@pytest.mark.parametrize("old, new, message", WRONG)
def test_wrong_annotations_are_one_line(netcount_spec, old, new, message):
    text = NETCOUNT.read_text()
    assert old in text
    with pytest.raises(SpecError) as e:
        A.check(A.parse_source(text.replace(old, new, 1), "netcount.bpf.c"), netcount_spec)
    assert message in str(e.value) and "\n" not in str(e.value), str(e.value)


@pytest.mark.unit
@pytest.mark.parametrize("args, message", [
    ([], "netcount.bpf.c:46: /// @ifindex: no network interface has index 999999 (here: lo=1"),
    (["--ifname", "wbka-none"], "--ifname wbka-none: no such network interface (here: lo=1"),
    (["--ifindex", "999998"], "--ifindex 999998: no network interface has index 999998"),
])
def test_absent_interface_is_one_line(tmp_path, args, message):
    src = tmp_path / "netcount.bpf.c"
    src.write_text(NETCOUNT.read_text().replace("/// @ifindex 1", "/// @ifindex 999999"))
    proc = subprocess.run(wasm_bpf() + ["run", str(src), *args], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 1, proc.stderr
    assert proc.stderr.startswith("wasm-bpf: error: ") and proc.stderr.count("\n") == 1, proc.stderr
    assert message in proc.stderr, proc.stderr


BOOL_SOURCE = """\
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";
const volatile __u32 targ_tgid = 0;
/// @cmdarg {"default": true, "short": "c", "long": "count"}
/// @description count getppid() calls
const volatile _Bool counting = 0;
__u64 calls = 0;
SEC("tp/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
	if (counting && bpf_get_current_pid_tgid() >> 32 == targ_tgid)
		__sync_fetch_and_add(&calls, 1);
	return 0;
}
"""


@pytest.mark.parametrize("args, calls", [([], 3), (["--no-count"], None), (["--disable-count"], None)])
def test_cmdarg_default_sets_the_global(tmp_path, args, calls):
    """@cmdarg's default (true) is written into .rodata: the program counts unless
    --no-count clears it; the description is the switch's help."""
    src = tmp_path / "boolflag.bpf.c"
    src.write_text(BOOL_SOURCE)
    assert "--no-count, --disable-count\n                        count getppid() calls" in help_of(src).stdout
    rc, out, err = ko_run(src, ["--json", "--targ-tgid", str(os.getpid()), *args],
                          lambda: [os.getppid() for _ in range(3)], settle=0.3)
    assert rc == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert (rows[-1]["calls"] if rows else None) == calls, out
