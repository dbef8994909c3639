"""`make bench`, Python API figures (docs/python-api.md): decoded records per second
into Python, measured on a ring the driver has filled before the clock starts (the
consumer's own rate; the producer's is reported beside it): in batches by
Events.read(), by iteration, and through a bcc-style callback per record
(Events.poll()), Map.items() of a 100k-entry hash
(batch lookups, and key by key for comparison), and the start of an Instance of
bootstrap.wasm from its path and from a wasm_bpf.Module. Results:
bench-results/pyapi.json."""
import json
import os
import itertools
import statistics
import sys
import time
from pathlib import Path
from typing import Callable, Dict, List, Tuple

sys.path.insert(0, str(Path(__file__).resolve().parent))
import run as R  # noqa: E402  (the benchmark's build and driver)

import wasm_bpf  # noqa: E402

RECORDS = 512_000  # drained per run: 8000 triggers of 64 records
MAP_ENTRIES = 100_000
FIXTURE = R.ROOT / "tests" / "pyapi_fixtures" / "counters.bpf.c"


def drain_rate(consume: Callable[[wasm_bpf.Events], int]) -> Tuple[float, float, float]:
    """(records/s the consumer decodes from the filled ring, the same per second of its
    thread's CPU time -- steadier on a shared machine --, records/s the driver made)."""
    with wasm_bpf.load(R.OUT / "fill" / "bench.bpf.o", event_type="struct bench_event") as obj:
        events = obj.events("rb")
        produced = R.drive("count", str(RECORDS // R.DRAIN_RECORDS_PER_TRIGGER))  # returns when all are in the ring
        start, cpu_start = time.perf_counter(), time.thread_time()
        got = 0
        while got < RECORDS:
            n = consume(events)
            if n == 0:
                break
            got += n
        seconds, cpu_seconds = time.perf_counter() - start, time.thread_time() - cpu_start
    if got < RECORDS:  # more: another driver ran at the same time (its records are decoded too)
        raise RuntimeError(f"drained {got} of {RECORDS} records")
    return got / seconds, got / cpu_seconds, RECORDS / produced["seconds"]


def batches(events: wasm_bpf.Events) -> int:
    return len(events.read(0))


def iteration(events: wasm_bpf.Events) -> int:
    seen = 0
    for _ in itertools.islice(events, RECORDS):
        seen += 1
    return seen


def per_record(events: wasm_bpf.Events) -> int:
    seen: List[int] = []
    return events.poll(lambda r: seen.append(r["seq"]), 0)


def map_rates() -> Dict[str, float]:
    with wasm_bpf.load(FIXTURE, attach=False) as obj:
        big = obj.maps["big"]
        start = time.perf_counter()
        for i in range(MAP_ENTRIES):
            big[i] = i
        writes = MAP_ENTRIES / (time.perf_counter() - start)
        start = time.perf_counter()
        items = big.items()
        batch = len(items) / (time.perf_counter() - start)
        start = time.perf_counter()
        by_key = sum(1 for _ in big._items_by_key()) / (time.perf_counter() - start)
    assert len(items) == MAP_ENTRIES
    return {"items_batch_per_s": batch, "items_by_key_per_s": by_key, "setitem_per_s": writes}


def instance_start_ms(runs: int = 50) -> Dict[str, float]:
    path = R.ROOT / "wasm_examples" / "bootstrap" / "bootstrap.wasm"
    module = wasm_bpf.Module(path)

    def median_ms(source: object) -> float:
        times = []
        for _ in range(runs):
            start = time.perf_counter()
            wasm_bpf.Instance(source).close()
            times.append(time.perf_counter() - start)
        return statistics.median(times) * 1000

    return {"instance_from_path_ms": median_ms(path), "instance_from_module_ms": median_ms(module)}


def main() -> int:
    R.build()
    runs = 3
    rates = {name: [drain_rate(fn) for _ in range(runs)]
             for name, fn in (("batches", batches), ("iteration", iteration), ("per_record_callback", per_record))}
    out = {
        **{f"records_{name}_per_s": statistics.median(c for c, _, _ in r) for name, r in rates.items()},
        **{f"records_{name}_per_cpu_s": statistics.median(c for _, c, _ in r) for name, r in rates.items()},
        "records_produced_per_s": statistics.median(p for r in rates.values() for _, _, p in r),
        "load_average_1min": os.getloadavg()[0],
        **map_rates(),
        **instance_start_ms(),
    }
    path = R.ROOT / "bench-results" / "pyapi.json"
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(out, indent=2))
    for k, v in out.items():
        print(f"{k:40} {v:>12,.2f}" if k.endswith("_ms") else f"{k:40} {v:>12,.0f}")
    print(f"\nwritten to {path}")
    return 0


if __name__ == "__main__":
    sys.exit(main() if os.geteuid() == 0 else "bench: needs root (BPF)")
