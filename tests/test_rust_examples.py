"""The Rust guests (issue 18): the examples wasm_examples/rust_* built with `make`
(Debian's cargo/rustc, offline) and run through `wasm-bpf run` against the real
kernel. rust_bootstrap and rust_runqlat run the tests of their C twins
(tests/test_examples.py, parametrized: events with the right pid/comm, the
`.rodata` flag, the hash map read right, Ctrl-C). Here: rust_xdpcount (XDP, a
per-CPU array; Ctrl-C leaves nothing attached: `ip link` and the autouse
no_bpf_leaks fixture), bad arguments, and `wasm-bpf build` of a Rust guest: the
module it writes, a lone main.rs, and its one-line errors."""
import os
import re
import subprocess
from pathlib import Path

import pytest
import wasmtime

from conftest import veth_pair
from example_helpers import EXAMPLES_DIR, Tool, build_examples, wasm_bpf_command
from test_examples_attach import udp_both_ways

NAMES = ("rust_bootstrap", "rust_xdpcount")


@pytest.fixture(scope="module")
def wasm():
    return build_examples(NAMES)


def test_rust_bootstrap_bad_arguments_are_one_line_and_the_usage(wasm):
    with Tool(wasm["rust_bootstrap"], "-d", "soon") as tool:
        assert tool.wait_exit(30) == 2
    assert tool.err_lines[0] == "rust_bootstrap: invalid duration 'soon'", tool.describe()
    assert tool.err_lines[1] == "Usage: rust_bootstrap [-d MS] [-h]", tool.describe()


def finish(tool: Tool) -> None:
    rc = tool.interrupt()
    assert rc == 0, f"Ctrl-C must end the guest with status 0\n{tool.describe()}"
    assert not tool.stderr.strip(), tool.describe()


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
    res = build(bpf, str(EXAMPLES_DIR / "rust_bootstrap"), "--cflags", "-O0")
    assert res.returncode == 1
    assert res.stderr.splitlines() == ["wasm-bpf build: step 'check options' failed: --cflags -O0",
                                       "--cflags is for C sources: set rustc flags in RUSTFLAGS or the crate's Cargo.toml"]
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
