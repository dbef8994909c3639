"""Resource limits of one guest: memory, CPU, BPF objects, links, map memory.

Each limit has a safe default and a `wasm-bpf run` flag; a guest that reaches one
gets an error return (or is stopped, for CPU), and the host says which limit it hit
and which flag raises it. docs/sandbox.md has the table."""
from __future__ import annotations

import errno
import re
import threading
import time
from dataclasses import dataclass, fields
from typing import Any, Callable, Iterable, Optional, Tuple

from .errors import HostCallError, WasmBpfError
from .wasmfile import DeclaredItems

MiB = 1 << 20
GiB = 1 << 30
EXIT_LIMIT = 152  # 128 + SIGXCPU: what a shell shows for a process over its CPU limit
# The Wasm store under --max-memory: one linear memory and at most MAX_TABLES tables,
# whose elements (TABLE_ELEMENT bytes each in wasmtime) share 1/TABLE_SHARE of the
# budget, so memory + tables together stay within it.
MAX_TABLES = 4
HOST_INSTANCES = 1  # instantiated by the host in the guest's store: the WASI probe (one memory)
TABLE_ELEMENT = 8
TABLE_SHARE = 16


@dataclass
class Limits:
    """None means no limit. The defaults let every example and the benchmarks run
    and stop a guest that runs away."""

    max_memory: Optional[int] = GiB  # bytes of the Wasm store: linear memory and tables together
    cpu_limit: Optional[float] = None  # CPU seconds of the thread running the guest
    callback_limit: Optional[float] = 5.0  # CPU seconds one event callback may use
    max_objects: Optional[int] = 64  # BPF objects loaded at once
    max_links: Optional[int] = 1024  # attachments alive at once, all objects together
    max_map_memory: Optional[int] = GiB  # estimated kernel memory of one object's maps and perf rings

    @classmethod
    def unlimited(cls) -> "Limits":
        """For the host loading its user's own program (kernel-only runs)."""
        return cls(**{f.name: None for f in fields(cls)})

    @property
    def memory_share(self) -> Optional[int]:
        """Bytes the linear memory may take: --max-memory less the tables' share."""
        return None if self.max_memory is None else self.max_memory - self.max_memory // TABLE_SHARE

    @property
    def table_elements(self) -> Optional[int]:
        """Elements one table may hold: the tables' share spread over MAX_TABLES."""
        if self.max_memory is None:
            return None
        return self.max_memory // TABLE_SHARE // (MAX_TABLES * TABLE_ELEMENT)

    def apply_to_store(self, store: Any) -> None:
        """Bounds a wasmtime.Store: wasmtime limits each memory and each table on its
        own, so the counts are limited too (the guest's one instance and memory,
        check_module() refusing more, plus the host's WASI probe module and its 64 KiB
        memory, wasi_blocking.py; MAX_TABLES tables) and the sizes chosen so their sum
        cannot pass --max-memory."""
        if self.max_memory is not None:
            store.set_limits(memory_size=self.memory_share, table_elements=self.table_elements,
                             instances=1 + HOST_INSTANCES, tables=MAX_TABLES, memories=1 + HOST_INSTANCES)

    def check_module(self, declared: Optional[DeclaredItems]) -> None:
        """Refuses, before instantiation, a module whose declared memories and tables
        (their minimum sizes) already pass the store limits. declared None: the module
        could not be read (wasmtime still enforces the limits when instantiating)."""
        if self.max_memory is None or declared is None:
            return
        memories, tables = declared
        counts = ""
        if len(memories) > 1:
            counts = f"{len(memories)} memories"
        elif len(tables) > MAX_TABLES:
            counts = f"{len(tables)} tables"
        if counts:
            raise WasmBpfError(f"resource limit: the module declares {counts}; --max-memory budgets one store of "
                               f"1 memory and up to {MAX_TABLES} tables (build the module with fewer)")
        problem = ""
        if memories and memories[0] > (self.memory_share or 0):
            problem = (f"the module's memory starts at {human_size(memories[0])}, over the limit of "
                       f"{human_size(self.max_memory)} ({human_size(self.memory_share or 0)} for memory, "
                       "the rest for tables)")
        elif tables and max(tables) > (self.table_elements or 0):
            problem = (f"the module declares a table of {max(tables)} elements "
                       f"({human_size(max(tables) * TABLE_ELEMENT)}), over the {self.table_elements} per table "
                       f"its {human_size(self.max_memory)} limit allows")
        if problem:
            raise WasmBpfError(limit_message(problem, "--max-memory"))

    def near_max_memory(self, size: int) -> bool:
        """Did a guest whose memory ended at `size` bytes probably have a growth refused?"""
        return self.memory_share is not None and size + MiB > self.memory_share

    def check_objects(self, loaded: int) -> None:
        if self.max_objects is not None and loaded >= self.max_objects:
            raise LimitError(errno.EMFILE, f"the guest has {_count(loaded, 'BPF object')} loaded, the most allowed",
                             "--max-objects")

    def check_links(self, attached: int) -> None:
        if self.max_links is not None and attached >= self.max_links:
            raise LimitError(errno.EMFILE, f"the guest has {_count(attached, 'program')} attached, the most allowed",
                             "--max-links")

    def check_map_memory(self, maps: Iterable, rings: Iterable[Tuple[str, int]] = ()) -> None:
        """maps: DeclaredMap of an object about to be loaded (objspec.maps_of); rings:
        (name, bytes) of the perf buffers the host creates for it, one ring per CPU."""
        if self.max_map_memory is None:
            return
        sizes = sorted([(m.memory, m.name) for m in maps] + [(size, f"{name} (perf rings)") for name, size in rings],
                       reverse=True)
        total = sum(size for size, _ in sizes)
        if total > self.max_map_memory:
            largest = ", ".join(f"{name} {human_size(size)}" for size, name in sizes[:3])
            raise LimitError(errno.E2BIG, f"its maps need about {human_size(total)} of kernel memory "
                             f"(largest: {largest}), over the limit of {human_size(self.max_map_memory)}",
                             "--max-map-memory")


def limit_message(what: str, flag: str) -> str:
    return f"resource limit: {what} (raise it with {flag})"


class LimitError(HostCallError):
    """A resource limit refused a guest's request; the message names the flag."""

    def __init__(self, linux_errno: int, what: str, flag: str) -> None:
        super().__init__(linux_errno, limit_message(what, flag))
        self.flag = flag


class CpuWatchdog:
    """Samples the CPU clock of the thread running a guest, and calls on_exceeded once
    with a message when the guest's total CPU time, or that of one event callback
    that has not returned, passes its limit (a callback's nested calls, from polling
    another buffer inside it, count as its own time). Epoch interruption (what on_exceeded
    triggers) then stops the guest at its next Wasm instruction, even in a loop that
    never calls the host. Precision: one sampling period."""

    PERIOD = 0.02

    def __init__(self, limits: Limits, watch: Any, on_exceeded: Callable[[str], None]) -> None:
        self._limits = limits
        self._watch = watch  # struct wbpf_call_watch *, updated by the shim around guest calls
        self._on_exceeded = on_exceeded
        self._done = threading.Event()
        self._thread: Optional[threading.Thread] = None

    @property
    def needed(self) -> bool:
        return self._limits.cpu_limit is not None or self._limits.callback_limit is not None

    def start(self) -> None:
        """Called from the thread that is about to run the guest."""
        clock = time.pthread_getcpuclockid(threading.get_ident())
        self._thread = threading.Thread(target=self._sample, args=(clock, time.clock_gettime(clock)),
                                        name="wasm-bpf-cpu", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._done.set()
        if self._thread is not None:
            self._thread.join()

    def _sample(self, clock: int, start: float) -> None:
        cpu_limit, callback_limit = self._limits.cpu_limit, self._limits.callback_limit
        call_seen, call_cpu = None, 0.0  # the running callback, and the CPU time when first seen
        while not self._done.wait(self.PERIOD):
            used = time.clock_gettime(clock) - start
            if cpu_limit is not None and used > cpu_limit:
                self._on_exceeded(limit_message(f"the guest used {cpu_limit:g} s of CPU time, its limit",
                                                "--cpu-limit"))
                return
            if callback_limit is None:
                continue
            calls, running = self._watch.calls, self._watch.depth
            if not running:
                call_seen = None
            elif calls != call_seen:
                call_seen, call_cpu = calls, used
            elif used - call_cpu > callback_limit:
                self._on_exceeded(limit_message(f"an event callback used {callback_limit:g} s of CPU time "
                                                "without returning, its limit", "--callback-limit"))
                return


_SIZE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([kmgt]?)i?b?\s*$", re.IGNORECASE)
_UNITS = {"": 1, "k": 1 << 10, "m": MiB, "g": GiB, "t": 1 << 40}


def parse_size(text: str) -> int:
    """'512M', '1G', '65536', '2GiB' -> bytes (powers of 1024)."""
    match = _SIZE.match(text)
    if not match:
        raise ValueError(f"{text!r} is not a size (examples: 65536, 512M, 2G)")
    return int(float(match.group(1)) * _UNITS[match.group(2).lower()])


def _count(n: int, noun: str) -> str:
    return f"{n} {noun}" + ("" if n == 1 else "s")


def human_size(size: int) -> str:
    for unit, factor in (("GiB", GiB), ("MiB", MiB), ("KiB", 1 << 10)):
        if size >= factor:
            value = size / factor
            return f"{value:.0f} {unit}" if value == int(value) else f"{value:.1f} {unit}"
    return f"{size} B"
