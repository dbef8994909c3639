"""`python3 -m fuzz [--seconds N] [--targets imports,elf,wasm,attach]`: runs the targets one
after the other, prints a summary of each and writes the figures to
bench-results/fuzz.json; reproducing inputs of findings go to
bench-results/fuzz-crashes/. Exit status 1 if anything was found."""
import argparse
import os
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List

from .common import ROOT, Stats, write_report

TARGETS = ("imports", "elf", "wasm", "attach")


def _target(name: str) -> Callable[[float, Path], Stats]:
    if name == "imports":
        from .imports_target import fuzz
    elif name == "elf":
        from .elf_target import fuzz
    elif name == "attach":
        from .attach_target import fuzz
    else:
        from .wasm_target import fuzz
    return fuzz


def main(argv: List[str]) -> int:
    parser = argparse.ArgumentParser(prog="python3 -m fuzz")
    parser.add_argument("--seconds", type=float, default=float(os.environ.get("FUZZ_SECONDS", 300)),
                        help="per target (default: $FUZZ_SECONDS or 300)")
    parser.add_argument("--targets", default=",".join(TARGETS))
    parser.add_argument("--out", type=Path, default=ROOT / "bench-results" / "fuzz.json")
    parser.add_argument("--crash-dir", type=Path, default=ROOT / "bench-results" / "fuzz-crashes")
    args = parser.parse_args(argv)
    names = [t for t in args.targets.split(",") if t]
    unknown = [t for t in names if t not in TARGETS]
    if unknown:
        parser.error(f"unknown target(s) {', '.join(unknown)}; known: {', '.join(TARGETS)}")
    results: List[Stats] = []
    for name in names:
        print(f"fuzzing {name} for {args.seconds:.0f} s ...", flush=True)
        started = time.monotonic()
        stats = _target(name)(args.seconds, args.crash_dir)
        results.append(stats)
        write_report(args.out, results)  # after each target: a later crash of the fuzzer keeps these
        print(f"  {stats.summary()} ({time.monotonic() - started:.0f} s wall)")
        for finding in stats.findings:
            print(f"  FOUND {finding.kind}: {finding.detail[:300]}\n    input: {finding.input_path}")
        common: Dict[str, int] = dict(stats.outcomes.most_common(5))
        for outcome, count in common.items():
            print(f"    {count:7d}  {outcome[:110]}")
    print("\nsummary")
    print(f"  {'target':8} {'inputs':>8} {'crashes':>8} {'distinct errors':>16}")
    for s in results:
        errors = len([o for o in s.outcomes if not o.startswith("ok")])
        print(f"  {s.target:8} {s.inputs:8d} {s.crashes:8d} {errors:16d}")
    print(f"figures: {args.out}")
    return 1 if any(s.crashes for s in results) else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
