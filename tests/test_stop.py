"""A stop always stops (docs/cleanup.md, "Stop latency"): whatever the guest is
waiting in (sleep, read of stdin, poll, a buffer poll, a busy loop, a long callback),
a stop request ends the run within the grace period and a little more, with every
BPF program and link released; the guest's stdio is what the embedder chose.

The guest is tests/guests/stop_guest.c: it loads the ABI object, attaches its
tracepoint, prints "ready=1" and waits in the mode the test names."""
import os
import re
import select
import signal
import subprocess
import sys
import threading
import time
from typing import List, Optional, Tuple

import pytest

import wasm_bpf
from conftest import bpf_link_ids, bpf_program_ids, held_bpf_ids, veth_pair
from example_helpers import START_TIMEOUT, Tool, ensure_tracefs, wasm_bpf_command
from guests.build import guests
from guests.helpers import EINTR, Trigger, parse, wait_until
from wasm_bpf.limits import Limits

GRACE = 0.5
# A stop ends the run within the grace period + 100 ms (the kernel's detach of the
# tracepoint, ~70 ms, is most of it), and here + 400 ms of slack for a 2-core
# machine that other test runs load: docs/cleanup.md has the measured figures.
SLACK = 0.1 + 0.4
RELEASE_TIMEOUT = 3.0


@pytest.fixture(scope="module")
def wasm() -> str:
    ensure_tracefs()
    return str(guests()["stop"])


class Run:
    """An Instance of the stop guest running in a thread, its output captured."""

    def __init__(self, wasm: str, mode: str, *extra: str, **config) -> None:
        config.setdefault("grace_period", GRACE)
        self.before = held_bpf_ids()
        self.inst = wasm_bpf.Instance(wasm, [mode, *extra], config=wasm_bpf.RunConfig(**config),
                                      capture_output=True)
        self.status: Optional[int] = None
        self.error: Optional[BaseException] = None
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        try:
            self.status = self.inst.run()
        except BaseException as exc:  # noqa: B902 - kept for the test to look at
            self.error = exc

    def start(self) -> "Run":
        self.thread.start()
        assert wait_until(lambda: b"ready=1" in self.inst.stdout or not self.thread.is_alive(),
                          timeout=START_TIMEOUT), "the guest did not start"
        assert b"ready=1" in self.inst.stdout, (self.inst.stdout, self.inst.messages, self.error)
        progs, links = held_bpf_ids()
        self.held = (progs - self.before[0], links - self.before[1])
        assert self.held[0] and self.held[1], "the guest holds no program and link"
        time.sleep(0.2)  # let it enter its wait
        return self

    def stop_and_time(self, timeout: float = 15) -> float:
        """stop(), then the seconds until run() returned."""
        start = time.monotonic()
        self.inst.stop()
        self.thread.join(timeout)
        elapsed = time.monotonic() - start
        assert not self.thread.is_alive(), f"run() did not return {timeout} s after stop()"
        return elapsed

    def assert_released(self) -> None:
        """Nothing the run held is left in the kernel (released by run() itself)."""
        progs, links = self.held
        assert wait_until(lambda: not (progs & bpf_program_ids() or links & bpf_link_ids()),
                          timeout=RELEASE_TIMEOUT), "the run's programs or links are left"

    @property
    def out(self) -> dict:
        return parse(self.inst.stdout)


# mode -> (exit status, what the guest saw, or None when it was interrupted)
WAITS = {
    "sleep": (0, {"sleep": 3600}),  # sleep() returns early (wasi-libc returns the whole request)
    "read": (0, {"read": 0, "total": 0}),  # stdin ends: read() returns 0
    "poll": (0, {"poll": -1, "errno": EINTR}),  # poll(-1) on stdin fails with EINTR
    "bufpoll": (0, {"bufpoll": -EINTR}),  # wasm_bpf_buffer_poll(-1) returns -EINTR
    "busy": (130, None),  # interrupted at the end of the grace period
    "sleep_again": (130, None),  # a guest that goes back to sleep: interrupted too
    "poll_again": (130, None),
    "bufpoll_again": (130, None),
}


@pytest.mark.parametrize("mode", WAITS)
def test_a_stop_ends_every_wait_in_time(wasm, mode):
    """Instance.stop() ends a guest waiting in `mode` within the grace period + a
    little (a cooperative one at once), and run() has released everything."""
    status, seen = WAITS[mode]
    read_fd, write_fd = os.pipe()  # a stdin without input, its write end kept open
    try:
        run = Run(wasm, mode, **({"stdin": read_fd} if mode in ("read", "poll", "poll_again") else {})).start()
        elapsed = run.stop_and_time()
    finally:
        os.close(read_fd)
        os.close(write_fd)
    assert run.error is None and run.status == status, (run.status, run.error, run.inst.messages)
    if seen is None:
        assert GRACE * 0.9 < elapsed < GRACE + SLACK, elapsed
        assert any(f"did not return within --grace-period {GRACE:g}s after SIGINT; interrupted (exit 130)" in m
                   for m in run.inst.messages), run.inst.messages
    else:
        assert elapsed < SLACK, elapsed
        assert {k: run.out.get(k) for k in seen} == seen, run.inst.stdout
    run.assert_released()


def test_a_stop_ends_a_long_callback(wasm):
    """A callback that computes forever is interrupted when the grace period ends."""
    run = Run(wasm, "callback", str(os.getpid()), limits=Limits(callback_limit=None))
    with Trigger():
        run.start()
        assert wait_until(lambda: run.out.get("in_callback") == 1)
        elapsed = run.stop_and_time()
    assert run.status == 130 and GRACE * 0.9 < elapsed < GRACE + SLACK, (run.status, elapsed)
    run.assert_released()


def test_stop_before_run_ends_a_guest_that_ignores_eintr(wasm):
    """stop() before run(): the grace period's interrupt, due before the guest started,
    still ends a guest that polls again after every -EINTR."""
    inst = wasm_bpf.Instance(wasm, ["bufpoll_again"], config=wasm_bpf.RunConfig(grace_period=0.2),
                             capture_output=True)
    inst.stop()
    time.sleep(0.3)  # the interrupt is due before run() starts
    result: List[int] = []
    thread = threading.Thread(target=lambda: result.append(inst.run()), daemon=True)
    thread.start()
    thread.join(10)
    assert not thread.is_alive(), "the guest spins forever"
    assert result == [130], inst.messages


def test_close_from_another_thread_returns_after_the_run_released_everything(wasm):
    """close() from the application's thread while the guest sleeps in another: it
    returns once the run has ended and released its program and link."""
    run = Run(wasm, "sleep_again").start()
    start = time.monotonic()
    run.inst.close()
    assert time.monotonic() - start < GRACE + SLACK
    assert not run.thread.is_alive(), "close() returned while the guest still runs"
    progs, links = run.held
    assert not (progs & bpf_program_ids() or links & bpf_link_ids())
    assert run.status == 130


def test_close_raises_rather_than_return_while_the_guest_still_runs(wasm):
    """The one wait a stop cannot end: a write to a stdout pipe nobody reads. close()
    from another thread raises (it used to return with the objects still loaded);
    once the pipe is read, the run ends and releases everything."""
    read_fd, write_fd = os.pipe()
    try:
        inst = wasm_bpf.Instance(wasm, ["echo"], config=wasm_bpf.RunConfig(
            grace_period=0.2, stdin=b"x" * (1 << 20), stdout=write_fd))
        result: List[int] = []
        thread = threading.Thread(target=lambda: result.append(inst.run()), daemon=True)
        thread.start()
        time.sleep(0.5)  # the pipe is full: the guest waits in its write
        with pytest.raises(wasm_bpf.WasmBpfError, match="did not end 5s after its grace period"):
            inst.close()
        while thread.is_alive():  # drain: the write ends, then the interrupt
            os.set_blocking(read_fd, False)
            try:
                os.read(read_fd, 1 << 16)
            except BlockingIOError:
                time.sleep(0.01)
        assert result == [130], inst.messages
    finally:
        os.close(read_fd)
        os.close(write_fd)


def test_a_nested_poll_does_not_reset_the_callback_budget(wasm):
    """A callback that polls another buffer from inside itself (its inner callbacks run)
    is still stopped when its own CPU time passes --callback-limit."""
    run = Run(wasm, "nested", str(os.getpid()), limits=Limits(callback_limit=0.3))
    with Trigger():
        run.start()
        run.thread.join(10)
    assert not run.thread.is_alive(), "the callback budget was reset by its nested polls"
    assert run.status == 152, run.inst.messages
    assert any("event callback used 0.3 s" in m for m in run.inst.messages), run.inst.messages
    run.assert_released()


def test_the_hosts_poll_oneoff_keeps_wasi_semantics(wasm):
    """Without a stop: absolute sleeps on both clocks (the guest's monotonic clock is
    wasmtime's, which starts at 0), usleep, poll() of stdout and of a closed fd."""
    inst = wasm_bpf.Instance(wasm, ["clocks"], capture_output=True)
    assert inst.run() == 0, inst.messages
    out = parse(inst.stdout)
    assert out["monotonic_err"] == out["realtime_err"] == 0, out
    assert 190 <= out["monotonic_ms"] < 400 and 190 <= out["realtime_ms"] < 400, out
    assert -10 <= out["usleep_ms"] < 300, out
    assert (out["stdout_poll"], out["stdout_revents"]) == (1, 0x2), out  # wasi-libc POLLOUT
    assert (out["closed_poll"], out["closed_revents"]) == (1, 0x4000), out  # POLLNVAL


POLL_ONEOFF_WAT = """(module
  (import "wasi_snapshot_preview1" "poll_oneoff" (func $poll (param i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  ;; subscriptions at 0 (48 bytes each), events at 256, the results at 1000
  (func $sub (param $tag i32) (param $id i32)
    (i64.store (i32.const 0) (i64.const 7))
    (i32.store8 (i32.const 8) (local.get $tag))
    (i32.store (i32.const 16) (local.get $id))
    (i64.store (i32.const 24) (i64.const 0)))
  (func $result (param $at i32) (param $value i32)
    (i32.store8 (i32.add (i32.const 1000) (local.get $at)) (local.get $value)))
  (func (export "_start")
    (call $result (i32.const 0) (call $poll (i32.const 0) (i32.const 256) (i32.const 0) (i32.const 512)))
    (call $result (i32.const 1) (call $poll (i32.const 65530) (i32.const 256) (i32.const 1) (i32.const 512)))
    (call $result (i32.const 2) (call $poll (i32.const 0) (i32.const 256) (i32.const -1) (i32.const 512)))
    (call $sub (i32.const 9) (i32.const 0))
    (call $result (i32.const 3) (call $poll (i32.const 0) (i32.const 256) (i32.const 1) (i32.const 512)))
    (call $sub (i32.const 0) (i32.const 2))  ;; the process CPU-time clock
    (call $result (i32.const 4) (call $poll (i32.const 0) (i32.const 256) (i32.const 1) (i32.const 512)))
    (call $result (i32.const 5) (i32.load16_u (i32.const 264)))
    (call $sub (i32.const 1) (i32.const -5))  ;; fd_read of a bad fd
    (call $result (i32.const 6) (call $poll (i32.const 0) (i32.const 256) (i32.const 1) (i32.const 512)))
    (call $result (i32.const 7) (i32.load16_u (i32.const 264)))
    (call $result (i32.const 8) (i32.load (i32.const 512)))
    (i32.store (i32.const 600) (i32.const 1000))
    (i32.store (i32.const 604) (i32.const 9))
    (drop (call $write (i32.const 1) (i32.const 600) (i32.const 1) (i32.const 608)))))"""


def test_bad_poll_oneoff_arguments_are_errors():
    """A module's bad poll_oneoff arguments get WASI errors, never a host exception:
    no subscriptions EINVAL, a range outside memory EFAULT, an unknown tag EINVAL, a
    CPU-time clock and a bad fd events with ENOTSUP and EBADF."""
    inst = wasm_bpf.Instance(POLL_ONEOFF_WAT.encode(), capture_output=True)
    assert inst.run() == 0, inst.messages
    assert list(inst.stdout) == [28, 21, 21, 28, 0, 58, 0, 8, 1], inst.stdout


# ---- stdio ----------------------------------------------------------------------------
def echo(wasm: str, capture: bool = True, **config) -> wasm_bpf.Instance:
    inst = wasm_bpf.Instance(wasm, ["echo"], config=wasm_bpf.RunConfig(**config), capture_output=capture)
    assert inst.run() == 0, inst.messages
    return inst


def test_an_embedded_guest_does_not_read_the_applications_stdin(wasm):
    """The Python API gives the guest no stdin by default: the application's own stdin
    (here a pipe with data) is neither read nor consumed."""
    code = ("import sys, wasm_bpf\n"
            f"inst = wasm_bpf.Instance({wasm!r}, ['echo'], capture_output=True)\n"
            "print(inst.run(), inst.stdout)\n"
            "print(sys.stdin.read())\n")
    proc = subprocess.run([sys.executable, "-c", code], input=b"the application's input\n",
                          capture_output=True, timeout=60)
    assert proc.stdout.decode().splitlines() == ["0 b''", "the application's input", ""], proc


def test_stdin_sources(wasm, tmp_path):
    data = bytes(range(256)) * 1000  # more than a pipe holds
    assert echo(wasm, stdin=data).stdout == data
    path = tmp_path / "input"
    path.write_bytes(b"from a file\n")
    assert echo(wasm, stdin=str(path)).stdout == b"from a file\n"
    read_fd, write_fd = os.pipe()
    os.write(write_fd, b"from a pipe\n")
    os.close(write_fd)
    assert echo(wasm, stdin=read_fd).stdout == b"from a pipe\n"
    os.close(read_fd)
    with pytest.raises(wasm_bpf.WasmBpfError, match=r"stdin .*/missing: No such file"):
        echo(wasm, stdin=str(tmp_path / "missing"))


def test_stdout_choices(wasm, tmp_path):
    path = tmp_path / "out"
    echo(wasm, capture=False, stdin=b"to a file\n", stdout=str(path))
    assert path.read_bytes() == b"to a file\n"
    read_fd, write_fd = os.pipe()
    echo(wasm, capture=False, stdin=b"to an fd\n", stdout=write_fd)
    os.close(write_fd)
    assert os.read(read_fd, 100) == b"to an fd\n"
    os.close(read_fd)
    inst = echo(wasm, capture=False, stdin=b"nowhere\n", stdout="none", stderr="capture")
    assert inst.stdout == b"" and inst.stderr == b""


def test_captured_output_is_bounded_and_the_rest_counted(wasm):
    inst = echo(wasm, stdin=b"x" * 10000, capture_limit=1000)
    assert inst.stdout == b"x" * 1000
    assert inst.dropped_output == {"stdout": 9000, "stderr": 0}
    assert any("9000 bytes more to stdout" in m and "capture_limit" in m for m in inst.messages), inst.messages


# ---- the CLI ----------------------------------------------------------------------------
def start_cli(wasm: str, mode: str, *opts: str) -> Tuple[Tool, Tuple[set, set]]:
    tool = Tool(wasm, mode, run_opts=("--grace-period", str(GRACE), *opts))
    tool.wait_for("ready=1", timeout=START_TIMEOUT, what="the guest attached")
    held = held_bpf_ids(str(tool.pid))
    assert held[0], tool.describe()  # its programs (and the tracepoint's link, checked after as well)
    time.sleep(0.2)
    return tool, held


def assert_cli_released(held: Tuple[set, set]) -> None:
    assert wait_until(lambda: not (held[0] & bpf_program_ids() or held[1] & bpf_link_ids()),
                      timeout=RELEASE_TIMEOUT)


CLI_STOPS = {  # mode, what stops it, status, what the guest saw or the message of a forced stop
    "sigint_sleep": ("sleep", "SIGINT", 0, {"sleep": 3600}),
    "sigterm_poll": ("poll", "SIGTERM", 0, {"poll": -1, "errno": EINTR}),
    "timeout_bufpoll": ("bufpoll", "timeout", 0, {"bufpoll": -EINTR}),
    "sigint_forced": ("sleep_again", "SIGINT", 130, "after SIGINT; interrupted (exit 130)"),
    "sigterm_forced": ("poll_again", "SIGTERM", 143, "after SIGTERM; interrupted (exit 143)"),
    "timeout_forced": ("sleep_again", "timeout", 124, "after --timeout 1s; interrupted (exit 124)"),
}


@pytest.mark.parametrize("case", CLI_STOPS.values(), ids=CLI_STOPS.keys())
def test_cli_stops_a_waiting_guest(wasm, case, tmp_path):
    mode, how, status, seen = case
    fifo = tmp_path / "stdin"  # a stdin that stays open without input: the poll waits
    os.mkfifo(fifo)
    writer = os.open(fifo, os.O_RDWR)
    try:
        tool, held = start_cli(wasm, mode, "--stdin", str(fifo), *(("--timeout", "1") if how == "timeout" else ()))
        with tool:
            start = time.monotonic()
            if how != "timeout":
                tool.proc.send_signal(getattr(signal, how))
            assert tool.wait_exit(timeout=10) == status, tool.describe()
            elapsed = time.monotonic() - start
    finally:
        os.close(writer)
    forced = isinstance(seen, str)
    limit = (1.0 if how == "timeout" else 0) + (GRACE if forced else 0) + SLACK + 0.2  # + the process's exit
    assert elapsed < limit, (elapsed, tool.describe())
    if forced:
        assert tool.err_lines == [f"wasm-bpf: the guest did not return within --grace-period {GRACE:g}s "
                                  + seen], tool.describe()
    else:
        out = parse(tool.stdout.encode())
        assert {k: out.get(k) for k in seen} == seen, tool.describe()
    assert_cli_released(held)


def test_cli_a_repeated_signal_is_one_request(wasm):
    """`timeout -s INT` signals the process and its group: the same signal twice
    within a few ms is one stop request, so the guest keeps its grace period."""
    tool, held = start_cli(wasm, "sleep_again")
    with tool:
        start = time.monotonic()
        os.kill(tool.pid, signal.SIGINT)
        os.kill(tool.pid, signal.SIGINT)
        assert tool.wait_exit(timeout=10) == 130, tool.describe()
        assert time.monotonic() - start > GRACE * 0.9, tool.describe()
    assert "did not return within --grace-period" in tool.stderr, tool.describe()
    assert_cli_released(held)


def test_cli_a_second_request_interrupts_at_once_and_says_so(wasm):
    tool, held = start_cli(wasm, "sleep_again", "--grace-period", "30")
    with tool:
        tool.proc.send_signal(signal.SIGINT)
        time.sleep(0.3)
        start = time.monotonic()
        tool.proc.send_signal(signal.SIGTERM)
        assert tool.wait_exit(timeout=10) == 130, tool.describe()
        assert time.monotonic() - start < SLACK + 0.2, tool.describe()
    assert tool.err_lines == ["wasm-bpf: a second stop request (SIGTERM) interrupted the guest at once (exit 130); "
                              "one request gives it --grace-period 30s to return"], tool.describe()
    assert_cli_released(held)


def test_cli_stdin_is_the_guests_until_a_stop(wasm, tmp_path):
    """`wasm-bpf run` passes its stdin; a stop ends the guest's read of it."""
    argv = [*wasm_bpf_command(), "run", "--grace-period", str(GRACE), wasm, "--", "read"]
    proc = subprocess.Popen(argv, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    try:
        proc.stdin.write(b"some input")
        proc.stdin.flush()
        assert proc.stdout.readline() == b"ready=1\n"
        time.sleep(0.3)
        proc.send_signal(signal.SIGINT)
        out, err = proc.communicate(timeout=10)
    finally:
        if proc.poll() is None:
            proc.kill()
    assert proc.returncode == 0, err
    assert parse(out) == {"total": 10, "read": 0, "errno": 0}, out
    path = tmp_path / "input"
    path.write_bytes(b"0123456789abc")
    proc = subprocess.run([*argv[:2], "--stdin", str(path), *argv[2:]], capture_output=True, timeout=30)
    assert parse(proc.stdout)["total"] == 13, proc


def test_cli_in_the_background_does_not_read_the_terminal(wasm):
    """`wasm-bpf run ... &` from an interactive shell: what the user types meanwhile
    goes to the shell, and the job is not stopped by SIGTTIN (the stdin feed waits
    while its terminal belongs to another process group)."""
    import pty

    pid, fd = pty.fork()
    if pid == 0:  # the child: an interactive shell on the terminal
        os.execvp("bash", ["bash", "--norc", "--noprofile", "-i"])

    def converse(line: str, until: str = "@42@", seconds: float = 20) -> str:
        """Types a line; the terminal's output until `until` appears (or `seconds`).
        "@42@" is what `echo @$((40+2))@` prints, not what the terminal echoes."""
        os.write(fd, line.encode() + b"\n")
        out, end = b"", time.monotonic() + seconds
        while until.encode() not in out and time.monotonic() < end:
            if select.select([fd], [], [], 0.1)[0]:
                try:
                    out += os.read(fd, 4096)
                except OSError:
                    break
        return out.decode(errors="replace")

    try:
        command = " ".join(wasm_bpf_command())
        assert "ready=1" in converse(f"{command} run --grace-period 0.5 {wasm} -- sleep &", "ready=1")
        converse("echo typed meanwhile; echo @$((40+2))@")
        time.sleep(0.5)  # a read of the terminal would have stopped the job by now
        jobs = converse("jobs -l; echo @$((40+2))@")
        assert "Running" in jobs and "Stopped" not in jobs, jobs
        assert "status=0" in converse("kill -INT %1; wait; echo status=$?; echo @$((40+2))@")
    finally:
        os.write(fd, b"kill -CONT %1; kill -INT %1; exit\n")
        os.waitpid(pid, 0)
        os.close(fd)


# ---- signals during cleanup ----------------------------------------------------------------
FILTERS = 1000


def test_cli_signals_during_cleanup_do_not_abort_it(wasm):
    """SIGINT, and SIGTERM and SIGINT again while the host is removing 1000 tc
    filters: the cleanup completes, no filter or program is left."""
    with veth_pair("10.216.0", "wbst") as (_, ifname):
        tool = Tool(wasm, "tc", str(FILTERS), ifname, run_opts=("--grace-period", "5"))
        with tool:
            tool.wait_for(f"attached={FILTERS}", timeout=120, what="the filters attached")
            held = held_bpf_ids(str(tool.pid))
            tool.proc.send_signal(signal.SIGINT)
            tool.wait_for("leaving=1", timeout=10, what="the guest leaving")
            tool.proc.send_signal(signal.SIGTERM)
            time.sleep(0.01)
            tool.proc.send_signal(signal.SIGINT)
            status = tool.wait_exit(timeout=120)
        filters = subprocess.run(["tc", "filter", "show", "dev", ifname, "ingress"], capture_output=True,
                                 text=True).stdout
        left = len(re.findall(r"name cleanup_tc", filters))
        subprocess.run(["tc", "qdisc", "del", "dev", ifname, "clsact"], capture_output=True)
    assert left == 0, f"{left} tc filters left after the cleanup\n{tool.describe()}"
    # 0: the guest had returned when SIGTERM came; 130: it was still returning, and a
    # second request interrupts at once. Either way the cleanup ran to its end.
    assert status in (0, 130), tool.describe()
    assert_cli_released(held)
