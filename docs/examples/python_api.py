"""The Python API on two of the examples' BPF halves, no Wasm: bootstrap's exec/exit
records, and runqlat's run-queue latency histogram. Run as root:

    python docs/examples/python_api.py
"""
import subprocess
import time
from pathlib import Path

import wasm_bpf

EXAMPLES = Path(__file__).resolve().parents[2] / "wasm_examples"

# Records: a ring buffer's, decoded into dicts, read as they arrive.
with wasm_bpf.load(EXAMPLES / "bootstrap" / "bootstrap.bpf.c") as obj:
    child = subprocess.Popen(["/bin/true"])
    child.wait()
    for record in obj.events("events"):
        if record["pid"] == child.pid:
            print("exec" if record["kind"] == 1 else "exit", record["comm"], record["filename"] or "-",
                  record["exit_code"])
            if record["kind"] == 2:  # EVENT_EXIT
                break

# Maps: a histogram value is a Histogram; printing it draws the CLI's histogram.
with wasm_bpf.load(EXAMPLES / "runqlat" / "runqlat.bpf.c", globals={"targ_ms": False}) as obj:
    time.sleep(0.5)
    hist = obj.maps["hists"][0]
    print(f"{hist.total} wake-ups, the most common latency: "
          f"{max(hist.buckets, key=lambda b: b[2])[:2]} us")
    print(hist)
