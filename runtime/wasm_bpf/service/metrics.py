"""/metrics in the Prometheus text format (prometheus_client), read at scrape time:

  - per instance: state, links, CPU seconds of its thread, records delivered/lost per
    event buffer, log lines dropped, restarts and updates; the daemon's own process;
  - the exporter: what a kernel-only program measures, from its maps as they are now.
    A log2 histogram map (a value struct with `slots`, docs/kernel-only.md) becomes a
    Prometheus histogram per key; a map the instance's args name with `--map NAME`
    (as the kernel-only runner prints it) becomes gauges `wasm_bpf_map_value{map, key,
    field}`, one per integer of each entry (e.g. syscalls counted by id). Other maps
    are the program's own state (runqlat's start times): not exported.

The kernel counts each program's runs and run time only while BPF stats are enabled
(BPF_ENABLE_STATS: the daemon holds the fd libbpf's bpf_enable_stats() returns, so
the counting stops when the daemon does); they and a map's memory are read from the
fd's /proc/self/fdinfo."""
import json
from typing import Any, Dict, Iterator, List, Optional, Tuple

from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import CounterMetricFamily, GaugeMetricFamily, HistogramMetricFamily, Metric
from prometheus_client.process_collector import ProcessCollector
from prometheus_client.registry import Collector

from .manager import STARTING, RUNNING, EXITED, FAILED, InstanceManager, ManagedInstance, Run

BPF_STATS_RUN_TIME = 0  # enum bpf_stats_type

STATES = (STARTING, RUNNING, EXITED, FAILED)
MAX_SERIES_PER_MAP = 1000  # entries of one map exported at once: a label per key must stay bounded
LABELS = ["instance_id", "name"]  # not "instance": Prometheus gives that label to the scraped target


def enable_bpf_stats() -> Optional[int]:
    """The fd that keeps the kernel's BPF run-time stats on (None: refused, e.g. no
    CAP_SYS_ADMIN; the run counts then stay 0 and wasm_bpf_bpf_stats_enabled says so)."""
    from .._native import lib

    fd = lib.bpf_enable_stats(BPF_STATS_RUN_TIME)
    return fd if fd >= 0 else None


def fdinfo(fd: int) -> Dict[str, int]:
    """The integer fields of /proc/self/fdinfo/FD ({} once the fd is closed)."""
    fields = {}
    try:
        with open(f"/proc/self/fdinfo/{fd}") as f:
            for line in f:
                key, _, value = line.partition(":")
                if value.strip().isdigit():
                    fields[key] = int(value)
    except OSError:
        pass
    return fields


class InstanceCollector(Collector):
    def __init__(self, manager: InstanceManager, stats_enabled: bool) -> None:
        self._manager = manager
        self._stats_enabled = stats_enabled

    def collect(self) -> Iterator[Metric]:
        state = GaugeMetricFamily("wasm_bpf_instance_state", "1 for the instance's current state",
                                  labels=[*LABELS, "kind", "state"])
        links = GaugeMetricFamily("wasm_bpf_instance_links", "Programs attached", labels=LABELS)
        cpu = CounterMetricFamily("wasm_bpf_instance_cpu_seconds", "CPU time of the instance's thread",
                                  labels=LABELS)
        delivered = CounterMetricFamily("wasm_bpf_instance_events_delivered", "Records delivered by an event buffer",
                                        labels=[*LABELS, "map"])
        lost = CounterMetricFamily("wasm_bpf_instance_events_lost", "Records the kernel dropped (perf buffers)",
                                   labels=[*LABELS, "map"])
        dropped = CounterMetricFamily("wasm_bpf_instance_log_lines_dropped", "Log lines past the buffer",
                                      labels=LABELS)
        generation = GaugeMetricFamily("wasm_bpf_instance_generation", "Updates in place so far", labels=LABELS)
        restarts = CounterMetricFamily("wasm_bpf_instance_restarts", "Restarts", labels=LABELS)
        runs = CounterMetricFamily("wasm_bpf_instance_bpf_runs", "Runs of a BPF program (kernel BPF stats)",
                                   labels=[*LABELS, "program"])
        run_time = CounterMetricFamily("wasm_bpf_instance_bpf_run_seconds", "Time a BPF program ran (kernel BPF stats)",
                                       labels=[*LABELS, "program"])
        map_memory = GaugeMetricFamily("wasm_bpf_instance_map_memory_bytes", "Memory of its BPF maps (memlock)",
                                       labels=LABELS)
        memory = GaugeMetricFamily("wasm_bpf_instance_memory_bytes", "A Wasm guest's linear memory", labels=LABELS)
        instances = self._manager.list()
        for m in instances:
            run = m.run
            if run is None:
                continue
            ids = [m.id, m.name]
            for s in STATES:
                state.add_metric([*ids, m.spec.source.kind, s], 1.0 if run.state == s else 0.0)
            links.add_metric(ids, run.links())
            cpu.add_metric(ids, run.cpu_seconds())
            for map_name, count, kernel_lost in _summed(run):
                delivered.add_metric([*ids, map_name], count)
                if kernel_lost is not None:
                    lost.add_metric([*ids, map_name], kernel_lost)
            dropped.add_metric(ids, m.log.dropped)
            generation.add_metric(ids, m.generation)
            restarts.add_metric(ids, m.restarts)
            objects = run.objects()
            for obj in objects:
                for program, fd in obj.program_fds.items():
                    info = fdinfo(fd)
                    if "run_cnt" in info:
                        runs.add_metric([*ids, program], info["run_cnt"])
                        run_time.add_metric([*ids, program], info.get("run_time_ns", 0) / 1e9)
            if objects:
                map_memory.add_metric(ids, sum(fdinfo(fd).get("memlock", 0) for obj in objects
                                               for fd in obj.map_fds.values()))
            guest_memory = run.memory_bytes()
            if guest_memory is not None:
                memory.add_metric(ids, guest_memory)
        yield GaugeMetricFamily("wasm_bpf_instances", "Instances the daemon keeps", value=len(instances))
        yield GaugeMetricFamily("wasm_bpf_bpf_stats_enabled", "1 while the kernel counts BPF program runs for us",
                                value=1 if self._stats_enabled else 0)
        yield from (state, links, cpu, delivered, lost, dropped, generation, restarts, runs, run_time, map_memory,
                    memory)
        yield from _exported(instances)


def _summed(run: Run) -> List[Tuple[str, int, Optional[int]]]:
    """Per map name: a Wasm guest may close and reopen a buffer; its counts add up."""
    totals: Dict[str, Tuple[int, Optional[int]]] = {}
    for name, count, lost in run.buffer_stats():
        before, before_lost = totals.get(name, (0, None))
        totals[name] = (before + count, None if lost is None else (before_lost or 0) + lost)
    return [(name, count, lost) for name, (count, lost) in totals.items()]


def _exported(instances: List[ManagedInstance]) -> Iterator[Metric]:
    """The kernel-only programs' maps (see the module's docstring)."""
    from ..kernel_only.mapprint import entries, hist_member, merged_value
    from ..kernel_only.decode import decode
    from ..kernel_only.spec import TABLE_MAP_TYPES
    from ..maps import MapInfo

    hists = HistogramMetricFamily("wasm_bpf_map_histogram", "A log2 histogram map of a kernel-only program",
                                  labels=[*LABELS, "map", "key"])
    values = GaugeMetricFamily("wasm_bpf_map_value", "An integer in a map of a kernel-only program",
                               labels=[*LABELS, "map", "key", "field"])
    for m in instances:
        run = m.run
        obj, spec = (run.kernel_object, run.kernel_spec) if run is not None else (None, None)
        if obj is None or spec is None:
            continue
        for map_spec in spec.maps:
            if map_spec.type not in TABLE_MAP_TYPES or map_spec.value is None:
                continue
            member, mode = hist_member(map_spec.value)
            if mode != "log2" and map_spec.name not in _named_maps(m.spec.args):
                continue
            try:
                info = MapInfo.of_fd(obj.map_fd(map_spec.name))
                rows = entries(info.fd, map_spec, info.key_size, info.value_size)[:MAX_SERIES_PER_MAP]
            except Exception:  # the run ended and closed the map under us: no series this scrape
                continue
            for raw_key, raw_values in rows:
                key = _label(decode(map_spec.key, raw_key) if map_spec.key else raw_key.hex())
                value = merged_value(map_spec.value, raw_values)
                labels = [m.id, m.name, map_spec.name, key]
                if member and mode == "log2" and isinstance(value, dict):
                    hists.add_metric(labels, _log2_buckets(value.get(member, [])), None)
                else:
                    for field, number in _integers(value):
                        values.add_metric([*labels, field], number)
    yield hists
    yield values


def _named_maps(args: List[str]) -> set:
    """The maps named by `--map NAME` / `--map=NAME` in a kernel-only program's args."""
    named = {value for flag, value in zip(args, args[1:]) if flag == "--map"}
    return named | {a.split("=", 1)[1] for a in args if a.startswith("--map=")}


def _label(key: Any) -> str:
    return key if isinstance(key, str) else json.dumps(key, sort_keys=True, default=str)


def _log2_buckets(slots: List[int]) -> List[Tuple[str, float]]:
    """Slot i counts values in [2^i, 2^(i+1)) (slot 0: 0 and 1): cumulative buckets
    whose bounds are each slot's highest value."""
    buckets, total = [], 0
    for i, count in enumerate(slots):
        total += count
        buckets.append((str(float((1 << (i + 1)) - 1)), float(total)))
    buckets.append(("+Inf", float(total)))
    return buckets


def _integers(value: Any, prefix: str = "") -> Iterator[Tuple[str, float]]:
    """(field path, number) of every integer in a decoded value ("" for a bare integer)."""
    if isinstance(value, bool):
        return
    if isinstance(value, (int, float)):
        yield prefix, float(value)
    elif isinstance(value, dict):
        for name, inner in value.items():
            yield from _integers(inner, f"{prefix}.{name}" if prefix else name)


def metrics_registry(manager: InstanceManager, stats_enabled: bool) -> CollectorRegistry:
    """The daemon's own registry (not prometheus_client's global one)."""
    registry = CollectorRegistry(auto_describe=False)
    registry.register(ProcessCollector(registry=None))
    registry.register(InstanceCollector(manager, stats_enabled))
    return registry


def metrics_text(registry: CollectorRegistry) -> Tuple[bytes, str]:
    return generate_latest(registry), CONTENT_TYPE_LATEST
