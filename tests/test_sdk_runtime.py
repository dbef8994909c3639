"""The C SDK at run time, under the real host: skeleton lifecycle, .rodata/.data/.bss
mirrors, autoload/autoattach, non-blocking poll, record truncation, the map API."""
import os
import subprocess
import threading

import pytest

from sdk_fixtures.sdk_helpers import FIXTURES, imports
from wasm_bpf_sdk.build import BuildConfig, build

WASI_ENOENT, WASI_EINVAL, WASI_EPERM = 44, 28, 63


@pytest.fixture(scope="module")
def globals_guest(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("runtime")
    return build(BuildConfig(FIXTURES / "globals.bpf.c", [FIXTURES / "globals.c"],
                             tmp / "globals.wasm", build_dir=tmp, cflags=["-Wall", "-Werror"]))


def run_with_getppid_calls(module) -> tuple[dict, str]:
    """Run the guest while this process calls getppid(), which fires the guest's
    BPF program; returns its key=value lines and its stderr."""
    stop = threading.Event()

    def trigger():
        while not stop.wait(0.002):
            os.getppid()

    t = threading.Thread(target=trigger, daemon=True)
    t.start()
    try:
        proc = subprocess.run(["wasm-bpf", "run", str(module)], capture_output=True, text=True,
                              timeout=30)
    finally:
        stop.set()
        t.join()
    out = {}
    for line in proc.stdout.splitlines():
        key, _, value = line.partition("=")
        out[key] = int(value) if value.lstrip("-").isdigit() else value
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return out, proc.stderr


def test_skeleton_runtime(globals_guest):
    out, stderr = run_with_getppid_calls(globals_guest)
    assert out["done"] == 1
    # Initial values come from the ELF image, through the wasm32 layout.
    assert out["pre_ro_all_l"] == -1234567890123
    assert out["pre_data_bits_c"] == -3
    assert out["pre_data_name"] == "hello world!"
    # autoload off keeps the verifier-rejected program out; autoattach off skips
    # the XDP program whose auto-attach would fail.
    assert out["set_autoload"] == 0 and out["load"] == 0 and out["attach"] == 0
    assert out["set_autoload_after_load"] == -WASI_EINVAL
    # After load the mirrors show the kernel's values: pre-load .bss writes were
    # pushed, .data/.rodata writes went through the ELF image, .kconfig was read.
    assert out["bss_all_l"] == 99 and out["data_long"] == 78
    assert out["kver"] > 0 and out["bpf_syscall"] == 1
    # The BPF program saw the same values, and a write-back after load.
    assert out["wait"] == 0 and out["seen_ro"] == 42 and out["seen_data"] == 78
    assert out["writeback"] == 0 and out["wait_writeback"] == 0
    assert out["rodata_writeback"] == -WASI_EPERM  # frozen by the kernel
    # poll(0) does not block; records larger than the record buffer are truncated.
    assert out["poll0"] == 0 and out["poll0_ms"] < 50
    assert out["record_size"] == 0 and out["poll"] >= 1 and out["records"] == out["poll"]
    assert out["last_size"] == 8
    # Map API with libbpf 1.x signatures and checks; errors are WASI errnos.
    assert out["update_short_key"] == -WASI_EINVAL and "unexpected key size 2" in stderr
    assert out["update"] == 0 and out["lookup"] == 0 and out["value"] == 5
    assert out["next"] == 0 and out["next_key"] == 1 and out["delete"] == 0
    assert out["lookup_deleted"] == -WASI_ENOENT and out["errno"] == WASI_ENOENT


def test_extension_import_only_with_autoload(globals_guest):
    """wasm_bpf_ext is imported by guests that turn autoload off, and only then."""
    assert imports(globals_guest)[("wasm_bpf_ext", "wasm_load_bpf_object_ex")] == (
        ["i32", "i32", "i32", "i32"], ["i64"])
