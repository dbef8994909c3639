"""The poll imports are served in C (host_abi/shim.c, struct wbpf_host): a guest that
polls in a loop never enters Python, and what the Python implementation checked per
poll still holds (the callback's type, the bad-input errors of host_abi/ABI.md, which
the shim hands back to Python for their messages)."""
import os

import pytest

import wasm_bpf
import wasm_bpf.imports
from guests.build import guests
from guests.helpers import EFAULT, EINVAL, Trigger, parse

POLL_METHODS = ("buffer_poll", "buffer_poll_batch", "buffer_poll_export")


@pytest.fixture(scope="module")
def g():
    return guests()


@pytest.fixture
def python_polls(monkeypatch):
    """Counts the polls that reach the Python implementation."""
    calls = []
    for name in POLL_METHODS:
        method = getattr(wasm_bpf.imports.WasmBpfHost, name)

        def counted(self, *args, _method=method, _name=name):
            calls.append(_name)
            return _method(self, *args)

        monkeypatch.setattr(wasm_bpf.imports.WasmBpfHost, name, counted)
    return calls


def test_a_guest_polling_in_a_loop_never_enters_python(g, python_polls):
    """The hostile guest's grow scenario polls per record and in batches until 48
    records have arrived (dozens of polls), then makes two polls with a buffer past
    the end of its memory: only those two reach Python, which answers -EFAULT."""
    with Trigger():
        inst = wasm_bpf.Instance(str(g["hostile"]), ["grow", str(os.getpid())], capture_output=True,
                                 report=lambda message: None)
        with inst:
            assert inst.run() == 0
    out = parse(inst.stdout)
    assert out["records"] == 48 and out["bad"] == 0, out
    assert out["past_end"] == out["batch_past_end"] == -EFAULT, out
    assert inst._host.polls >= 6, inst._host.polls  # the guest did poll in a loop, in C
    assert python_polls == ["buffer_poll", "buffer_poll_batch"]


def _wat_string(data: bytes) -> str:
    return "".join(f"\\{b:02x}" for b in data)


def test_a_callback_replaced_in_the_table_is_checked_again(g, python_polls):
    """The shim checks a callback's type once per buffer and function: a guest that
    puts a function of another type into the same table entry between two polls gets
    -EINVAL for the second poll (from Python, with the message), and the first
    function works again after it is put back."""
    obj = g["bpf"].read_bytes()
    wat = f"""(module
      (import "wasm_bpf" "wasm_load_bpf_object" (func $load (param i32 i32) (result i64)))
      (import "wasm_bpf" "wasm_bpf_map_fd_by_name" (func $fd (param i64 i32) (result i32)))
      (import "wasm_bpf" "wasm_bpf_buffer_poll" (func $poll (param i64 i32 i32 i32 i32 i32 i32) (result i32)))
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") {2 + len(obj) // 65536})
      (table (export "__indirect_function_table") 4 funcref)
      (elem (i32.const 1) $record $void)
      (func $record (param i32 i32 i32) (result i32) (i32.const 0))
      (func $void)
      (data (i32.const 16) "rb\\00")
      (data (i32.const 65536) "{_wat_string(obj)}")
      (global $h (mut i64) (i64.const 0))
      (global $fd (mut i32) (i32.const 0))
      (func $poll_once (result i32)
        (call $poll (global.get $h) (global.get $fd) (i32.const 1) (i32.const 0) (i32.const 1024)
                    (i32.const 64) (i32.const 0)))
      (func (export "_start")
        (global.set $h (call $load (i32.const 65536) (i32.const {len(obj)})))
        (global.set $fd (call $fd (global.get $h) (i32.const 16)))
        (if (i32.ne (call $poll_once) (i32.const 0)) (then (call $exit (i32.const 1))))
        (table.set (i32.const 1) (ref.func $void))
        (if (i32.ne (call $poll_once) (i32.const -{EINVAL})) (then (call $exit (i32.const 2))))
        (table.set (i32.const 1) (ref.func $record))
        (if (i32.ne (call $poll_once) (i32.const 0)) (then (call $exit (i32.const 3))))
        (call $exit (i32.const 0))))"""
    with wasm_bpf.Instance(wat.encode(), capture_output=True, report=lambda message: None,
                           config=wasm_bpf.RunConfig(verbose=True)) as inst:
        assert inst.run() == 0, inst.messages
    assert python_polls == ["buffer_poll"]
    assert any("wasm_bpf_buffer_poll: table entry 1 is not a function (i32, i32, i32) -> i32" in m
               for m in inst.messages), inst.messages
