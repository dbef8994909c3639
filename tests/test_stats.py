"""`wasm-bpf run --stats`: at exit, the records each event buffer delivered (and, for
perf buffers, lost), counted by the C event path."""
import os
import re
import signal
import subprocess

from example_helpers import Tool, build_examples

SIGSNOOP_HEADER = r"^TIME\s+PID\s+COMM\s+SIG\s+TPID\s+RESULT$"
HARMLESS = (signal.SIGCONT, signal.SIGWINCH, signal.SIGURG)  # `sleep` ignores them


def test_stats_count_the_records_delivered():
    sigsnoop = build_examples()["sigsnoop"]
    me = str(os.getpid())
    with Tool(sigsnoop, "-p", me, run_opts=("--stats",)) as tool:
        tool.wait_ready(SIGSNOOP_HEADER)
        child = subprocess.Popen(["sleep", "60"])
        for sig in HARMLESS:
            os.kill(child.pid, sig)
        child.kill()
        child.wait()
        for sig in (*HARMLESS, signal.SIGKILL):  # four events, all from this process
            tool.wait_for(rf"^\S+\s+{me}\s+\S+\s+{int(sig)}\s+{child.pid}\s+0$", what=f"signal {sig}")
        assert tool.interrupt() == 0, tool.describe()
    # One row per record; the SIGINT that stopped the tool may be one of them.
    rows = [line for line in tool.lines if re.match(rf"^\S+\s+{me}\s", line)]
    assert len(rows) >= 4, tool.describe()
    stats = [line for line in tool.err_lines if line.startswith("wasm-bpf: stats:")]
    assert len(stats) == 1, tool.describe()
    assert re.search(rf"ring buffer '\w+': {len(rows)} records delivered, lost: not counted", stats[0]), stats
