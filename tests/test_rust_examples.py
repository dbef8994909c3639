"""The Rust guests (issue 18): the examples wasm_examples/rust_* built with `make`
(Debian's cargo/rustc, offline) and run through `wasm-bpf run` against the real
kernel, like their C twins: events with the right pid/comm, a `.rodata` flag set
from Rust, maps read right (hash map, per-CPU array), Ctrl-C ends them with
status 0 and nothing left attached (the autouse no_bpf_leaks fixture, `ip link`).
Also `wasm-bpf build` of a Rust guest itself: the module it writes, a lone main.rs,
and its one-line errors."""
import os
import re
import subprocess
import time
from pathlib import Path

import pytest
import wasmtime

from conftest import veth_pair
from example_helpers import EXAMPLES_DIR, Tool, ensure_tracefs, wasm_bpf_command
from test_examples import BOOTSTRAP_HEADER, RUNQLAT_HEADER, parse_bootstrap, parse_histograms
from test_examples_attach import udp_both_ways

NAMES = ("rust_bootstrap", "rust_runqlat", "rust_xdpcount")


@pytest.fixture(scope="module")
def wasm():
    ensure_tracefs()
    built = {}
    for name in NAMES:
        res = subprocess.run(["make", "-C", str(EXAMPLES_DIR / name)], stdout=subprocess.PIPE,
                             stderr=subprocess.STDOUT, text=True, timeout=600)
        assert res.returncode == 0, f"building {name} failed:\n{res.stdout}"
        built[name] = EXAMPLES_DIR / name / f"{name}.wasm"
    return built


@pytest.fixture
def tmp_bin(tmp_path):
    """A copy of sh under a unique name: its exec, exit and comm are then ours."""
    def make(prefix: str):
        path = tmp_path / f"{prefix}{os.getpid() % 10000}{time.monotonic_ns() % 1000}"
        path.write_bytes(Path("/bin/sh").read_bytes())
        path.chmod(0o755)
        return path.name[:15], str(path)
    return make


def finish(tool: Tool) -> None:
    rc = tool.interrupt()
    assert rc == 0, f"Ctrl-C must end the guest with status 0\n{tool.describe()}"
    assert not tool.stderr.strip(), tool.describe()


# ---- rust_bootstrap: ring buffer, .rodata flag -------------------------------------

def test_rust_bootstrap_reports_exec_and_exit_with_pid_and_comm(wasm, tmp_bin):
    comm, path = tmp_bin("rbs")
    with Tool(wasm["rust_bootstrap"]) as tool:
        tool.wait_ready(BOOTSTRAP_HEADER)
        child = subprocess.Popen([path, "-c", "exit 3"])
        assert child.wait(10) == 3

        def mine(kind):
            return lambda line: (e := parse_bootstrap(line)) and e["event"] == kind and e["pid"] == child.pid and e

        exec_ev = tool.wait_for(mine("EXEC"), what=f"EXEC of pid {child.pid}")
        exit_ev = tool.wait_for(mine("EXIT"), what=f"EXIT of pid {child.pid}")
        finish(tool)
    assert (exec_ev["comm"], exec_ev["ppid"], exec_ev["rest"]) == (comm, os.getpid(), path)
    assert (exit_ev["comm"], exit_ev["ppid"]) == (comm, os.getpid())
    assert re.fullmatch(r"\[3\] \(\d+ms\)", exit_ev["rest"]), exit_ev


def test_rust_bootstrap_min_duration_is_a_rodata_constant(wasm, tmp_bin):
    """-d 300 sets min_duration_ns in .rodata before load: no EXEC events, and only
    exits of processes that lived 300 ms or more."""
    short_comm, short_path = tmp_bin("rbss")
    long_comm, long_path = tmp_bin("rbsl")
    with Tool(wasm["rust_bootstrap"], "-d", "300") as tool:
        tool.wait_ready(BOOTSTRAP_HEADER)
        short = subprocess.Popen([short_path, "-c", "exit 4"])
        assert short.wait(10) == 4
        long = subprocess.Popen([long_path, "-c", "sleep 0.6; exit 5"])
        assert long.wait(10) == 5
        ev = tool.wait_for(lambda l: (e := parse_bootstrap(l)) and e["pid"] == long.pid and e,
                           what=f"EXIT of the long-lived pid {long.pid}")
        finish(tool)
    assert ev["event"] == "EXIT" and ev["comm"] == long_comm
    m = re.fullmatch(r"\[5\] \((\d+)ms\)", ev["rest"])
    assert m and int(m[1]) >= 300, ev
    events = [e for e in map(parse_bootstrap, tool.lines) if e]
    assert not [e for e in events if e["event"] == "EXEC"], "-d must hide EXEC events"
    assert not [e for e in events if e["pid"] == short.pid or e["comm"] == short_comm]


def test_rust_bootstrap_stops_at_timeout_and_rejects_bad_arguments(wasm):
    with Tool(wasm["rust_bootstrap"], run_opts=("--timeout", "2")) as tool:
        tool.wait_ready(BOOTSTRAP_HEADER)
        assert tool.wait_exit(30) == 0, tool.describe()
    with Tool(wasm["rust_bootstrap"], "-d", "soon") as tool:
        assert tool.wait_exit(30) == 1
    assert tool.err_lines[0] == "rust_bootstrap: invalid duration 'soon'", tool.describe()


# ---- rust_runqlat: a hash map read every interval ---------------------------------

def test_rust_runqlat_reads_the_histogram_map(wasm):
    """`rust_runqlat 1 2`: two non-empty log2 histograms read (and cleared) from the
    hash map, then exit 0 by itself."""
    with Tool(wasm["rust_runqlat"], "1", "2") as tool:
        tool.wait_ready(RUNQLAT_HEADER)
        t0 = time.monotonic()
        while tool.proc.poll() is None and time.monotonic() - t0 < 30:
            subprocess.run(["true"])
            time.sleep(0.02)
        rc = tool.wait_exit(30)
        elapsed = time.monotonic() - t0
    assert rc == 0, tool.describe()
    hists = parse_histograms(tool.lines, "usecs")
    assert len(hists) == 2 and elapsed >= 1.5, tool.describe()
    for h in hists:
        assert sum(c for _, _, c in h) > 0, tool.describe()
        for i, (low, high, _) in enumerate(h):
            assert low == (0 if i == 0 else 1 << i)
            assert high == "inf" or int(high) == (1 << (i + 1)) - 1


def test_rust_runqlat_ctrl_c_ends_the_wait_and_prints_millis(wasm):
    with Tool(wasm["rust_runqlat"], "-m", "30") as tool:
        tool.wait_ready(RUNQLAT_HEADER)
        for _ in range(20):
            subprocess.run(["true"])
        t0 = time.monotonic()
        finish(tool)
        elapsed = time.monotonic() - t0
    assert elapsed < 10, "the interval wait must end on SIGINT"
    hists = parse_histograms(tool.lines, "msecs")
    assert len(hists) == 1 and sum(c for _, _, c in hists[0]) > 0, tool.describe()


# ---- rust_xdpcount: XDP, a per-CPU array ----------------------------------------

@pytest.fixture
def veth():
    with veth_pair("10.214.0", "wbrs") as pair:
        yield pair


@pytest.mark.parametrize("mode", [[], ["-m", "generic"]], ids=["default", "generic"])
def test_rust_xdpcount_counts_packets_and_detaches(wasm, veth, mode):
    ns, host = veth
    with Tool(wasm["rust_xdpcount"], "-i", host, "-d", "0.3", *mode) as tool:
        tool.wait_ready(r"^TIME\s+PROTO")
        assert "xdp" in subprocess.run(["ip", "link", "show", host], capture_output=True, text=True).stdout
        udp_both_ways(ns)
        line = tool.wait_for(lambda l: re.search(r"\sUDP\s+17\s+(\d+)\s+(\d+)$", l), what="UDP counted")
        finish(tool)
    assert (int(line.group(1)), int(line.group(2))) == (5, 5 * 142), tool.describe()
    assert "xdp" not in subprocess.run(["ip", "link", "show", host], capture_output=True, text=True).stdout


def test_rust_xdpcount_unknown_interface_is_one_line(wasm):
    with Tool(wasm["rust_xdpcount"], "-i", "nosuchif0") as tool:
        assert tool.wait_exit(30) == 1
    assert [l for l in tool.err_lines if l.startswith("rust_xdpcount:")] == [
        "rust_xdpcount: cannot attach to nosuchif0: No such device (os error 43)"], tool.describe()


# ---- wasm-bpf build for Rust ---------------------------------------------------------

def build(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run([*wasm_bpf_command(), "build", *args], capture_output=True, text=True,
                          timeout=600, cwd=cwd)


def test_rust_build_writes_a_small_module_with_the_table_exported(tmp_path):
    out = tmp_path / "rb.wasm"
    res = build(str(EXAMPLES_DIR / "bootstrap" / "bootstrap.bpf.c"), str(EXAMPLES_DIR / "rust_bootstrap"),
                "-o", str(out), "--build-dir", str(tmp_path / "b"))
    assert res.returncode == 0, res.stderr
    module = wasmtime.Module.from_file(wasmtime.Engine(), str(out))
    exports = {e.name for e in module.exports}
    assert {"memory", "_start", "__indirect_function_table"} <= exports
    modules = {i.module for i in module.imports}
    assert modules <= {"wasm_bpf", "wasm_bpf_ext", "wasi_snapshot_preview1"}, modules
    assert out.stat().st_size < 300_000, out.stat().st_size
    skel = (tmp_path / "b" / "bootstrap.skel.rs").read_text()
    assert "pub struct Event {" in skel and "size_of::<Event>() == 168" in skel


def test_rust_build_of_a_lone_main_rs(tmp_path):
    """A .rs file without a cargo project: the crate is generated in the build directory."""
    (tmp_path / "main.rs").write_text(
        'include!(env!("WASM_BPF_SKEL"));\n'
        "fn main() {\n"
        "    let skel = runqlat_bpf::open().and_then(|o| o.load()).expect(\"load\");\n"
        "    let hists = skel.maps().hists().expect(\"hists\");\n"
        "    println!(\"hists: {} keys\", hists.keys().expect(\"keys\").count());\n"
        "}\n")
    out = tmp_path / "lone.wasm"
    res = build(str(EXAMPLES_DIR / "runqlat" / "runqlat.bpf.c"), str(tmp_path / "main.rs"), "-o", str(out))
    assert res.returncode == 0, res.stderr
    run = subprocess.run([*wasm_bpf_command(), "run", str(out)], capture_output=True, text=True, timeout=60)
    assert (run.returncode, run.stdout) == (0, "hists: 0 keys\n"), run.stderr


def test_rust_build_errors_are_one_line_with_the_cause(tmp_path):
    bpf = str(EXAMPLES_DIR / "bootstrap" / "bootstrap.bpf.c")
    res = build(bpf, str(tmp_path))
    assert res.returncode == 1
    assert res.stderr.splitlines()[0] == f"wasm-bpf build: step 'find the crate' failed: {tmp_path}"
    assert "no Cargo.toml in that directory" in res.stderr
    # A layout the guest gets wrong is a compile error, not garbage at run time.
    (tmp_path / "main.rs").write_text('include!(env!("WASM_BPF_SKEL"));\nfn main() { let _ = bootstrap_bpf::open(); }\n')
    res = build(bpf, str(tmp_path / "main.rs"), "--build-dir", str(tmp_path / "b"), "-o", str(tmp_path / "x.wasm"))
    assert res.returncode == 0, res.stderr
    skel = tmp_path / "b" / "bootstrap.skel.rs"
    skel.write_text(skel.read_text().replace("pub pid: i32,", "pub pid: i64,"))
    res = subprocess.run(["/usr/bin/cargo", "build", "--release", "--offline", "--target", "wasm32-wasi",
                          "--manifest-path", str(tmp_path / "b" / "crate" / "Cargo.toml"),
                          "--target-dir", str(tmp_path / "b" / "target")],
                         capture_output=True, text=True, timeout=600,
                         env={**os.environ, "RUSTC": "/usr/bin/rustc", "WASM_BPF_SKEL": str(skel)})
    assert res.returncode != 0 and "Event.pid: wasm32 size differs from BPF" in res.stderr, res.stderr
