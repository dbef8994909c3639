"""The command line: `wasm-bpf run [--env K=V] [--dir HOST[::GUEST]] [--timeout S] [-v]
MODULE [-- ARGS]`, its exit statuses (host_abi/ABI.md "Stopping and exit status") and
signal handling, run as subprocesses with the guests of tests/guests/."""
import os
import shutil
import signal
import subprocess
import sys
import time

import pytest

import wasm_bpf
from guests.build import guests
from guests.helpers import EINTR, Trigger, parse

_EXE = shutil.which("wasm-bpf")
CLI = [_EXE] if _EXE else [sys.executable, "-m", "wasm_bpf"]


@pytest.fixture(scope="module")
def g():
    return guests()


def cli(*args, timeout=30, **kw):
    return subprocess.run([*CLI, *map(str, args)], capture_output=True, text=True,
                          timeout=timeout, **kw)


def lines(text):
    return [line for line in text.splitlines() if line.strip()]


def one_line_error(proc):
    """Exit status 1 and exactly one line on stderr, no Python traceback."""
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    err = lines(proc.stderr)
    assert len(err) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    return err[0]


# ------------------------------------------------------------- basics

@pytest.mark.unit
def test_version():
    proc = cli("--version")
    assert proc.returncode == 0, proc.stderr
    assert wasm_bpf.__version__ in proc.stdout


@pytest.mark.unit
def test_run_help():
    proc = cli("run", "--help")
    assert proc.returncode == 0, proc.stderr
    for opt in ("--env", "--dir", "--timeout", "-v", "MODULE"):
        assert opt in proc.stdout, opt


def test_args_reach_the_guest_with_the_module_path_as_argv0(g):
    module = str(g["abi"])
    proc = cli("run", module, "--", "args", "a", "b c", "--x", "-v")
    assert proc.returncode == 0, proc.stderr
    out = parse(proc.stdout.encode())
    assert out["argc"] == 6
    assert [out[f"argv{i}"] for i in range(6)] == [module, "args", "a", "b c", "--x", "-v"]


def test_env(g):
    proc = cli("run", "--env", "FOO=bar baz", "--env", "OTHER=1", g["abi"], "--", "env")
    assert proc.returncode == 0, proc.stderr
    assert parse(proc.stdout.encode())["env"] == "bar baz"
    proc = cli("run", "--env", "OTHER=x=y", g["abi"], "--", "env", "OTHER")
    assert parse(proc.stdout.encode())["env"] == "x=y"
    # nothing of the host's environment leaks in
    proc = cli("run", g["abi"], "--", "env", "FOO", env={**os.environ, "FOO": "host"})
    assert parse(proc.stdout.encode())["env"] == "<unset>"


def test_dir_preopen(g, tmp_path):
    (tmp_path / "data.txt").write_text("hello from the host\n")
    proc = cli("run", "--dir", f"{tmp_path}::/data", g["abi"], "--", "readfile", "/data/data.txt")
    assert proc.returncode == 0, proc.stderr
    assert parse(proc.stdout.encode())["content"] == "hello from the host"
    # HOST alone: the guest sees it at the same path
    proc = cli("run", "--dir", tmp_path, g["abi"], "--", "readfile", tmp_path / "data.txt")
    assert proc.returncode == 0, proc.stderr
    assert parse(proc.stdout.encode())["content"] == "hello from the host"
    # without --dir the guest cannot open host files
    proc = cli("run", g["abi"], "--", "readfile", tmp_path / "data.txt")
    assert proc.returncode == 4, (proc.stdout, proc.stderr)
    assert "content" not in parse(proc.stdout.encode())


# What a run needs: not the kernel-only decoder or the map API, nor pyelftools for the
# ELF/BTF checks of the objects it loads; each costs start-up time and resident memory.
# A run ends with os._exit (cli.exit_now): the modules are printed there too.
_PRINT_MODULES = """import os, runpy, sys
def print_modules():
    print(" ".join(sorted(sys.modules)), file=sys.stderr)
    sys.stderr.flush()
exit_now = os._exit
os._exit = lambda code: (print_modules(), exit_now(code))
try:
    runpy.run_module("wasm_bpf", run_name="__main__")
finally:
    print_modules()
"""


@pytest.mark.parametrize("scenario,status", [("ret3", 3), ("close", 0), ("attach", 0)])
def test_a_run_imports_only_what_it_uses(g, scenario, status):
    """ret3 loads nothing, close attaches a tracepoint, attach an XDP program too."""
    proc = subprocess.run([sys.executable, "-c", _PRINT_MODULES, "run", str(g["abi"]), "--", scenario],
                          capture_output=True, text=True, timeout=30)
    assert proc.returncode == status, proc.stderr
    loaded = set(proc.stderr.split())
    assert "wasm_bpf.instance" in loaded
    # pyelftools (28 ms, 2.7 MiB) not even for checking the objects the guest loads;
    # OpenSSL (hashlib: 3.7 MiB) not for the compiled-module cache's sha256
    unneeded = {m for m in loaded if m.split(".")[0] == "elftools" or m in (
        "hashlib", "_hashlib", "wasm_bpf.mapview", "wasm_bpf.kernel_only.decode", "wasm_bpf.kernel_only.spec",
        "wasm_bpf.distribution.fetch", "wasm_bpf.service", "wasm_bpf_sdk.cli", "jsonschema")}
    # Issue 19 (cold start): a TOML parser only for a --policy file (the default is Python
    # data), json only for what writes it, sockets and net.py only for network attach
    # kinds, no other command's code (the lazy groups of cli.LazyGroup).
    unneeded |= {m for m in loaded if m in (
        "tomllib", "json", "wasm_bpf.kernel_only.runner", "wasm_bpf.kernel_only.cli", "wasm_bpf.distribution.cli",
        "wasm_bpf.service.cli", "wasm_bpf.service.ctl", "wasm_bpf.probe", "wasm_bpf.inspect", "wasm_bpf.objects")}
    network = {"socket", "_socket", "wasm_bpf.attach.net"}
    if scenario == "attach":
        assert network <= loaded
    else:  # and a run whose loads and attaches succeed does not diagnose failures
        unneeded |= (network | {"wasm_bpf.failures"}) & loaded
    assert not unneeded, sorted(unneeded)
    if scenario == "attach":
        assert "wasm_bpf.elfcheck" in loaded  # the check itself runs


# -------------------------------------------------------- exit status

@pytest.mark.parametrize("scenario,status", [("ret3", 3), ("retneg1", 255), ("exit255", 255),
                                             ("procexit255", 255)])
def test_exit_status(g, scenario, status):
    proc = cli("run", g["abi"], "--", scenario)
    assert proc.returncode == status, proc.stderr
    assert proc.stderr == ""  # a status, not a trap


def test_trap_is_status_1_with_one_line(g):
    proc = cli("run", g["abi"], "--", "trap")
    one_line_error(proc)
    assert parse(proc.stdout.encode()).get("before_trap") == 1


def test_callback_trap_is_status_1_with_one_line(g):
    with Trigger():
        proc = cli("run", g["abi"], "--", "pollcb", os.getpid(), "trap")
    one_line_error(proc)
    out = parse(proc.stdout.encode())
    assert out.get("wait_sent") == 0 and "returned" not in out


def test_callback_exit_status(g):
    with Trigger():
        proc = cli("run", g["abi"], "--", "pollcb", os.getpid(), "exit")
    assert proc.returncode == 7, proc.stderr


@pytest.mark.unit
def test_not_wasm(tmp_path):
    bad = tmp_path / "bad.wasm"
    bad.write_bytes(b"\x7fELF this is not wasm")
    one_line_error(cli("run", bad))


@pytest.mark.unit
def test_missing_module(tmp_path):
    one_line_error(cli("run", tmp_path / "missing.wasm"))


@pytest.mark.parametrize("guest,name", [("unknown_name", "nonexistent"),
                                        ("wrongtype_close", "wasm_close_bpf_object")])
def test_bad_import(g, guest, name):
    proc = cli("run", g[guest])
    assert name in one_line_error(proc)
    assert "started" not in proc.stdout


def test_load_failure_is_reported_in_one_line_per_load(g):
    proc = cli("run", g["abi"], "--", "load")
    assert proc.returncode == 0, proc.stderr
    quiet = lines(proc.stderr)
    assert len(quiet) == 12, proc.stderr  # the 12 failed loads of the "load" scenario
    verbose = lines(cli("run", "-v", g["abi"], "--", "load").stderr)
    assert len(verbose) > len(quiet)  # libbpf's log follows with -v


# ----------------------------------------------------------- stopping

def _spawn_waiting(g, how, *opts):
    proc = subprocess.Popen([*CLI, "run", *map(str, opts), str(g["abi"]), "--", "wait", how],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    first = []
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        line = proc.stdout.readline()
        if not line:
            break
        first.append(line)
        if line.startswith("ready="):
            break
    assert first and first[-1].startswith("ready="), ("guest not ready", first, proc.poll())
    time.sleep(0.2)  # into the poll / the spin loop
    return proc, "".join(first)


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGTERM])
def test_signal_makes_the_poll_return_eintr(g, sig):
    proc, head = _spawn_waiting(g, "eintr")
    t0 = time.monotonic()
    proc.send_signal(sig)
    stdout, stderr = proc.communicate(timeout=10)
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0, stderr
    out = parse((head + stdout).encode())
    assert out["poll"] == -EINTR and out["eintr"] == 1 and out["close"] == 0, out
    assert elapsed < 1.5
    assert "Traceback" not in stderr


@pytest.mark.parametrize("sig,status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_signal_interrupts_a_spinning_guest_after_the_grace_period(g, sig, status):
    proc, _ = _spawn_waiting(g, "spin")
    t0 = time.monotonic()
    proc.send_signal(sig)
    _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == status, stderr
    assert 1.8 <= time.monotonic() - t0 < 4  # the grace period is 2 s
    assert "Traceback" not in stderr


def test_sigint_interrupts_a_guest_that_ignores_eintr(g):
    proc, _ = _spawn_waiting(g, "ignore")
    t0 = time.monotonic()
    proc.send_signal(signal.SIGINT)
    _, stderr = proc.communicate(timeout=10)
    assert proc.returncode == 130, stderr
    assert 1.8 <= time.monotonic() - t0 < 4


def test_timeout_stops_a_polling_guest(g):
    t0 = time.monotonic()
    proc = cli("run", "--timeout", "1", g["abi"], "--", "wait", "eintr")
    elapsed = time.monotonic() - t0
    assert proc.returncode == 0, proc.stderr
    out = parse(proc.stdout.encode())
    assert out["poll"] == -EINTR and out["eintr"] == 1 and out["close"] == 0
    assert 0.7 <= out["waited_ms"] / 1000 < 2.0
    assert elapsed < 10


def test_timeout_interrupts_a_spinning_guest_with_124(g):
    t0 = time.monotonic()
    proc = cli("run", "--timeout", "0.5", g["abi"], "--", "wait", "spin")
    assert proc.returncode == 124, proc.stderr
    assert 2.3 <= time.monotonic() - t0 < 6  # --timeout, then the 2 s grace period
