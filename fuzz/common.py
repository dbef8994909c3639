"""What the three fuzz targets share: the corpus, the figures of a run, the kernel's
BPF ids, and a time-bounded hypothesis loop."""
import json
import os
import shutil
import subprocess
import time
from collections import Counter
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Dict, List, Optional, Set, Tuple

from hypothesis import HealthCheck, Phase, given, settings
from hypothesis.errors import Flaky, FlakyStrategyDefinition
from hypothesis.strategies import SearchStrategy

ROOT = Path(__file__).resolve().parent.parent
FUZZ_DIR = ROOT / "fuzz"
BUILD_DIR = FUZZ_DIR / "build"  # gitignored (build/)
CLANG = shutil.which("clang-19") or "clang-19"


# ---- the corpus ---------------------------------------------------------------------
def fuzz_object() -> Path:
    """fuzz/fuzz.bpf.c compiled (once; rebuilt when the source is newer)."""
    src, obj = FUZZ_DIR / "fuzz.bpf.c", BUILD_DIR / "fuzz.bpf.o"
    if not obj.exists() or obj.stat().st_mtime < src.stat().st_mtime:
        BUILD_DIR.mkdir(parents=True, exist_ok=True)
        subprocess.run([CLANG, "-g", "-O2", "-target", "bpf", "-D__TARGET_ARCH_x86",
                        "-I/usr/include/x86_64-linux-gnu", "-c", str(src), "-o", str(obj)],
                       check=True, capture_output=True)
    return obj


def bpf_objects() -> List[Path]:
    """Real BPF ELF objects to mutate: the examples' and the fuzzer's own."""
    found = sorted(ROOT.glob("wasm_examples/*/.output/*.bpf.o"))
    return [fuzz_object(), *found]


def wasm_modules() -> List[Path]:
    """Real guest modules to mutate: the examples (they embed their BPF objects)."""
    return sorted(ROOT.glob("wasm_examples/*/*.wasm"))


# ---- the kernel's BPF objects ---------------------------------------------------------
def held_bpf_fds(pid: str = "self") -> Set[Tuple[str, int]]:
    """("prog" | "link", id) for every BPF program or link fd process `pid` holds."""
    held = set()
    fd_dir = f"/proc/{pid}/fd"
    for fd in os.listdir(fd_dir):
        try:
            target = os.readlink(f"{fd_dir}/{fd}")
            if target not in ("anon_inode:bpf-prog", "anon_inode:bpf_link"):
                continue
            with open(f"/proc/{pid}/fdinfo/{fd}") as f:
                info = dict(line.split(":", 1) for line in f if ":" in line)
        except OSError:  # closed meanwhile
            continue
        if target == "anon_inode:bpf_link" and "link_id" in info:
            held.add(("link", int(info["link_id"])))
        elif "prog_id" in info:
            held.add(("prog", int(info["prog_id"])))
    return held


def kernel_bpf_ids() -> Set[Tuple[str, int]]:
    """Every BPF program and link id in the kernel."""
    from wasm_bpf._native import ffi, lib

    ids: Set[Tuple[str, int]] = set()
    cur = ffi.new("uint32_t *")
    for kind, next_id in (("prog", lib.bpf_prog_get_next_id), ("link", lib.bpf_link_get_next_id)):
        start = 0
        while next_id(start, cur) == 0:
            ids.add((kind, int(cur[0])))
            start = cur[0]
    return ids


def held_by_others() -> Set[Tuple[str, int]]:
    """What other processes hold (systemd, another tool): not ours, not a leak."""
    held: Set[Tuple[str, int]] = set()
    me = str(os.getpid())
    for pid in os.listdir("/proc"):
        if pid.isdigit() and pid != me:
            try:
                held |= held_bpf_fds(pid)
            except OSError:
                continue
    return held


def leaked_since(before: Set[Tuple[str, int]], wait: float = 3.0) -> Set[Tuple[str, int]]:
    """Programs and links created since `before` that are still in the kernel and held
    by no other process. The kernel frees programs after an RCU grace period: wait."""
    deadline = time.monotonic() + wait
    while True:
        left = kernel_bpf_ids() - before - held_by_others()
        if not left or time.monotonic() > deadline:
            return left
        time.sleep(0.05)


# ---- the figures of a run ---------------------------------------------------------------
@dataclass
class Finding:
    """A property that did not hold: a crash, a hang, an escaped exception, a leak or
    a result outside the documented set."""
    kind: str
    detail: str
    input_path: Optional[str] = None

    def as_dict(self) -> Dict[str, Any]:
        return {"kind": self.kind, "detail": self.detail, "input": self.input_path}


@dataclass
class Stats:
    target: str
    inputs: int = 0
    seconds: float = 0.0
    findings: List[Finding] = field(default_factory=list)
    outcomes: Counter = field(default_factory=Counter)  # distinct outcomes (errors, results)
    harness_restarts: int = 0

    def outcome(self, what: str) -> None:
        self.outcomes[what] += 1

    @property
    def crashes(self) -> int:
        return len(self.findings)

    def summary(self) -> str:
        errors = [o for o in self.outcomes if not o.startswith("ok")]
        return (f"{self.target}: {self.inputs} inputs in {self.seconds:.0f} s, "
                f"{self.crashes} crashes, {len(errors)} distinct errors, "
                f"{len(self.outcomes) - len(errors)} distinct successes")

    def as_dict(self) -> Dict[str, Any]:
        return {"target": self.target, "inputs": self.inputs, "seconds": round(self.seconds, 1),
                "crashes": self.crashes, "findings": [f.as_dict() for f in self.findings],
                "distinct_errors": len([o for o in self.outcomes if not o.startswith("ok")]),
                "outcomes": dict(self.outcomes.most_common())}


def save_input(crash_dir: Path, stats: Stats, data: bytes, suffix: str) -> str:
    """Keeps a reproducing input: <crash_dir>/<target>-<n><suffix>."""
    crash_dir.mkdir(parents=True, exist_ok=True)
    path = crash_dir / f"{stats.target}-{len(stats.findings) + 1}{suffix}"
    path.write_bytes(data)
    return str(path)


def write_report(path: Path, all_stats: List[Stats]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps({"targets": [s.as_dict() for s in all_stats]}, indent=2) + "\n")


# ---- hypothesis, for a number of seconds ------------------------------------------------
def run_for(seconds: float, strategy: SearchStrategy, body: Callable[[Any], None], stats: Stats,
            batch: int = 50) -> Stats:
    """Feeds inputs drawn from `strategy` to `body` until `seconds` have passed.

    hypothesis has no time budget, so it runs in batches, each freshly seeded
    (derandomize=False), sized from the time an input took so far so the last batch
    ends near the deadline. `body` records findings in `stats` instead of raising: a
    fuzz run goes on after a crash and counts them, and the reproducing input is
    saved, so shrinking is not needed."""
    start = time.monotonic()
    deadline = start + seconds
    inputs_before = stats.inputs

    def one(value: Any) -> None:
        stats.inputs += 1
        body(value)

    while time.monotonic() < deadline:
        done = stats.inputs - inputs_before
        per_input = (time.monotonic() - start) / done if done else 1.0
        size = max(1, min(batch, int((deadline - time.monotonic()) / max(per_input, 1e-3))))
        test = settings(max_examples=size, deadline=None, derandomize=False, database=None,
                        phases=[Phase.generate], suppress_health_check=list(HealthCheck))(given(strategy)(one))
        try:
            test()
        except (FlakyStrategyDefinition, Flaky):
            # The harness draws from what the kernel returned; should hypothesis see two
            # inputs with one prefix draw differently, it gives up on the batch. The
            # inputs of that batch were run and checked: go on with a new one.
            stats.harness_restarts += 1
    stats.seconds += time.monotonic() - start
    return stats
