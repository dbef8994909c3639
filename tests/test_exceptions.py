"""One exception hierarchy: whatever wasm-bpf or its SDK raises, an embedding application
catches it as WasmBpfError (kernel-free)."""
import importlib
import inspect
import pkgutil

import pytest

import wasm_bpf
import wasm_bpf_sdk
from wasm_bpf.errors import WasmBpfError
from wasm_bpf.kernel_only.runner import load_input

pytestmark = pytest.mark.unit


def _exception_classes():
    for package in (wasm_bpf, wasm_bpf_sdk):
        for info in pkgutil.walk_packages(package.__path__, package.__name__ + "."):
            if info.name.endswith(".__main__"):  # runs the command line
                continue
            module = importlib.import_module(info.name)
            for _, cls in inspect.getmembers(module, inspect.isclass):
                if issubclass(cls, BaseException) and cls.__module__ == info.name:
                    yield cls


# Control flow inside the host, caught where it is raised; never seen by a caller.
INTERNAL = {"wasm_bpf.hostfuncs.Interrupted"}  # ends a running Python host function


def test_every_exception_class_derives_from_wasm_bpf_error():
    classes = set(_exception_classes())
    assert len(classes) >= 13, classes
    outside = sorted(c.__qualname__ for c in classes
                     if not issubclass(c, WasmBpfError) and f"{c.__module__}.{c.__qualname__}" not in INTERNAL)
    assert not outside, f"not under WasmBpfError: {outside}"


def test_a_kernel_only_input_error_is_caught_as_wasm_bpf_error(tmp_path):
    with pytest.raises(WasmBpfError, match="cannot read .*missing.bpf.o"):
        load_input(str(tmp_path / "missing.bpf.o"))
