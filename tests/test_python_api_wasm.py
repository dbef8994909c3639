"""The Python API's Wasm side: host functions a guest imports, wasm_bpf.Module
(compile once, instantiate many), and a running instance's maps read from the host."""
import subprocess
import threading
import time

import pytest

import wasm_bpf
from ko_helpers import EXAMPLES
from wasm_bpf.limits import Limits

GUEST = """
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (import "app" "record" (func $record (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 16) "hello host")
  (func (export "_start")
    (drop (call $record (i32.const 16) (i32.const 10)))
    (call $exit (call $record (i32.const {ptr}) (i32.const 5)))))
"""


def run_guest(functions, ptr=16, module=None):
    messages = []
    inst = wasm_bpf.Instance(module or GUEST.replace("{ptr}", str(ptr)).encode(),
                             config=wasm_bpf.RunConfig(host_functions=functions), report=messages.append)
    with inst:
        return inst.run(), messages


def test_a_guest_hands_bytes_to_a_python_host_function():
    seen = []

    @wasm_bpf.host_function(params=["i32", "i32"], results=["i32"], memory=True)
    def record(mem, ptr, size):
        seen.append(mem.read(ptr, size))
        return len(seen) + 40

    assert run_guest({"app": {"record": record}}) == (42, [])
    assert seen == [b"hello host", b"hello"]


def test_a_declared_type_other_than_the_functions_is_refused_before_the_run():
    called = []
    wrong = wasm_bpf.HostFunction(called.append, params=("i64",), results=("i32",))
    with pytest.raises(wasm_bpf.WasmBpfError, match=r"app.record is declared as \(i32, i32\) -> i32, "
                                                      r"the host function takes \(i64\) -> i32"):
        run_guest({"app": {"record": wrong}})
    with pytest.raises(wasm_bpf.WasmBpfError, match="app.record is not provided by this host"):
        run_guest({})
    assert called == []


def test_an_exception_in_a_host_function_traps_the_guest_only():
    @wasm_bpf.host_function(params=["i32", "i32"], results=["i32"])
    def record(ptr, size):
        raise ValueError("no room")

    status, messages = run_guest({"app": {"record": record}})
    assert status == 1
    assert messages[0] == "host function app.record: ValueError: no room"


def test_guest_pointers_are_bounds_checked():
    @wasm_bpf.host_function(params=["i32", "i32"], results=["i32"], memory=True)
    def record(mem, ptr, size):
        return len(mem.read(ptr, size))

    status, messages = run_guest({"app": {"record": record}}, ptr=65534)
    assert status == 1 and "host function app.record: HostCallError" in messages[0]


def test_a_module_compiles_once_and_instantiates_many():
    module = wasm_bpf.Module(GUEST.replace("{ptr}", "16").encode())
    seen = []
    record = wasm_bpf.HostFunction(lambda mem, p, n: seen.append(mem.read(p, n)) or 7, ("i32", "i32"), ("i32",), True)
    for _ in range(3):
        assert run_guest({"app": {"record": record}}, module=module) == (7, [])
    assert len(seen) == 6
    with pytest.raises(wasm_bpf.WasmBpfError, match="not a WebAssembly module"):
        wasm_bpf.Module(b"nonsense")


def test_a_running_instances_maps_are_read_with_the_map_api(tmp_path):
    policy = tmp_path / "p.toml"
    policy.write_text('[maps]\naccess = "read-only"\n')
    inst = wasm_bpf.Instance(EXAMPLES / "bootstrap" / "bootstrap.wasm", capture_output=True,
                             config=wasm_bpf.RunConfig(policy=wasm_bpf.Policy.load(policy)))
    runner = threading.Thread(target=inst.run)
    runner.start()
    try:
        deadline = time.monotonic() + 20
        while "exec_start" not in inst.maps() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)  # attached by now
        child = subprocess.Popen(["sleep", "3"])
        time.sleep(0.3)
        exec_start = inst.maps()["exec_start"]
        assert isinstance(exec_start[child.pid], int) and exec_start[child.pid] > 0
        assert child.pid in exec_start.keys()
        refused = r"map 'exec_start' is read-only \(\[maps\] access\), so update is refused"
        with pytest.raises(wasm_bpf.WasmBpfError, match=refused):
            exec_start[child.pid] = 1
        child.kill()
        child.wait()
    finally:
        inst.stop()
        runner.join(30)
        inst.close()


@pytest.mark.parametrize("limit, status, message", [
    ({"cpu_limit": 0.5}, 152, "resource limit: the guest used 0.5 s of CPU time, its limit (raise it with --cpu-limit)"),
    ({"timeout": 0.5}, 124, None),
])
def test_an_endless_python_host_function_is_stopped_by_the_guests_limits(limit, status, message):
    spins = []

    @wasm_bpf.host_function(params=["i32", "i32"], results=["i32"])
    def record(ptr, size):
        while True:  # CPU in the guest's thread, in Python: never returns
            spins.append(1)
            spins.clear()

    messages = []
    config = wasm_bpf.RunConfig(host_functions={"app": {"record": record}}, timeout=limit.get("timeout"),
                                limits=Limits(cpu_limit=limit.get("cpu_limit")))
    inst = wasm_bpf.Instance(GUEST.replace("{ptr}", "16").encode(), config=config, report=messages.append)
    result = []
    thread = threading.Thread(target=lambda: result.append(inst.run()), daemon=True)
    start = time.monotonic()
    thread.start()
    thread.join(20)
    assert not thread.is_alive(), "the host function was never stopped"
    inst.close()
    assert result == [status] and time.monotonic() - start < 5
    if message:
        assert messages == [message]
    else:
        assert len(messages) == 1 and "timeout" in messages[0], messages


WRITER = """
(module
  (import "wasi_snapshot_preview1" "fd_write" (func $write (param i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (data (i32.const 64) "one\\ntw")
  (data (i32.const 80) "o\\nthree")
  (data (i32.const 0) "\\40\\00\\00\\00\\06\\00\\00\\00\\50\\00\\00\\00\\07\\00\\00\\00")
  (func (export "_start")
    (drop (call $write (i32.const 1) (i32.const 0) (i32.const 1) (i32.const 32)))
    (drop (call $write (i32.const 1) (i32.const 8) (i32.const 1) (i32.const 32)))
    (drop (call $write (i32.const 2) (i32.const 0) (i32.const 1) (i32.const 32)))))
"""


def test_stdout_and_stderr_as_a_python_callback_per_line():
    out, err = [], []
    result = wasm_bpf.run(WRITER.encode(), config=wasm_bpf.RunConfig(stdout=out.append, stderr=err.append))
    assert result.exit_code == 0
    assert out == [b"one", b"two", b"three"]  # a line split across writes, and the last one without "\n"
    assert err == [b"one", b"tw"]


def test_a_failing_line_callback_is_reported_once_and_fails_the_guests_writes():
    def broken(line):
        raise ValueError("full")

    messages = []
    with wasm_bpf.Instance(WRITER.encode(), config=wasm_bpf.RunConfig(stdout=broken), report=messages.append) as inst:
        assert inst.run() == 0
    assert messages == ["the stdout callback raised ValueError: full; the guest's writes to stdout fail from here on (EIO)"]
