"""The kernel boundary: its start-up checks and its kernel constants (kernel-free)."""
import re
from pathlib import Path

import pytest

from wasm_bpf import WasmBpfError, _native

pytestmark = pytest.mark.unit  # kernel-free (make test-unit)


def test_running_libbpf_is_new_enough():
    assert _native.libbpf_version() >= _native.MIN_LIBBPF
    _native.check_libbpf()


def test_too_old_libbpf_is_refused_with_the_fix(monkeypatch):
    monkeypatch.setattr(_native, "libbpf_version", lambda: (0, 8))
    with pytest.raises(WasmBpfError, match=r"libbpf 0\.8 is too old: wasm-bpf needs libbpf >= 1\.0"):
        _native.check_libbpf()


def _kernel_enumerators() -> dict:
    """Every enumerator of the running kernel's BTF (/sys/kernel/btf/vmlinux): name -> value."""
    ffi, lib = _native.ffi, _native.lib
    btf = lib.btf__load_vmlinux_btf()
    if btf == ffi.NULL:
        pytest.skip("the kernel has no BTF (/sys/kernel/btf/vmlinux)")
    values = {}
    try:
        for tid in range(1, lib.btf__type_cnt(btf)):
            t = lib.btf__type_by_id(btf, tid)
            if lib.btf_kind(t) == lib.BTF_KIND_ENUM:
                entries = lib.btf_enum(t)
                for i in range(lib.btf_vlen(t)):
                    values[ffi.string(lib.btf__name_by_offset(btf, entries[i].name_off)).decode()] = entries[i].val
    finally:
        lib.btf__free(btf)
    return values


def test_kernel_constants_the_shim_defines_by_hand_are_the_kernels():
    # shim.h writes the values its build headers (Linux 6.1) lack: a wrong one would
    # attach tcx or struct_ops links of another kind, or let a guest use a cgroup storage map.
    shim_h = (Path(__file__).resolve().parents[1] / "host_abi" / "shim.h").read_text()
    block = shim_h.split("Kernel ABI values newer", 1)[1].split("\n\n", 1)[0]
    names = re.findall(r"^#define WBPF_(\w+) ", block, re.M)
    assert len(names) >= 5, block
    kernel = _kernel_enumerators()
    for name in names:
        assert getattr(_native.lib, "WBPF_" + name) == kernel["BPF_" + name], name
