"""Running one guest module: WASI set-up, the BPF imports, stopping, exit status.

    with Instance("bootstrap.wasm", ["-d", "50"]) as inst:
        status = inst.run()          # inst.stop() from another thread ends it

Stopping is cooperative first: the next wasm_bpf_buffer_poll returns -EINTR, a sleep
or poll in progress (or the next one) fails with EINTR and stdin ends
(wasi_blocking.py), so the guest can leave its loop and clean up; a guest still
running after the grace period is interrupted at its next Wasm instruction (epoch
deadline) or blocking WASI call. A guest over a CPU limit (limits.py) is interrupted
at once."""
from __future__ import annotations

import os
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Callable, Dict, List, Mapping, Optional, Sequence, Tuple, Union

import wasmtime

from . import _native, hostfuncs
from ._native import ffi
from .buffers import BufferStats
from .errors import GuestExit, WasmBpfError
from .imports import WASI_MODULE, WasmBpfHost, describe_type, signature_of
from .limits import EXIT_LIMIT, MiB, CpuWatchdog, Limits, human_size
from .module import Module
from .objspec import object_name
from .policy import Policy
from .sandbox import Sandbox
from .wasi_blocking import (CAPTURE, INHERIT, NONE, BlockingCalls, CaptureBuffer, LineCallback, Stdio,
                            configure_output)

if TYPE_CHECKING:  # the map API (and its BTF decoder) loads when maps() is first called
    from .bpf_object import BpfObject
    from .mapview import Map

ModuleSource = Union[str, "os.PathLike[str]", bytes, Module]
TIMEOUT = "timeout"
EXIT_TIMEOUT = 124
EXIT_TRAP = 1
SIGNAL_REPEAT = 0.1  # s: the same signal again this soon is the same request (`timeout` sends two)
CLOSE_MARGIN = 5.0  # s after the grace period that close() waits for the guest's thread


@dataclass
class RunConfig:
    """How a guest runs. Nothing is shared with the guest unless asked for."""

    env: Mapping[str, str] = field(default_factory=dict)
    dirs: Sequence[Tuple[str, str]] = ()  # (host path, guest path) preopens
    timeout: Optional[float] = None  # seconds until a stop is requested
    grace_period: float = 2.0  # seconds between a stop request and the interrupt
    callback_module: str = "callback-wrapper"
    callback_export: str = "go-callback"
    perf_buffer_pages: int = 64
    verbose: bool = False
    handle_signals: bool = False  # SIGINT/SIGTERM request a stop (the CLI sets this)
    policy: Optional[Policy] = None  # what the module may do (docs/policy.md); None: the default
    limits: Limits = field(default_factory=Limits)  # memory, CPU, objects, links (docs/sandbox.md)
    sockets: Sequence[Any] = ()  # sockets (or their fds) a guest may filter by PID:FD (docs/policy.md)
    # The guest's stdio: "inherit", "none", a path, an open fd; stdin also bytes, the
    # outputs also "capture" (Instance.stdout/.stderr) or a callable, called with each
    # line (bytes without the newline; the last unfinished one at the end). Embedded guests do not read the
    # application's stdin unless given it; the CLI passes its own.
    stdin: Stdio = NONE
    stdout: Stdio = INHERIT
    stderr: Stdio = INHERIT
    capture_limit: Optional[int] = 16 * MiB  # bytes kept of each captured output; the rest is counted
    host_functions: hostfuncs.HostFunctions = field(default_factory=dict)  # module -> name -> HostFunction
    compile_cache: bool = True  # keep compiled modules between runs (compiled_cache.py); ignored for a Module


@dataclass(frozen=True)
class InstanceStatus:
    """A running (or ended) instance as seen from another thread (Instance.status())."""

    links: int  # BPF links attached now
    polled: bool  # the guest has polled an event buffer: it has loaded and attached what it wanted
    buffers: Tuple[BufferStats, ...]  # records delivered and lost per event buffer, open and closed
    memory_bytes: int  # the guest's linear memory at its last host call (0 before the first)
    objects: Tuple["BpfObject", ...]  # the BPF objects it has open now (their programs and maps)


@dataclass
class RunResult:
    exit_code: int
    stdout: bytes = b""
    stderr: bytes = b""


class Instance:
    """One run of a guest module. Owns every BPF object the guest loads; closing the
    instance (or leaving its ``with`` block) releases them."""

    def __init__(self, module: ModuleSource, args: Sequence[str] = (), *,
                 config: Optional[RunConfig] = None, capture_output: bool = False,
                 report: Optional[Callable[[str], None]] = None) -> None:
        """capture_output=True is short for stdout and stderr "capture"."""
        self.config = config or RunConfig()
        self.args = list(args)
        self.messages: List[str] = []  # host messages (load/attach failures, traps)
        self._report_to = report
        self._outputs = {"stdout": CAPTURE if capture_output else self.config.stdout,
                         "stderr": CAPTURE if capture_output else self.config.stderr}
        self._captured = {name: CaptureBuffer(self.config.capture_limit) for name in self._outputs}
        self._lines = {name: LineCallback(choice, name, self._report)
                       for name, choice in self._outputs.items() if callable(choice)}
        self._blocking = BlockingCalls(self.config.stdin)
        self._stop_flag = ffi.new("int *")
        self._stop_reason: Union[int, str, None] = None
        self._interrupted = False
        self._repeated: Union[int, str, None] = None  # the second request that interrupted at once
        self._exit_status: Optional[int] = None  # set by the guest's proc_exit
        self._limit_hit: Optional[str] = None  # the message of a CPU limit that stopped it
        self._host_calls = hostfuncs.Calls()  # the Python host function running now, if any
        self._timers: List[threading.Timer] = []
        self._lock = threading.Lock()
        self._ran = False
        self._runner: Optional[threading.Thread] = None  # the thread in run()
        self._finished = threading.Event()  # run() has released everything

        compiled = module if isinstance(module, Module) else Module(module, cache=self.config.compile_cache)
        self.module_path, self._declared = compiled.path, compiled.declared  # _declared: the store limits
        self._engine, self._module = compiled.take()
        self._host = WasmBpfHost(self._report, self._stop_flag, verbose=self.config.verbose,
                                 perf_pages=self.config.perf_buffer_pages,
                                 callback_export=self.config.callback_export,
                                 sandbox=Sandbox(self.config.policy, self.config.dirs, self.config.limits,
                                                 self.config.sockets),
                                 object_name=object_name(self.module_path))
        self._watchdog = CpuWatchdog(self.config.limits, self._host.call_watch, self._exceeded)

    # ---- output -------------------------------------------------------------------
    @property
    def buffer_stats(self) -> List[BufferStats]:
        """Records delivered and lost per event buffer, once the run has ended."""
        return list(self._host.buffer_stats)

    def status(self) -> InstanceStatus:
        """Links, buffers and memory now; safe to call from any thread while the guest runs."""
        objects = tuple(self._host.objects.values())
        return InstanceStatus(links=sum(len(obj.links) for obj in objects), polled=self._host.polls > 0,
                              buffers=tuple(self._host.live_buffer_stats()), memory_bytes=self._host.memory_bytes,
                              objects=objects)

    @property
    def stdout(self) -> bytes:
        """What the guest wrote to a captured stdout (at most capture_limit bytes)."""
        return bytes(self._captured["stdout"].data)

    @property
    def stderr(self) -> bytes:
        return bytes(self._captured["stderr"].data)

    @property
    def dropped_output(self) -> Dict[str, int]:
        """Bytes of each captured output dropped past RunConfig.capture_limit."""
        return {name: buf.dropped for name, buf in self._captured.items()}

    def _report(self, message: str) -> None:
        self.messages.append(message)
        if self._report_to is not None:
            self._report_to(message)
        else:
            print(f"wasm-bpf: {message}", file=sys.stderr, flush=True)

    def _wasi(self) -> wasmtime.WasiConfig:
        wasi = wasmtime.WasiConfig()
        wasi.argv = [self.module_path, *self.args]
        wasi.env = [(k, v) for k, v in self.config.env.items()]
        for host, guest in self.config.dirs:
            if not os.path.isdir(host):
                raise WasmBpfError(f"--dir {host}: no such directory")
            wasi.preopen_dir(host, guest)
        for name, choice in self._outputs.items():
            configure_output(wasi, name, choice, (self._lines.get(name) or self._captured[name]).write)
        self._blocking.configure(wasi)
        return wasi

    # ---- running --------------------------------------------------------------------
    def run(self) -> int:
        """Runs the guest's _start to the end; returns its exit status (see ABI.md)."""
        if self._ran:
            raise WasmBpfError("an Instance runs once; create a new one")
        self._ran = True
        self._runner = threading.current_thread()
        store = wasmtime.Store(self._engine)
        linker = wasmtime.Linker(self._engine)
        restore_signals = None
        try:
            store.set_epoch_deadline(1)
            if self._interrupted:  # before the store existed (stop() before run()): due at once
                self._engine.increment_epoch()
            self.config.limits.apply_to_store(store)
            store.set_wasi(self._wasi())
            self._define_imports(linker, store)
            self._check_wasi_imports(linker, store)
            if self.config.verbose:
                _native.capture_libbpf_log(1, sys.stderr.write)
            if self.config.handle_signals:
                restore_signals = self._install_signal_handlers()
            if self.config.timeout is not None:
                self._start_timer(self.config.timeout, lambda: self.stop(TIMEOUT))
            if self._watchdog.needed:
                self._watchdog.start()
            return self._call_start(linker, store)
        finally:
            self._watchdog.stop()
            for timer in self._timers:
                timer.cancel()
            self._host.close()
            # Drop the store now, not whenever the GC gets to it: its WASI output
            # callbacks must not outlive the run (or the interpreter).
            linker.close()
            store.close()
            self._blocking.close()
            # Only now: a signal during the cleanup above must not find default handlers.
            if restore_signals:
                restore_signals()
            if self.config.verbose:
                _native.capture_libbpf_log(0)
            for lines in self._lines.values():
                lines.flush()  # the last line, when it has no newline
            self._finished.set()
            self._report_dropped_output()

    def _define_imports(self, linker: wasmtime.Linker, store: wasmtime.Store) -> None:
        linker.allow_shadowing = True
        linker.define_wasi()
        # Our proc_exit: wasmtime's turns statuses >= 126 into a trap.
        linker.define_func(WASI_MODULE, "proc_exit", wasmtime.FuncType([wasmtime.ValType.i32()], []),
                           self._proc_exit)
        self._blocking.define(linker, store)  # poll_oneoff, which a stop must end
        defined = hostfuncs.define(linker, self._module, self.config.host_functions, self._report, self._host_calls)
        self._host.bind(linker, self._module, self.config.callback_module, defined, self._blocking.wake_fd)

    def _check_wasi_imports(self, linker: wasmtime.Linker, store: wasmtime.Store) -> None:
        """A WASI function this host lacks, or one declared with another type, is named
        before the run (instantiation would only trap with wasmtime's text)."""
        problems = []
        for imp in self._module.imports:
            if imp.module != WASI_MODULE:
                continue
            try:
                provided = linker.get(store, imp.module, imp.name or "")
            except wasmtime.WasmtimeError:
                problems.append(f"{imp.module}.{imp.name} is not provided by this host (WASI preview 1 only)")
                continue
            declared = imp.type
            expected = provided.type(store) if isinstance(provided, wasmtime.Func) else None
            if not isinstance(declared, wasmtime.FuncType) or expected is None \
                    or signature_of(declared) != signature_of(expected):
                want = describe_type(expected) if expected is not None else "not a function"
                problems.append(f"{imp.module}.{imp.name} is declared as {describe_type(declared)}, "
                                f"WASI's is {want}")
        if problems:
            raise WasmBpfError("the module's imports do not match this host: " + "; ".join(problems))

    def _call_start(self, linker: wasmtime.Linker, store: wasmtime.Store) -> int:
        self._check_initial_memory()
        instance = None
        try:
            instance = linker.instantiate(store, self._module)
            start = instance.exports(store).get("_start")
            if not isinstance(start, wasmtime.Func):
                raise WasmBpfError("the module has no _start export: build it as a WASI command")
            start(store)
            return 0
        except (GuestExit, wasmtime.Trap, wasmtime.WasmtimeError) as exc:
            # wasmtime-py hands a host function's exception to the next trap in the
            # process (one global): with guests in other threads, that can be another
            # guest's. So the status is what this guest's proc_exit kept, if it called it.
            if self._exit_status is not None:
                return self._exit_status
            if self._limit_hit is not None:
                self._report(self._limit_hit)
                return EXIT_LIMIT
            if self._interrupted:
                reason = self._stop_reason
                status = EXIT_TIMEOUT if reason == TIMEOUT else 128 + int(reason or signal.SIGINT)
                self._report(self._forced_stop_message(status))
                return status
            self._report("the guest trapped" + ("" if isinstance(exc, GuestExit) else f": {_describe_trap(exc)}"))
            if self.config.verbose:
                self._report(str(exc))
            return EXIT_TRAP
        finally:
            if instance is not None:
                self._check_final_memory(instance, store)

    def _check_initial_memory(self) -> None:
        self.config.limits.check_module(self._declared)

    def _check_final_memory(self, instance: wasmtime.Instance, store: wasmtime.Store) -> None:
        """wasmtime refuses a memory.grow past the limit without telling the host (the
        guest's malloc returns NULL): say so when the guest ended up against it."""
        memory = instance.exports(store).get("memory")
        size = memory.data_len(store) if isinstance(memory, wasmtime.Memory) else 0
        if self.config.limits.near_max_memory(size):
            self._report(f"resource limit: the guest's memory reached {human_size(size)} of its "
                         f"{human_size(self.config.limits.max_memory or 0)} limit; growing it further failed "
                         "(raise it with --max-memory)")

    def _proc_exit(self, code: int) -> None:
        self._exit_status = code & 0xFF
        raise GuestExit(code & 0xFFFFFFFF)

    def stop(self, reason: Union[int, str] = signal.SIGINT) -> None:
        """Asks the guest to stop (its polls return -EINTR, its sleep or poll EINTR,
        stdin ends); interrupts it after the grace period. Safe to call from any thread,
        before run() too; a second call interrupts at once."""
        with self._lock:
            first = self._stop_reason is None
            if first:
                self._stop_reason = reason
            elif not self._interrupted:
                self._repeated = reason
            self._stop_flag[0] = 1
        self._blocking.request_stop()
        if first:
            self._start_timer(self.config.grace_period, self._interrupt)
        else:
            self._interrupt()

    def _interrupt(self) -> None:
        self._interrupted = True
        self._host_calls.interrupt()  # a Python host function that does not return
        self._blocking.interrupt()
        self._engine.increment_epoch()

    def _forced_stop_message(self, status: int) -> str:
        """One line: why the guest was interrupted, and the flag that changes it."""
        def what(reason: Union[int, str, None]) -> str:
            if reason == TIMEOUT:
                return f"--timeout {self.config.timeout:g}s"
            number = int(reason or signal.SIGINT)
            try:
                return signal.Signals(number).name
            except ValueError:  # stop(reason) takes any number
                return f"signal {number}"

        if self._repeated is not None:
            return (f"a second stop request ({what(self._repeated)}) interrupted the guest at once "
                    f"(exit {status}); one request gives it --grace-period {self.config.grace_period:g}s to return")
        return (f"the guest did not return within --grace-period {self.config.grace_period:g}s after "
                f"{what(self._stop_reason)}; interrupted (exit {status})")

    def _report_dropped_output(self) -> None:
        for name, buf in self._captured.items():
            if buf.dropped:
                self._report(f"the guest wrote {buf.dropped} bytes more to {name} than the capture keeps "
                             f"({human_size(self.config.capture_limit or 0)}); they were dropped "
                             "(raise RunConfig.capture_limit)")

    def _exceeded(self, message: str) -> None:
        """A CPU limit (CpuWatchdog): stopped at once, no grace period."""
        self._limit_hit = message
        self._stop_flag[0] = 1
        self._interrupt()

    def _start_timer(self, seconds: float, action: Callable[[], None]) -> None:
        timer = threading.Timer(seconds, action)
        timer.daemon = True
        self._timers.append(timer)
        timer.start()

    def _install_signal_handlers(self) -> Optional[Callable[[], None]]:
        """SIGINT/SIGTERM request a stop. The wakeup fd lets a watcher thread see the
        signal at once even while the main thread is inside Wasm or a libbpf poll."""
        if threading.current_thread() is not threading.main_thread():
            return None
        read_fd, write_fd = os.pipe()
        os.set_blocking(write_fd, False)
        old_wakeup = signal.set_wakeup_fd(write_fd, warn_on_full_buffer=False)
        old_handlers = {s: signal.signal(s, lambda *_: None) for s in (signal.SIGINT, signal.SIGTERM)}

        def watch() -> None:
            last: Tuple[int, float] = (0, 0.0)  # the last signal counted, and when
            while True:
                data = os.read(read_fd, 64)
                if not data:
                    return
                for signum in data:
                    now = time.monotonic()
                    if signum not in (signal.SIGINT, signal.SIGTERM) or \
                            (signum == last[0] and now - last[1] < SIGNAL_REPEAT):
                        continue  # `timeout` signals the process and its group: one request
                    last = (signum, now)
                    self.stop(signum)

        watcher = threading.Thread(target=watch, name="wasm-bpf-signals", daemon=True)
        watcher.start()

        def restore() -> None:
            signal.set_wakeup_fd(old_wakeup)
            for signum, handler in old_handlers.items():
                signal.signal(signum, handler)
            os.close(write_fd)
            watcher.join(timeout=1)
            os.close(read_fd)

        return restore

    # ---- resources ------------------------------------------------------------------
    def maps(self) -> Dict[str, "Map"]:
        """The maps of the BPF objects the guest has open now, by name, with the map API
        of wasm_bpf.load() (docs/python-api.md); writes are checked against the policy
        as the guest's are. A map whose object the guest closes stops working (EBADF)."""
        from .mapview import guest_maps

        out: Dict[str, Map] = {}
        for obj in list(self._host.objects.values()):
            out.update(guest_maps(obj, self._host.sandbox))
        return out

    def close(self) -> None:
        """Releases every BPF object of the guest. Idempotent. While the guest runs in
        another thread (an exception left the application's ``with`` block), the guest
        is stopped first and close() returns once that run has ended and released them:
        the thread uses the objects (a ring buffer freed under its poll crashes the
        process). Every wait the host serves ends at the forced interrupt, so this
        takes at most the grace period and the cleanup; a run still going
        CLOSE_MARGIN s later (a write to a stdout pipe nobody reads) raises."""
        runner = self._runner
        if runner is not None and runner is not threading.current_thread() and not self._finished.is_set():
            self.stop()
            if not self._finished.wait(self.config.grace_period + CLOSE_MARGIN):
                raise WasmBpfError(f"the guest's thread did not end {CLOSE_MARGIN:g}s after its grace period; "
                                   "it releases its BPF objects when it does (is it writing to a stdout or "
                                   "stderr pipe that nobody reads?)")
        self._host.close()

    def __enter__(self) -> "Instance":
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


def run(module: ModuleSource, args: Sequence[str] = (), *, config: Optional[RunConfig] = None,
        capture_output: bool = False) -> RunResult:
    """Runs a module to the end: ``run("x.wasm", ["-h"], capture_output=True).stdout``."""
    with Instance(module, args, config=config, capture_output=capture_output) as inst:
        code = inst.run()
        return RunResult(code, inst.stdout, inst.stderr)


def _describe_trap(exc: BaseException) -> str:
    """One line from wasmtime's multi-line trap text: the cause and the innermost
    function, e.g. "wasm `unreachable` instruction executed (in handle_event)"."""
    lines = [line.strip() for line in str(exc).strip().splitlines() if line.strip()]
    if not lines:
        return type(exc).__name__
    cause = lines[-1].removeprefix("wasm trap: ")
    frame = next((line for line in lines if line.startswith("0:")), "")
    where = frame.rpartition("!")[2] if "!" in frame else ""
    return f"{cause} (in {where})" if where else cause
