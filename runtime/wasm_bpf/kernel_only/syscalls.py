"""Syscall numbers -> names, read once from the kernel headers installed with the BPF
toolchain (linux-libc-dev: `asm/unistd_64.h`, `#define __NR_read 0` lines), so the
table is the kernel's own, not a list kept here. Only x86_64 is read; on another
architecture, or without the header, numbers stay numbers."""
from __future__ import annotations

import functools
import platform
import re
from pathlib import Path
from typing import Dict

HEADERS = {"x86_64": ("/usr/include/x86_64-linux-gnu/asm/unistd_64.h", "/usr/include/asm/unistd_64.h")}
_DEFINE = re.compile(r"^#define\s+__NR_(\w+)\s+(\d+)\s*$", re.M)


def parse(text: str) -> Dict[int, str]:
    return {int(nr): name for name, nr in _DEFINE.findall(text)}


@functools.lru_cache(maxsize=None)
def names(machine: str = "") -> Dict[int, str]:
    """{number: name} of this machine's syscalls; empty when the header is not there."""
    for path in HEADERS.get(machine or platform.machine(), ()):
        try:
            return parse(Path(path).read_text())
        except OSError:
            continue
    return {}
