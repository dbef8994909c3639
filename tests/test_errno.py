"""Guests see errno values in wasi-libc's numbering; check the table against the
wasi-libc headers installed on this machine (kernel-free)."""
import errno
import re
from pathlib import Path

import pytest

from wasm_bpf.errors import guest_errno_table, to_guest_errno

pytestmark = pytest.mark.unit  # kernel-free (make test-unit)

WASI_API = Path("/usr/include/wasm32-wasi/wasi/api.h")


def wasi_values() -> dict:
    text = WASI_API.read_text()
    return {m.group(1): int(m.group(2))
            for m in re.finditer(r"#define __WASI_ERRNO_(\w+) \(UINT16_C\((\d+)\)\)", text)}


@pytest.mark.skipif(not WASI_API.exists(), reason="wasi-libc headers are not installed")
def test_every_wasi_errno_maps_from_its_linux_name():
    values = wasi_values()
    checked = 0
    for name, wasi in values.items():
        linux = getattr(errno, "E" + name, None)
        if linux is None:
            continue
        assert to_guest_errno(linux) == wasi, name
        checked += 1
    assert checked > 70


def test_common_values_and_fallback():
    assert to_guest_errno(errno.EINTR) == 27
    assert to_guest_errno(errno.EINVAL) == 28
    assert to_guest_errno(errno.EOPNOTSUPP) == to_guest_errno(errno.ENOTSUP) == 58
    assert to_guest_errno(4095) == 29  # no WASI counterpart: EIO


def test_the_shims_table_is_to_guest_errno():
    assert guest_errno_table(4096) == [to_guest_errno(e) for e in range(4096)]
