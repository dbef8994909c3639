"""The cleanup matrix (docs/cleanup.md): however a run ends, every BPF link the guest
made is detached and every object it loaded is closed.

The guest (tests/guests/cleanup_guest.c) loads one object and attaches seven programs:
a tracepoint and a uprobe (perf-event links), a cgroup_skb link on a new cgroup, a
classic tc filter on a veth's ingress (persistent: a netlink filter, not an fd), a tcx
link on its egress, a socket filter on a raw socket of the host's, and an sk_msg
program on the object's sockmap (a sockmap link). It prints "attached=7" and then ends the way the
test asks. Each test takes the kernel ids of the programs and links the run holds
while it runs (and checks that the filter, the clsact qdisc and the cgroup program
are really there), ends the run, and checks that none of those ids is left in the
kernel and nothing is left on the interface or the cgroup.

SIGKILL is the exception the kernel makes: what is held by fds dies with the process,
the classic tc filter (and its program and qdisc) stays. The test checks exactly that,
then removes it with the commands docs/cleanup.md gives. A struct_ops registration is
a link too (tested with the tcpcc example), so it goes with a killed process."""
import contextlib
import os
import re
import signal
import subprocess
import threading
from dataclasses import dataclass
from typing import List, Optional, Set, Tuple

import pytest

import wasm_bpf
from conftest import bpf_link_ids, bpf_program_ids, held_bpf_ids, veth_pair
from example_helpers import EXAMPLES_DIR, START_TIMEOUT, Tool, ensure_tracefs
from guests.build import guests
from guests.helpers import LIBC_DIR, Trigger, wait_until

PROGRAMS = 7  # every program of cleanup.bpf.c
FD_LINKS = 5  # tracepoint, uprobe, cgroup, tcx, sk_msg (sockmap link): BPF links; tc filter and socket are not
ATTACHED = f"attached={PROGRAMS}"
RELEASE_TIMEOUT = 3.0  # the kernel frees programs after an RCU grace period


@pytest.fixture(scope="module")
def wasm() -> str:
    ensure_tracefs()
    return str(guests()["cleanup"])  # a failed build raises BuildError with clang's output


@dataclass
class Rig:
    """Where the guest attaches: a veth (host side, peer in a netns) and a cgroup."""

    ifname: str
    cgroup: str

    def args(self, action: str) -> List[str]:
        return [str(os.getpid()), action, self.ifname, self.cgroup]

    def dirs(self) -> List[Tuple[str, str]]:
        return [(LIBC_DIR, LIBC_DIR), (self.cgroup, self.cgroup)]

    def dir_opts(self) -> Tuple[str, ...]:
        return tuple(opt for host, _ in self.dirs() for opt in ("--dir", host))

    def tc_filters(self) -> str:
        return _cmd("tc", "filter", "show", "dev", self.ifname, "ingress")

    def has_clsact(self) -> bool:
        return "clsact" in _cmd("tc", "qdisc", "show", "dev", self.ifname)

    def cgroup_programs(self) -> str:
        return _cmd("bpftool", "cgroup", "show", self.cgroup)


def _cmd(*argv: str) -> str:
    return subprocess.run(argv, capture_output=True, text=True, check=True).stdout


@pytest.fixture
def rig(cgroup):
    with veth_pair("10.215.0", "wbcl") as (_, host):
        yield Rig(host, cgroup)


@dataclass
class Held:
    """Kernel ids of what one run holds."""

    progs: Set[int]
    links: Set[int]


def check_attached(rig: Rig, held: Held) -> None:
    """While the guest runs: everything it attached is there, so the checks after the
    run look at real attachments."""
    assert len(held.progs) == PROGRAMS and len(held.links) == FD_LINKS, held
    assert "name cleanup_tc" in rig.tc_filters() and rig.has_clsact()
    assert "cleanup_cgroup" in rig.cgroup_programs()


def assert_released(rig: Rig, held: Held) -> None:
    def left() -> Tuple[Set[int], Set[int]]:
        return held.progs & bpf_program_ids(), held.links & bpf_link_ids()

    wait_until(lambda: left() == (set(), set()), timeout=RELEASE_TIMEOUT)
    progs, links = left()
    assert not links, f"links of the run left attached: {sorted(links)}"
    assert not progs, f"programs of the run left loaded: {sorted(progs)}"
    assert "cleanup_tc" not in rig.tc_filters(), rig.tc_filters()
    assert not rig.has_clsact(), "the clsact qdisc the run created is left"
    assert "cleanup_cgroup" not in rig.cgroup_programs()


# ---- `wasm-bpf run` -------------------------------------------------------------------
@dataclass(frozen=True)
class Ending:
    """One way a `wasm-bpf run` ends: the guest's ACTION, what the test does once the
    guest has attached (start its records, or send a signal), the exit status."""

    action: str
    then: str  # "records" | "SIGINT" | "SIGTERM" | "wait" (for --timeout)
    status: int
    run_opts: Tuple[str, ...] = ()


CLI_ENDINGS = {
    "return_from_start": Ending("return", "records", 0),
    "close_then_return": Ending("close", "records", 0),
    "exit_in_start": Ending("exit", "records", 5),
    "exit_in_callback": Ending("exit_cb", "records", 7),
    "trap_in_start": Ending("trap", "records", 1),
    "trap_in_callback": Ending("trap_cb", "records", 1),
    "sigint": Ending("wait", "SIGINT", 0),
    "sigterm": Ending("wait", "SIGTERM", 0),
    "timeout": Ending("wait", "wait", 0, ("--timeout", "4")),
    "timeout_forced": Ending("spin", "wait", 124, ("--timeout", "4", "--grace-period", "0.5")),
    "sigint_forced": Ending("spin", "SIGINT", 130, ("--grace-period", "0.5")),
    "sigterm_forced": Ending("spin", "SIGTERM", 143, ("--grace-period", "0.5")),
    "cpu_limit": Ending("busy", "wait", 152, ("--cpu-limit", "0.5")),
    "callback_limit": Ending("busy_cb", "records", 152, ("--callback-limit", "0.3")),
}


def start_cli(wasm: str, rig: Rig, action: str, run_opts: Tuple[str, ...] = ()) -> Tuple[Tool, Held]:
    tool = Tool(wasm, *rig.args(action), run_opts=(*rig.dir_opts(), *run_opts))
    tool.wait_for(ATTACHED, timeout=START_TIMEOUT, what="the guest attached")
    held = Held(*held_bpf_ids(str(tool.pid)))
    check_attached(rig, held)
    return tool, held


@pytest.mark.parametrize("ending", CLI_ENDINGS.values(), ids=CLI_ENDINGS.keys())
def test_cli_run_releases_everything(wasm, rig, ending):
    """A `wasm-bpf run` that ends this way (by itself, by a signal, by --timeout,
    interrupted after the grace period) leaves nothing of its run in the kernel."""
    tool, held = start_cli(wasm, rig, ending.action, ending.run_opts)
    # Records only now, once the snapshot is taken: the first one ends the run.
    with tool, Trigger() if ending.then == "records" else contextlib.nullcontext():
        if ending.then in ("SIGINT", "SIGTERM"):
            tool.proc.send_signal(getattr(signal, ending.then))
        status = tool.wait_exit(timeout=15)
    assert status == ending.status, tool.describe()
    assert_released(rig, held)


def test_sigkill_leaves_only_the_classic_tc_filter(wasm, rig):
    """SIGKILL: the kernel closes the process's fds, so every link (tracepoint, uprobe,
    cgroup, tcx, sockmap) and every program but one go with it; the socket filter goes
    with the host's socket. The classic tc filter is a netlink
    object: it stays with its program and the clsact qdisc, until removed with the
    commands of docs/cleanup.md, after which nothing of the run is left."""
    tool, held = start_cli(wasm, rig, "wait")
    with tool:
        tool.proc.send_signal(signal.SIGKILL)
        assert tool.wait_exit() == -signal.SIGKILL
    filters = rig.tc_filters()
    tc_prog = int(re.search(r"id (\d+) name cleanup_tc", filters).group(1))
    wait_until(lambda: held.progs & bpf_program_ids() == {tc_prog}, timeout=RELEASE_TIMEOUT)
    try:
        assert not held.links & bpf_link_ids(), "a BPF link outlived its process"
        assert held.progs & bpf_program_ids() == {tc_prog}, filters
        assert rig.has_clsact()
        assert "cleanup_cgroup" not in rig.cgroup_programs()
        # The documented removal: the filter by its pref and handle, then the qdisc.
        pref, handle = re.search(r"pref (\d+) bpf chain \d+ handle (0x[0-9a-f]+) cleanup_tc", filters).groups()
        _cmd("tc", "filter", "del", "dev", rig.ifname, "ingress", "pref", pref, "handle", handle, "bpf")
        assert "cleanup_tc" not in rig.tc_filters()
        _cmd("tc", "qdisc", "del", "dev", rig.ifname, "clsact")
    finally:  # whatever failed above, leave no filter behind for the next test
        subprocess.run(["tc", "qdisc", "del", "dev", rig.ifname, "clsact"], capture_output=True)
    assert_released(rig, held)


# ---- an embedding application -----------------------------------------------------------
class Run:
    """inst.run() in a thread, keeping its status or the exception it raised."""

    def __init__(self, inst: wasm_bpf.Instance) -> None:
        self.inst = inst
        self.status: Optional[int] = None
        self.error: Optional[BaseException] = None
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            self.status = self.inst.run()
        except BaseException as exc:  # noqa: B902 - kept for the test to look at
            self.error = exc

    def wait_attached(self) -> None:
        assert wait_until(lambda: ATTACHED.encode() in self.inst.stdout or not self.thread.is_alive(),
                          timeout=START_TIMEOUT), "the guest did not attach"
        assert ATTACHED.encode() in self.inst.stdout, (self.inst.stdout, self.inst.messages, self.error)


def held_by_this_process(before: Tuple[Set[int], Set[int]]) -> Held:
    progs, links = held_bpf_ids()
    return Held(progs - before[0], links - before[1])


class AppError(Exception):
    pass


def test_exception_in_the_with_block_stops_the_guest_and_releases_everything(wasm, rig):
    """The application raises inside `with wasm_bpf.Instance(...)` while the guest runs
    in another thread: leaving the block stops the guest (it leaves on -EINTR), waits
    for its run to end and releases everything (closing the objects under the running
    poll used to crash the process)."""
    before = held_bpf_ids()
    config = wasm_bpf.RunConfig(dirs=rig.dirs())
    with pytest.raises(AppError):
        with wasm_bpf.Instance(wasm, rig.args("wait"), config=config, capture_output=True) as inst:
            run = Run(inst)
            run.wait_attached()
            held = held_by_this_process(before)
            check_attached(rig, held)
            raise AppError("the application failed")
    assert not run.thread.is_alive(), "leaving the with block did not end the run"
    assert run.status == 0 and run.error is None, (run.status, run.error, inst.messages)
    assert_released(rig, held)


def test_exception_from_the_report_callback_releases_everything(wasm, rig):
    """The application's report callback raises on a host message (a failed attach,
    mid-run, inside a host call): the exception leaves inst.run() and nothing of the
    run is left."""
    def report(message: str) -> None:
        raise AppError(message)

    before = held_bpf_ids()
    config = wasm_bpf.RunConfig(dirs=rig.dirs())
    with wasm_bpf.Instance(wasm, rig.args("badattach"), config=config, capture_output=True,
                           report=report) as inst:
        run = Run(inst)
        run.wait_attached()
        held = held_by_this_process(before)
        check_attached(rig, held)
        with Trigger():  # the first record makes the guest attach what does not exist
            run.thread.join(15)
        assert not run.thread.is_alive()
        assert isinstance(run.error, AppError) and "no_such_program" in str(run.error), run.error
        assert_released(rig, held)  # by run() itself, before the with block ends


# ---- struct_ops ------------------------------------------------------------------------
CONGESTION_CONTROLS = "/proc/sys/net/ipv4/tcp_available_congestion_control"


def _congestion_controls() -> str:
    with open(CONGESTION_CONTROLS) as f:
        return f.read()


def test_sigkill_unregisters_a_struct_ops_map():
    """A struct_ops map (the tcpcc example's congestion control) is registered through
    a link where the kernel has them (BPF_F_LINK, >= 6.4), so SIGKILL unregisters it.
    libbpf 1.1's own registration, a map update, outlived the process."""
    example = EXAMPLES_DIR / "tcpcc"
    build = subprocess.run(["make", "-C", str(example)], capture_output=True, text=True, timeout=600)
    assert build.returncode == 0, build.stdout + build.stderr
    tool = Tool(example / "tcpcc.wasm")
    try:
        with tool:
            tool.wait_ready(r"^wasm_reno registered")
            held = Held(*held_bpf_ids(str(tool.pid)))
            assert "wasm_reno" in _congestion_controls() and len(held.links) == 1, held
            tool.proc.send_signal(signal.SIGKILL)
            assert tool.wait_exit() == -signal.SIGKILL
        assert wait_until(lambda: "wasm_reno" not in _congestion_controls(), timeout=RELEASE_TIMEOUT), \
            "the congestion control outlived its process"
        assert wait_until(lambda: not held.progs & bpf_program_ids(), timeout=RELEASE_TIMEOUT)
    finally:  # what the kernel kept, removed as docs/cleanup.md says
        if "wasm_reno" in _congestion_controls():
            subprocess.run(["bpftool", "struct_ops", "unregister", "name", "wasm_reno"], capture_output=True)
