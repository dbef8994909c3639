"""The C event path calls wasmtime's C API directly; these checks pin what it relies on
(see host_abi/shim.h) to the wasmtime-py version the package requires."""
import ctypes
import re
from importlib.metadata import version
from pathlib import Path

import pytest
import wasmtime
from wasmtime import _bindings, _ffi, _func

from wasm_bpf._shim import ffi

pytestmark = pytest.mark.unit  # kernel-free (make test-unit)

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_installed_wasmtime_is_the_pinned_one():
    pinned = re.search(r'"wasmtime==([^"]+)"', PYPROJECT.read_text()).group(1)
    assert version("wasmtime") == pinned


def test_val_raw_layout_matches_the_shim():
    assert ctypes.sizeof(_bindings.wasmtime_val_raw) == ffi.sizeof("wbpf_val_raw")
    assert _bindings.wasmtime_val_raw.i32.offset == 0
    assert _bindings.wasmtime_val_raw.i64.offset == 0


def test_call_unchecked_signature():
    fn = _ffi.dll.wasmtime_func_call_unchecked
    assert [t.__name__ for t in fn.argtypes] == [
        "LP_wasmtime_context", "LP_wasmtime_func", "LP_wasmtime_val_raw", "c_ulong", "LP_LP_wasm_trap_t"]
    assert fn.restype.__name__ == "LP_wasmtime_error"
    assert [t.__name__ for t in _ffi.dll.wasmtime_memory_data.argtypes] == ["LP_wasmtime_context", "LP_wasmtime_memory"]


def test_private_members_the_host_uses_exist():
    store = wasmtime.Store()
    memory = wasmtime.Memory(store, wasmtime.MemoryType(wasmtime.Limits(1, None)))
    func = wasmtime.Func(store, wasmtime.FuncType([], []), lambda: None)
    assert isinstance(memory._memory, _bindings.wasmtime_memory)
    assert isinstance(func._func, _bindings.wasmtime_func)
    assert store._context() is not None
    assert callable(_func.maybe_raise_last_exn)
    assert hasattr(wasmtime.Caller, "_context")
