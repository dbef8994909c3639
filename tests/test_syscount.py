"""The syscount example: system calls counted in Wasm from batches of records (the
batch delivery extension), end to end through `wasm-bpf run`."""
import re
import subprocess
import sys

from example_helpers import EXAMPLES_DIR, Tool

CALLS = 5000


def build() -> str:
    subprocess.run(["make", "-s", "-C", str(EXAMPLES_DIR / "syscount")], check=True)
    return EXAMPLES_DIR / "syscount" / "syscount.wasm"


def test_counts_every_syscall_of_a_process():
    # The child waits for a line, then makes CALLS getppid() calls and exits.
    child = subprocess.Popen([sys.executable, "-c",
                              f"import os, sys; sys.stdin.readline(); [os.getppid() for _ in range({CALLS})]"],
                             stdin=subprocess.PIPE, text=True)
    try:
        with Tool(build(), "-p", str(child.pid), "-i", "1", "-c", "3") as tool:
            tool.wait_ready(r"^Counting syscalls of one process")
            child.communicate("go\n", timeout=30)
            assert child.returncode == 0
            assert tool.wait_exit(30) == 0, tool.describe()
    finally:
        child.kill()
    summaries = [re.match(r"^\[\S+\] (\d+) syscalls in (\d+) batches, (\d+) dropped$", line)
                 for line in tool.lines]
    summaries = [m for m in summaries if m]
    assert len(summaries) == 3, tool.describe()
    total = sum(int(m.group(1)) for m in summaries)
    rows = [re.match(r"^python3?\S*\s+(\d+)$", line) for line in tool.lines]
    counted = sum(int(m.group(1)) for m in rows if m)
    assert counted == total >= CALLS, tool.describe()
    assert all(m.group(3) == "0" for m in summaries), tool.describe()
    # Batches, not one call per record.
    assert sum(int(m.group(2)) for m in summaries) < total / 10, tool.describe()
