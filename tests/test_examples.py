"""End-to-end tests of the example tools in wasm_examples/.

Each test builds nothing itself (a session fixture runs `make -C
wasm_examples/X`), starts the tool with `wasm-bpf run X.wasm -- args`, waits
until its header says it is attached, causes real kernel events with unique
markers, checks the tool reported exactly those (pid, comm, values), stops it
with SIGINT and checks it exits with status 0 promptly.

Run as root: `make test` or `python3 -m pytest tests/test_examples.py`.
"""
import ctypes
import os
import platform
import re
import shutil
import signal
import subprocess
import time

import pytest

from example_helpers import (
    Tool,
    build_examples,
    ensure_tracefs,
    this_comm,
    unique_name,
    unused_pid,
)

BOOTSTRAP_HEADER = r"^TIME\s+EVENT\s+COMM\s+PID\s+PPID\s+FILENAME/EXIT CODE$"
SIGSNOOP_HEADER = r"^TIME\s+PID\s+COMM\s+SIG\s+TPID\s+RESULT$"
EXECVE_HEADER = r"^Tracing execve"
OPENSNOOP_HEADER = r"^PID\s+COMM\s+FD\s+ERR\s+PATH$"
RUNQLAT_HEADER = r"^Tracing run queue latency"


@pytest.fixture(scope="session")
def wasm():
    """name -> path of the built .wasm (built once per session)."""
    if os.geteuid() != 0:
        pytest.skip("the examples load BPF programs: run the tests as root")
    ensure_tracefs()
    return build_examples()


@pytest.fixture
def tmp_bin(tmp_path):
    """Copy a system binary under a unique name: its exec/exit/comm is then ours."""

    def make(src: str, prefix: str):
        name = unique_name(prefix)
        path = tmp_path / name
        shutil.copy2(shutil.which(src) or src, path)
        return name, str(path)

    return make


def assert_clean_exit(tool: Tool, rc: int) -> None:
    assert rc == 0, f"expected exit status 0\n{tool.describe()}"


# --------------------------------------------------------------------------
# bootstrap
# --------------------------------------------------------------------------

def parse_bootstrap(line: str):
    """TIME EVENT COMM PID PPID rest -> dict, or None for other lines."""
    m = re.match(r"^(\d\d:\d\d:\d\d) (EXEC|EXIT)\s+(.{16}) (\d+)\s+(\d+)\s+(.*)$", line)
    if not m:
        return None
    return {
        "event": m[2],
        "comm": m[3].strip(),
        "pid": int(m[4]),
        "ppid": int(m[5]),
        "rest": m[6].rstrip(),
    }


@pytest.mark.parametrize("bootstrap", ["bootstrap", "rust_bootstrap"])  # C and Rust user space
def test_bootstrap_help(wasm, bootstrap):
    with Tool(wasm[bootstrap], "-h") as tool:
        rc = tool.wait_exit()
    assert_clean_exit(tool, rc)
    assert f"Usage: {bootstrap}" in tool.stdout
    assert "--duration" in tool.stdout


@pytest.mark.parametrize("bootstrap", ["bootstrap", "rust_bootstrap"])  # C and Rust user space
def test_bootstrap_exec_and_exit(wasm, bootstrap, tmp_bin):
    comm, path = tmp_bin("sh", "bs")
    with Tool(wasm[bootstrap]) as tool:
        tool.wait_ready(BOOTSTRAP_HEADER)
        child = subprocess.Popen([path, "-c", "exit 3"])
        assert child.wait(10) == 3

        def is_mine(kind):
            def check(line):
                ev = parse_bootstrap(line)
                return ev if ev and ev["event"] == kind and ev["pid"] == child.pid else None
            return check

        exec_ev = tool.wait_for(is_mine("EXEC"), what=f"EXEC of pid {child.pid}")
        exit_ev = tool.wait_for(is_mine("EXIT"), what=f"EXIT of pid {child.pid}")
        rc = tool.interrupt()

    assert exec_ev["comm"] == comm
    assert exec_ev["ppid"] == os.getpid()
    assert exec_ev["rest"] == path
    assert exit_ev["comm"] == comm
    assert exit_ev["ppid"] == os.getpid()
    assert re.fullmatch(r"\[3\] \(\d+ms\)", exit_ev["rest"]), exit_ev
    assert_clean_exit(tool, rc)


@pytest.mark.parametrize("bootstrap", ["bootstrap", "rust_bootstrap"])  # C and Rust user space
def test_bootstrap_min_duration(wasm, bootstrap, tmp_bin):
    short_comm, short_path = tmp_bin("sh", "bss")
    long_comm, long_path = tmp_bin("sh", "bsl")
    with Tool(wasm[bootstrap], "--duration", "300") as tool:
        tool.wait_ready(BOOTSTRAP_HEADER)
        short = subprocess.Popen([short_path, "-c", "exit 4"])
        assert short.wait(10) == 4
        t0 = time.monotonic()
        long = subprocess.Popen([long_path, "-c", "sleep 0.6; exit 5"])
        assert long.wait(10) == 5
        assert time.monotonic() - t0 >= 0.6
        # The long process exits after the short one: once its EXIT is seen,
        # the short one's would have been seen before it.
        ev = tool.wait_for(
            lambda l: (e := parse_bootstrap(l)) and e["pid"] == long.pid and e,
            what=f"EXIT of the long-lived pid {long.pid}",
        )
        rc = tool.interrupt()

    assert ev["event"] == "EXIT" and ev["comm"] == long_comm
    m = re.fullmatch(r"\[5\] \((\d+)ms\)", ev["rest"])
    assert m and int(m[1]) >= 300, ev
    events = [e for e in map(parse_bootstrap, tool.lines) if e]
    assert not [e for e in events if e["event"] == "EXEC"], "-d must hide EXEC events"
    assert not [e for e in events if e["pid"] == short.pid or e["comm"] == short_comm]
    assert all(int(re.search(r"\((\d+)ms\)", e["rest"])[1]) >= 300 for e in events), events
    assert_clean_exit(tool, rc)


@pytest.mark.parametrize("bootstrap", ["bootstrap", "rust_bootstrap"])  # C and Rust user space
def test_bootstrap_timeout(wasm, bootstrap):
    """--timeout: the host stops the poll loop, the tool cleans up, status 0."""
    with Tool(wasm[bootstrap], run_opts=("--timeout", "2")) as tool:
        tool.wait_ready(BOOTSTRAP_HEADER)
        rc = tool.wait_exit(30)
    assert_clean_exit(tool, rc)
    assert not tool.stderr.strip(), tool.describe()


# --------------------------------------------------------------------------
# sigsnoop
# --------------------------------------------------------------------------

def parse_sigsnoop(line: str):
    m = re.match(r"^(\d\d:\d\d:\d\d) (\d+)\s+(.{16}) (\S+)\s+(-?\d+)\s+(-?\d+)$", line)
    if not m:
        return None
    return {"pid": int(m[2]), "comm": m[3].strip(), "sig": m[4], "tpid": int(m[5]),
            "ret": int(m[6])}


def find_sig(pid, tpid, sig):
    def check(line):
        ev = parse_sigsnoop(line)
        if ev and ev["pid"] == pid and ev["tpid"] == tpid and ev["sig"] == str(sig):
            return ev
        return None
    return check


def test_sigsnoop_kill(wasm):
    me, bogus = os.getpid(), unused_pid()
    with Tool(wasm["sigsnoop"]) as tool:
        tool.wait_ready(SIGSNOOP_HEADER)
        child = subprocess.Popen(["sleep", "60"])
        try:
            os.kill(child.pid, signal.SIGUSR1)
            assert child.wait(10) == -signal.SIGUSR1
        finally:
            child.kill()
            child.wait()
        with pytest.raises(ProcessLookupError):
            os.kill(bogus, signal.SIGUSR2)

        ok = tool.wait_for(find_sig(me, child.pid, 10), what="SIGUSR1 to the child")
        failed = tool.wait_for(find_sig(me, bogus, 12), what="SIGUSR2 to a missing pid")
        rc = tool.interrupt()

    assert ok["comm"] == this_comm()
    assert ok["ret"] == 0
    assert failed["ret"] == -3  # -ESRCH
    assert_clean_exit(tool, rc)


def test_sigsnoop_filters(wasm):
    """-p PID -s USR1 -x: only failed SIGUSR1s sent by this process; -n: names."""
    me, bogus = os.getpid(), unused_pid()
    with Tool(wasm["sigsnoop"], "-p", str(me), "-s", "USR1", "-x", "-n") as tool:
        tool.wait_ready(SIGSNOOP_HEADER)
        child = subprocess.Popen(["sleep", "60"])
        try:
            os.kill(child.pid, signal.SIGUSR1)          # succeeds: hidden by -x
            child.wait(10)
        finally:
            child.kill()
            child.wait()
        with pytest.raises(ProcessLookupError):
            os.kill(bogus, signal.SIGUSR2)              # other signal: hidden by -s
        other = subprocess.run(["sh", "-c", f"kill -USR1 {bogus}"], capture_output=True)
        assert other.returncode != 0                    # other sender: hidden by -p
        with pytest.raises(ProcessLookupError):
            os.kill(bogus, signal.SIGUSR1)              # the one to report
        ev = tool.wait_for(find_sig(me, bogus, "SIGUSR1"), what="the failed SIGUSR1")
        rc = tool.interrupt()

    assert ev["ret"] == -3
    events = [e for e in map(parse_sigsnoop, tool.lines) if e]
    assert events == [ev], f"only one event should pass the filters\n{tool.describe()}"
    assert_clean_exit(tool, rc)


# --------------------------------------------------------------------------
# execve
# --------------------------------------------------------------------------

def test_execve_argv(wasm):
    marker = unique_name("ex")
    true = shutil.which("true")
    with Tool(wasm["execve"]) as tool:
        tool.wait_ready(EXECVE_HEADER)
        a = subprocess.Popen([true, f"{marker}-a", "second"])
        a.wait(10)
        many = [f"{marker}-m{i}" for i in range(12)]
        b = subprocess.Popen([true, *many])
        b.wait(10)
        line_a = tool.wait_for(rf"^\[{a.pid}\] .* -> .*{marker}-a", what="execve of the first child")
        line_b = tool.wait_for(rf"^\[{b.pid}\] .* -> .*{marker}-m0", what="execve of the second child")
        c = subprocess.Popen([true, f"{marker}-nl\nnext\tx"])
        c.wait(10)
        line_c = tool.wait_for(rf"^\[{c.pid}\] ", what="execve of the third child")
        rc = tool.interrupt()

    comm = re.escape(this_comm())
    assert re.fullmatch(rf"\[{a.pid}\] {comm} -> {re.escape(true)} {marker}-a second",
                        line_a.string), line_a.string
    # argv[0] + 7 arguments, then "..." for the rest
    assert line_b.string == f"[{b.pid}] {this_comm()} -> {true} {' '.join(many[:7])} ...", \
        line_b.string
    # control characters are escaped: one exec, one line
    assert line_c.string.endswith(f" -> {true} {marker}-nl\\nnext\\tx"), line_c.string
    assert_clean_exit(tool, rc)


def test_execve_sigterm(wasm):
    """SIGTERM stops a tool as cleanly as Ctrl-C."""
    with Tool(wasm["execve"]) as tool:
        tool.wait_ready(EXECVE_HEADER)
        rc = tool.terminate()
    # 0, not 143: the guest left its poll loop and returned by itself (a guest
    # still running after the grace period is interrupted with 128 + SIGTERM)
    assert_clean_exit(tool, rc)


# --------------------------------------------------------------------------
# opensnoop
# --------------------------------------------------------------------------

def parse_opensnoop(line: str):
    m = re.match(r"^(\d+)\s+(.{16}) \s*(-?\d+)\s+(\d+) (.*)$", line)
    if not m:
        return None
    return {"pid": int(m[1]), "comm": m[2].strip(), "fd": int(m[3]), "err": int(m[4]),
            "path": m[5]}


def find_open(path):
    def check(line):
        ev = parse_opensnoop(line)
        return ev if ev and ev["path"] == path else None
    return check


def raw_open(path: str) -> int:
    """open(2) itself (Python uses openat); x86_64 only. Returns fd or -errno."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.syscall.restype = ctypes.c_long
    fd = libc.syscall(2, path.encode(), os.O_RDONLY)  # SYS_open on x86_64
    return fd if fd >= 0 else -ctypes.get_errno()


def test_opensnoop_open(wasm, tmp_path):
    """openat and open(2) by this process, with -p so that a busy system cannot
    overflow the perf buffer before our events arrive."""
    marker = unique_name("os")
    present = tmp_path / f"{marker}-present"
    present.write_text("x")
    missing = str(tmp_path / f"{marker}-missing")
    legacy = platform.machine() == "x86_64"
    me = os.getpid()
    with Tool(wasm["opensnoop"], "-p", str(me)) as tool:
        tool.wait_ready(OPENSNOOP_HEADER)
        fd = os.open(present, os.O_RDONLY)
        if legacy:  # while fd is open, so the two calls get different fds
            raw_fd = raw_open(str(present))
            assert raw_fd >= 0
            os.close(raw_fd)
        os.close(fd)
        with pytest.raises(FileNotFoundError):
            open(missing)

        def opened(want_fd):
            return lambda l: (e := find_open(str(present))(l)) and e["fd"] == want_fd and e

        ok = tool.wait_for(opened(fd), what="the successful openat")
        bad = tool.wait_for(find_open(missing), what="the failed open")
        if legacy:
            raw = tool.wait_for(opened(raw_fd), what="the open(2) call")
        rc = tool.interrupt()

    assert (ok["pid"], ok["comm"], ok["fd"], ok["err"]) == (me, this_comm(), fd, 0)
    assert (bad["pid"], bad["comm"], bad["fd"], bad["err"]) == (me, this_comm(), -1, 2)
    if legacy:
        assert (raw["pid"], raw["err"]) == (me, 0)
    assert_clean_exit(tool, rc)


def test_opensnoop_system_wide(wasm, tmp_path):
    """Without filters, another process's failed open shows up with its pid and
    comm. The perf buffer may drop records when the machine is busy, so the
    open is repeated until one is reported."""
    missing = str(tmp_path / f"{unique_name('ow')}-missing")
    with Tool(wasm["opensnoop"]) as tool:
        tool.wait_ready(OPENSNOOP_HEADER)
        pids = set()
        deadline = time.monotonic() + 30
        ev = None
        while ev is None and time.monotonic() < deadline:
            child = subprocess.Popen(["cat", missing], stderr=subprocess.DEVNULL)
            assert child.wait(10) != 0
            pids.add(child.pid)
            try:
                ev = tool.wait_for(find_open(missing), timeout=1, what="a failed open by cat")
            except AssertionError:
                if tool.proc.poll() is not None:
                    raise
        assert ev, f"no open of {missing} reported\n{tool.describe()}"
        rc = tool.interrupt()

    assert (ev["comm"], ev["fd"], ev["err"]) == ("cat", -1, 2), ev
    assert ev["pid"] in pids, (ev, pids)
    assert_clean_exit(tool, rc)


def test_opensnoop_filters(wasm, tmp_path):
    """-p PID -x: only failed opens of this process."""
    marker = unique_name("of")
    present = tmp_path / f"{marker}-present"
    present.write_text("x")
    missing = str(tmp_path / f"{marker}-missing")
    other_missing = str(tmp_path / f"{marker}-other")
    me = os.getpid()
    with Tool(wasm["opensnoop"], "--pid", str(me), "-x") as tool:
        tool.wait_ready(OPENSNOOP_HEADER)
        os.close(os.open(present, os.O_RDONLY))          # success: hidden by -x
        subprocess.run(["cat", other_missing], capture_output=True)  # other pid
        with pytest.raises(FileNotFoundError):
            open(missing)                               # the one to report
        ev = tool.wait_for(find_open(missing), what="the failed open")
        rc = tool.interrupt()

    assert (ev["pid"], ev["fd"], ev["err"]) == (me, -1, 2)
    events = [e for e in map(parse_opensnoop, tool.lines) if e]
    assert all(e["pid"] == me and e["fd"] == -1 and e["err"] > 0 for e in events), events
    assert not [e for e in events if e["path"] in (str(present), other_missing)], events
    assert_clean_exit(tool, rc)


# --------------------------------------------------------------------------
# runqlat
# --------------------------------------------------------------------------

HIST_ROW = re.compile(r"^\s*(\d+) -> (\d+|inf)\s+: (\d+)\s+\|(\**)\s*\|$")


def parse_histograms(lines, unit):
    """Split the output into histograms: list of [(low, high, count), ...]."""
    hists = []
    for line in lines:
        if re.match(rf"^\s*{unit}\s+: count\s+distribution$", line):
            hists.append([])
        elif (m := HIST_ROW.match(line)) and hists:
            hists[-1].append((int(m[1]), m[2], int(m[3])))
    return hists


@pytest.mark.parametrize("runqlat", ["runqlat", "rust_runqlat"])  # C and Rust user space
def test_runqlat_interval_count(wasm, runqlat):
    """`runqlat 1 2`: two 1-second histograms, then exit 0 by itself."""
    with Tool(wasm[runqlat], "1", "2") as tool:
        tool.wait_ready(RUNQLAT_HEADER)
        t0 = time.monotonic()
        # some wakeups of our own on top of whatever the system does
        while tool.proc.poll() is None and time.monotonic() - t0 < 30:
            subprocess.run(["true"])
            time.sleep(0.02)
        rc = tool.wait_exit(30)
        elapsed = time.monotonic() - t0

    assert_clean_exit(tool, rc)
    hists = parse_histograms(tool.lines, "usecs")
    assert len(hists) == 2, tool.describe()
    assert elapsed >= 1.5, "two 1 s intervals cannot end sooner"
    for h in hists:
        assert sum(c for _, _, c in h) > 0, f"empty histogram\n{tool.describe()}"
        # rows are consecutive log2 buckets: 0 -> 1, 2 -> 3, 4 -> 7, ...
        for i, (low, high, _) in enumerate(h):
            assert low == (0 if i == 0 else 1 << i)
            assert high == "inf" or int(high) == (1 << (i + 1)) - 1
        assert any("*" in l for l in tool.lines)


@pytest.mark.parametrize("runqlat", ["runqlat", "rust_runqlat"])  # C and Rust user space
def test_runqlat_millis_interrupt(wasm, runqlat):
    """-m with a long interval: Ctrl-C ends the wait at once and the partial
    histogram is printed in msecs."""
    with Tool(wasm[runqlat], "-m", "30") as tool:
        tool.wait_ready(RUNQLAT_HEADER)
        for _ in range(20):
            subprocess.run(["true"])
        t0 = time.monotonic()
        rc = tool.interrupt()
        elapsed = time.monotonic() - t0

    assert_clean_exit(tool, rc)
    assert elapsed < 10, "the interval wait must be interrupted by SIGINT"
    hists = parse_histograms(tool.lines, "msecs")
    assert len(hists) == 1, tool.describe()
    assert sum(c for _, _, c in hists[0]) > 0, tool.describe()
