"""The C event path calls wasmtime's C API directly; these checks pin what it relies on
(see host_abi/shim.h) to the wasmtime-py version the package requires."""
import ctypes
import re
from importlib.metadata import version
from pathlib import Path

import pytest
import wasmtime
from wasmtime import _bindings, _ffi, _func

from wasm_bpf._shim import ffi, lib

pytestmark = pytest.mark.unit  # kernel-free (make test-unit)

PYPROJECT = Path(__file__).resolve().parents[1] / "pyproject.toml"


def test_installed_wasmtime_is_the_pinned_one():
    pinned = re.search(r'"wasmtime==([^"]+)"', PYPROJECT.read_text()).group(1)
    assert version("wasmtime") == pinned


def test_val_raw_layout_matches_the_shim():
    assert ctypes.sizeof(_bindings.wasmtime_val_raw) == ffi.sizeof("wbpf_val_raw")
    assert _bindings.wasmtime_val_raw.i32.offset == 0
    assert _bindings.wasmtime_val_raw.i64.offset == 0


def test_value_layouts_match_the_shim():
    """The poll imports read exports and table entries into these (shim.h)."""
    for ours, theirs in (("wbpf_func", _bindings.wasmtime_func), ("wbpf_stored", _bindings.wasmtime_memory),
                         ("wbpf_stored", _bindings.wasmtime_table), ("wbpf_extern", _bindings.wasmtime_extern),
                         ("wbpf_val", _bindings.wasmtime_val)):
        assert ffi.sizeof(ours) == ctypes.sizeof(theirs), ours
    assert ffi.offsetof("wbpf_extern", "of") == _bindings.wasmtime_extern.of.offset
    assert ffi.offsetof("wbpf_val", "of") == _bindings.wasmtime_val.of.offset
    assert _bindings.wasmtime_valunion.funcref.offset == 0
    assert (lib.WBPF_EXTERN_FUNC, lib.WBPF_EXTERN_TABLE, lib.WBPF_EXTERN_MEMORY) == (
        _ffi.WASMTIME_EXTERN_FUNC.value, _ffi.WASMTIME_EXTERN_TABLE.value, _ffi.WASMTIME_EXTERN_MEMORY.value)
    assert lib.WBPF_VAL_FUNCREF == _ffi.WASMTIME_FUNCREF.value
    assert lib.WBPF_VALTYPE_I32 == _ffi.WASM_I32.value


def test_the_entry_points_the_shim_takes_exist():
    for name, _ in ffi.typeof("struct wbpf_wasmtime_api").fields:
        assert hasattr(_ffi.dll, name), name
    unchecked = _bindings.wasmtime_func_unchecked_callback_t
    assert [t.__name__ for t in unchecked._argtypes_] == [
        "c_void_p", "LP_wasmtime_caller", "LP_wasmtime_val_raw", "c_ulong"]


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
    assert hasattr(wasmtime.Caller, "_context") and hasattr(wasmtime.Caller, "_invalidate")
    assert hasattr(_func, "LAST_EXCEPTION")  # where the poll imports' fallback leaves an exception
    assert callable(wasmtime.Trap("x")._consume)
