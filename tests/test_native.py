"""The kernel boundary's start-up checks (kernel-free)."""
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
