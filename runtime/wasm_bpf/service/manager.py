"""The instances of a `wasm-bpf serve` daemon. Each runs in its own thread with its
own policy and limits; an instance keeps its id and log across restarts and updates
(a new generation, started and attached before the old one stops: no gap in events).

Everything a client sends is checked here, before anything is loaded: sources come
from an upload or from a path inside the configured directories, read once through
one opened fd; limits may only lower the daemon's defaults.

With a state directory (state.py) the instances clients want running are saved on
each change and started again by the next daemon; a stopped or deleted one is not."""
import ctypes
import gc
import hashlib
import os
import signal
import stat
import tempfile
import threading
import time
import uuid
from collections import OrderedDict
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple

from ..errors import WasmBpfError
from ..distribution.layout import digest_of
from ..limits import MiB, Limits
from .logs import LogBuffer
from .state import StateDir

if TYPE_CHECKING:
    from ..module import Module

WASM, KERNEL_ONLY = "wasm", "kernel-only"
STARTING, RUNNING, EXITED, FAILED = "starting", "running", "exited", "failed"
ATTACH_POLL = 0.0005  # s between looks at a starting Wasm guest
SETTLE = 0.05  # s without a new link after which a guest that cannot poll is taken as attached
COMPILED_KEPT = 8  # compiled modules kept for the next start of the same bytes
POLL_IMPORTS = ("wasm_bpf_buffer_poll", "wasm_bpf_buffer_poll_batch")


class ServiceError(WasmBpfError):
    """A request the daemon refuses; `status` is its HTTP status."""

    def __init__(self, status: int, message: str) -> None:
        super().__init__(message)
        self.status = status


@dataclass
class ServiceConfig:
    allowed_dirs: Sequence[str] = ()  # where `path` sources may be; none: uploads only
    grant_dirs: Sequence[str] = ()  # what a request's dirs (WASI preopens, read-write) may be in; none by default
    max_instances: int = 32  # instances kept (running or not): delete stopped ones to make room
    max_upload: int = 16 * MiB  # bytes of one module, uploaded or read from a path
    log_lines: int = 10000  # lines kept per instance
    allow_kernel_only: bool = False  # kernel-only programs run with no policy: off unless the operator allows it
    policy: Any = None  # the daemon's --policy (a Policy): every Wasm instance's; a request may then give none
    grace_period: float = 2.0
    state_dir: str = ""  # instances persisted there (state.py); none when empty
    plain_http: bool = False  # `ref` sources: registries without TLS (--plain-http)


@dataclass
class Source:
    """A module as read once at request time: what runs is what was checked."""

    name: str
    data: bytes
    kind: str
    origin: str  # where it came from: "upload", the path, the OCI reference or the URL
    digest: str = ""

    def __post_init__(self) -> None:
        self.digest = self.digest or digest_of(self.data)


@dataclass
class Spec:
    source: Source
    args: List[str] = field(default_factory=list)
    env: Dict[str, str] = field(default_factory=dict)
    dirs: List[Tuple[str, str]] = field(default_factory=list)
    policy: Optional[str] = None  # TOML text (docs/policy.md); None: the built-in default
    limits: Dict[str, Any] = field(default_factory=dict)


def kind_of(name: str, data: bytes) -> str:
    if data.startswith(b"\0asm") or data.lstrip().startswith(b"(module"):
        return WASM
    if data.startswith(b"\x7fELF") or data.lstrip().startswith(b"{"):
        return KERNEL_ONLY
    raise ServiceError(400, f"{name} is neither a WebAssembly module (\\0asm or WAT) nor a kernel-only program "
                            "(a BPF ELF object or a JSON package from `wasm-bpf package`)")


def warm_up() -> None:
    """Imports the runtime (wasmtime, the libbpf shim, the kernel-only runner) at
    daemon start: the first start request would pay ~0.25 s for it otherwise."""
    from .. import instance, policy  # noqa: F401
    from ..kernel_only import runner  # noqa: F401

    # What is loaded now (modules, classes, the app) lives as long as the daemon: out of
    # the collector's sight, a full collection scans only what instances made since,
    # instead of pausing every thread for 20-60 ms in the middle of a start.
    gc.collect()
    gc.freeze()


@dataclass(frozen=True)
class Compiled:
    module: "Module"
    polls: bool  # it imports a buffer poll: it counts as attached at its first poll, not before


_compiled: "OrderedDict[bytes, Compiled]" = OrderedDict()  # SHA-256 of a module's bytes -> it compiled
_compiled_lock = threading.Lock()


def compiled(data: bytes) -> Compiled:
    """The module compiled once per content (a restart, an update to the same bytes,
    many instances of one tool): a start then only copies its code into the instance's
    engine, instead of looking it up in wasmtime's disk cache and serializing it again."""
    from ..module import Module

    digest = hashlib.sha256(data).digest()
    with _compiled_lock:
        found = _compiled.get(digest)
        if found is not None:
            _compiled.move_to_end(digest)
            return found
    module = Module(data)  # outside the lock: other starts go on meanwhile
    found = Compiled(module, any(name in POLL_IMPORTS for _module, name in module.imports))
    with _compiled_lock:
        _compiled[digest] = found
        while len(_compiled) > COMPILED_KEPT:
            _compiled.popitem(last=False)
    return found


_malloc_trim = getattr(ctypes.CDLL(None), "malloc_trim", lambda _pad: 0)  # glibc's; a no-op elsewhere


class Run:
    """One generation of an instance: one module running in one thread."""

    def __init__(self, spec: Spec, log: LogBuffer, config: ServiceConfig, workdir: str) -> None:
        self.spec, self.log, self._config, self._workdir = spec, log, config, workdir
        self.attached = threading.Event()  # its programs are attached (or it ended)
        self.done = threading.Event()
        self.exit_code: Optional[int] = None
        self.started = time.time()
        self.ended: Optional[float] = None
        self.attach_seconds: Optional[float] = None  # from start() to attached
        self._cpu_at_end: Optional[float] = None
        self._final_stats: Optional[List[Tuple[str, int, Optional[int]]]] = None  # once ended
        self._stop = threading.Event()  # kernel-only runs
        self._kernel_object: Any = None  # their BpfObject, once attached (metrics exporter)
        self.kernel_spec: Any = None  # and its kernel_only.spec.ObjectSpec
        self._instance: Any = None  # a Wasm run's wasm_bpf.Instance
        self._polls = False  # and whether its module can poll a buffer
        self._thread: Optional[threading.Thread] = None
        self._t0 = 0.0  # time.monotonic() of start()
        self._output_ends: List[int] = []  # a Wasm guest's stdout and stderr pipes (write ends)
        self._readers: List[threading.Thread] = []

    # ---- starting -------------------------------------------------------------------
    def start(self) -> None:
        """Prepares the run in the caller's thread (errors are the request's), then runs it."""
        self._t0 = time.monotonic()
        target = self._prepare_wasm() if self.spec.source.kind == WASM else self._prepare_kernel_only()
        self._thread = threading.Thread(target=self._main, args=(target,), daemon=True,
                                        name=f"wasm-bpf-{self.spec.source.name}")
        self._thread.start()
        if self.spec.source.kind == WASM:
            self._watch_attach()

    def _mark_attached(self) -> None:
        self.attach_seconds = time.monotonic() - self._t0
        self.attached.set()

    def _prepare_wasm(self) -> Callable[[], int]:
        from ..instance import Instance, RunConfig
        from ..policy import Policy, PolicyError

        # The guest's stdout and stderr are pipes whose lines go to the instance log as
        # they are written (a reader thread each; a full log drops its oldest lines).
        pipes = {name: os.pipe() for name in ("stdout", "stderr")}
        try:
            policy = self._config.policy if self.spec.policy is None else Policy.parse(self.spec.policy, "(request)")
            config = RunConfig(env=dict(self.spec.env), dirs=list(self.spec.dirs), policy=policy,
                               limits=Limits(**self.spec.limits), grace_period=self._config.grace_period,
                               stdout=pipes["stdout"][1], stderr=pipes["stderr"][1])
            code = compiled(self.spec.source.data)
            inst = Instance(code.module, self.spec.args, config=config,
                            report=lambda message: self.log.add("host", message))
        except (PolicyError, WasmBpfError) as exc:
            for read_end, write_end in pipes.values():
                os.close(read_end)
                os.close(write_end)
            raise ServiceError(400, str(exc)) from None
        self._output_ends = [write_end for _read_end, write_end in pipes.values()]
        self._readers = [threading.Thread(target=self._pump, args=(read_end, name), daemon=True,
                                          name=f"wasm-bpf-{name}") for name, (read_end, _w) in pipes.items()]
        for reader in self._readers:
            reader.start()
        self._instance, self._polls = inst, code.polls
        return inst.run

    def _pump(self, fd: int, stream: str) -> None:
        writer = self.log.writer(stream)
        with os.fdopen(fd, "rb", buffering=0) as pipe:
            while chunk := pipe.read(65536):
                writer.extend(chunk)

    def _prepare_kernel_only(self) -> Callable[[], int]:
        from ..kernel_only.runner import run

        if not self._config.allow_kernel_only:
            raise ServiceError(403, "kernel-only programs run with no policy or limits, so this daemon refuses "
                                    "them; start it with --allow-kernel-only to allow them")
        suffix = ".json" if self.spec.source.data.lstrip().startswith(b"{") else ".bpf.o"
        fd, path = tempfile.mkstemp(suffix=suffix, dir=self._workdir)
        with os.fdopen(fd, "wb") as f:
            f.write(self.spec.source.data)

        def on_attached(obj: Any, spec: Any) -> None:
            self._kernel_object, self.kernel_spec = obj, spec
            self._mark_attached()

        def main() -> int:
            try:
                return run(path, ["--json", *self.spec.args], out=self.log.writer("stdout"),  # type: ignore[arg-type]
                           err=self.log.writer("stderr"), stop=self._stop, attached=on_attached)  # type: ignore[arg-type]
            finally:
                self._kernel_object = None
                os.unlink(path)
        return main

    def _main(self, target: Callable[[], int]) -> None:
        code = 1
        try:
            code = target()
        except WasmBpfError as exc:
            self.log.add("host", str(exc))
        except Exception as exc:  # a crashing instance never takes the daemon down
            self.log.add("host", f"internal error: {type(exc).__name__}: {exc}")
        finally:
            if self._instance is not None:
                self._instance.close()
            for write_end in self._output_ends:  # the readers see the end of the output
                os.close(write_end)
            for reader in self._readers:
                reader.join()
            # What a stopped run is still asked for; the Instance (engine, module, guest
            # memory) is dropped: a stopped instance may be kept a long time.
            self._final_stats = self.buffer_stats()
            self._instance = None
            self._cpu_at_end = time.thread_time()
            self.log.flush()
            self.exit_code, self.ended = code, time.time()
            self.attached.set()
            self.done.set()

    def _watch_attach(self) -> None:
        """A Wasm guest attaches when it chooses. One that imports a buffer poll is taken
        as attached at its first poll (guests poll once set up: a pause between two
        attaches on a busy machine must not count as done); one that cannot poll once it
        has links and adds none for SETTLE seconds."""
        inst = self._instance

        def watch() -> None:
            links, since = 0, time.monotonic()
            while not self.done.is_set():
                status = inst.status()
                if status.links != links:
                    links, since = status.links, time.monotonic()
                if status.polled or (not self._polls and links and time.monotonic() - since >= SETTLE):
                    self._mark_attached()
                    return
                time.sleep(ATTACH_POLL)
        threading.Thread(target=watch, daemon=True, name="wasm-bpf-attach-watch").start()

    # ---- state ----------------------------------------------------------------------
    def objects(self) -> List[Any]:
        """The BpfObjects the run has open now: a Wasm guest's, or the kernel-only program's."""
        inst, obj = self._instance, self._kernel_object
        if inst is not None:
            return list(inst.status().objects)
        return [obj] if obj is not None else []

    def links(self) -> int:
        inst = self._instance
        return inst.status().links if inst is not None else sum(len(obj.links) for obj in self.objects())

    def buffer_stats(self) -> List[Tuple[str, int, Optional[int]]]:
        """(map name, records delivered, lost) of each event buffer, open or closed."""
        if self._final_stats is not None:
            return self._final_stats
        inst = self._instance
        stats = inst.status().buffers if inst is not None else \
            [buf.stats(0) for obj in self.objects() for buf in list(obj.buffers.values())]
        return [(s.map_name, s.delivered, s.lost) for s in stats]

    def memory_bytes(self) -> Optional[int]:
        """A Wasm guest's linear memory (at its last host call); None for kernel-only runs."""
        inst = self._instance
        return inst.status().memory_bytes if inst is not None else None

    @property
    def kernel_object(self) -> Any:
        return self._kernel_object

    def cpu_seconds(self) -> float:
        if self._cpu_at_end is not None:
            return self._cpu_at_end
        thread = self._thread
        try:
            assert thread is not None and thread.ident is not None
            return time.clock_gettime(time.pthread_getcpuclockid(thread.ident))
        except (AssertionError, OSError):
            return self._cpu_at_end or 0.0

    @property
    def state(self) -> str:
        if self.done.is_set():
            return EXITED if self.exit_code in (0, 128 + signal.SIGTERM) else FAILED
        return RUNNING if self.attached.is_set() else STARTING

    # ---- stopping -------------------------------------------------------------------
    def stop(self) -> None:
        """Asks the run to end (a Wasm guest's polls return -EINTR first)."""
        inst = self._instance
        if inst is not None:
            inst.stop(signal.SIGTERM)
        self._stop.set()

    def join(self) -> bool:
        """Waits for the run to end, then frees what it leaves: an Instance refers to
        itself (its host and watchdog call back into it), so its engine and code would
        wait for the collector's next full pass; with the daemon's start-up objects
        frozen (warm_up) a full collection takes ~1 ms. Then the C heap gives back what
        the run's loads took (libbpf reads the kernel's BTF, megabytes, in each guest
        thread's malloc arena): a daemon's RSS follows its instances, down too."""
        ended = self.done.wait(self._config.grace_period + 5)
        if ended and self._thread is not None:
            self._thread.join(1)  # the thread's own references to the instance go with it
        gc.collect()
        _malloc_trim(0)
        return ended


def _failure(log: LogBuffer) -> Optional[str]:
    return log.last(("host",)) or log.last(("stderr",))


class ManagedInstance:
    def __init__(self, name: str, spec: Spec, config: ServiceConfig, instance_id: str = "") -> None:
        self.id = instance_id or uuid.uuid4().hex[:12]
        self.name = name
        self.spec = spec
        self.log = LogBuffer(config.log_lines)
        self.generation = 0
        self.restarts = 0
        self.run: Optional[Run] = None
        self.wanted = True  # a client wants it running: persisted, started again by the next daemon
        self.changing = threading.Lock()  # one stop, restart, update or delete at a time

    def describe(self) -> Dict[str, Any]:
        run = self.run
        assert run is not None
        return {
            "id": self.id, "name": self.name, "kind": self.spec.source.kind, "source": self.spec.source.name,
            "origin": self.spec.source.origin,
            "args": self.spec.args, "state": run.state, "exit_code": run.exit_code,
            "generation": self.generation, "restarts": self.restarts, "started": run.started, "ended": run.ended,
            "attach_ms": None if run.attach_seconds is None else round(run.attach_seconds * 1000, 2),
            "links": run.links(),
            # why a failed run ended: the host's message (a refusal, a trap) or the guest's last error line
            "error": _failure(self.log) if run.state == FAILED else None,
        }

    def stats(self) -> Dict[str, Any]:
        run = self.run
        assert run is not None
        return {
            "id": self.id, "state": run.state, "links": run.links(), "cpu_seconds": run.cpu_seconds(),
            "uptime_seconds": (run.ended or time.time()) - run.started,
            "buffers": [{"map": m, "delivered": d, "lost": lost} for m, d, lost in run.buffer_stats()],
            "log_lines_dropped": self.log.dropped,
        }

    def record(self) -> Dict[str, Any]:
        """What the state directory keeps of it (state.py); the module by digest."""
        spec = self.spec
        return {"id": self.id, "name": self.name,
                "source": {"name": spec.source.name, "kind": spec.source.kind, "origin": spec.source.origin,
                           "digest": spec.source.digest},
                "args": spec.args, "env": spec.env, "dirs": [list(d) for d in spec.dirs], "policy": spec.policy,
                "limits": spec.limits}


class InstanceManager:
    """The daemon's instances, safe to use from the HTTP server's threads."""

    def __init__(self, config: ServiceConfig) -> None:
        self.config = config
        self._instances: Dict[str, ManagedInstance] = {}
        self._lock = threading.Lock()
        self._tmp = tempfile.TemporaryDirectory(prefix="wasm-bpf-serve-")  # kernel-only programs' files
        self._workdir = self._tmp.name
        self._state = StateDir(Path(config.state_dir)) if config.state_dir else None
        self._unrestored: List[Dict[str, Any]] = []  # records the last restore could not start: kept
        self._saving = threading.Lock()
        self._pinned: List[str] = []  # digests of modules being started (_storing)
        self._allowed = [os.path.realpath(d) for d in config.allowed_dirs]
        self._grantable = [os.path.realpath(d) for d in config.grant_dirs]

    # ---- checking a request ------------------------------------------------------------
    def _inside_allowed(self, real: str, dirs: Optional[List[str]] = None) -> bool:
        return any(real == d or real.startswith(d.rstrip("/") + "/") for d in (self._allowed if dirs is None else dirs))

    def _outside(self, path: str) -> ServiceError:
        return ServiceError(403, f"{path} is outside the directories this daemon loads from "
                                 f"({', '.join(self._allowed)}); upload it or start the daemon with "
                                 "--allow-dir for its directory")

    def read_path(self, path: str) -> Source:
        """A module named by a host path: opened once, then checked by what the fd is
        (a symlink or a renamed directory cannot lead outside the allowed ones)."""
        if not self._allowed:
            raise ServiceError(403, "this daemon loads no host paths (start it with --allow-dir DIR); upload "
                                    "the module instead")
        if not self._inside_allowed(os.path.realpath(path)):  # before opening: opening a device can act
            raise self._outside(path)
        try:
            fd = os.open(path, os.O_RDONLY | os.O_CLOEXEC | os.O_NONBLOCK | os.O_NOCTTY)
        except OSError as exc:
            raise ServiceError(400, f"cannot open {path}: {exc.strerror}") from None
        with os.fdopen(fd, "rb") as f:
            real = os.readlink(f"/proc/self/fd/{fd}")
            if not self._inside_allowed(real):  # a link swapped in since the check above
                raise self._outside(path)
            st = os.fstat(fd)
            if not stat.S_ISREG(st.st_mode):
                raise ServiceError(400, f"{path} is not a regular file")
            if st.st_size > self.config.max_upload:
                raise ServiceError(413, f"{path} is {st.st_size} bytes, over this daemon's "
                                        f"{self.config.max_upload} (--max-upload)")
            data = f.read(self.config.max_upload + 1)
        return self.check_source(os.path.basename(real), data, path)

    def read_remote(self, ref: Optional[str], url: Optional[str], policy_text: Optional[str]) -> Source:
        """A module by OCI reference or URL, resolved as `wasm-bpf run REF` does (the
        policy's [registries] and signatures) into the daemon's cache. Nobody is asked:
        the client chose it, as with an upload, and the instance's policy rules it."""
        from ..distribution import DistributionError
        from ..distribution.cache import Cache
        from ..distribution.fetch import fetch_reference, fetch_url
        from ..distribution.reference import is_url, parse
        from ..policy import Policy, PolicyError

        cache = self._state.cache if self._state is not None else Cache()
        try:
            if url is not None:
                if not is_url(url):
                    raise ServiceError(400, f"url {url!r} is not an http:// or https:// URL (a file goes in path)")
                path = fetch_url(url, cache)
            else:
                assert ref is not None
                policy = self.config.policy if policy_text is None else Policy.parse(policy_text, "(request)")
                path = fetch_reference(parse(ref), cache, plain_http=self.config.plain_http, policy=policy)
        except (DistributionError, PolicyError) as exc:
            raise ServiceError(400, str(exc)) from None
        with open(path, "rb") as f:  # the cache's own file, checked against its digest when it was stored
            data = f.read(self.config.max_upload + 1)
        return self.check_source(os.path.basename(path), data, str(url or ref))

    def check_source(self, name: str, data: bytes, origin: str = "upload") -> Source:
        if len(data) > self.config.max_upload:
            raise ServiceError(413, f"{name} is over this daemon's {self.config.max_upload} bytes (--max-upload)")
        return Source(name, data, kind_of(name, data), origin)

    def check_spec(self, spec: Spec) -> Spec:
        for host, _guest in spec.dirs:
            if not self._inside_allowed(os.path.realpath(host), self._grantable):
                raise ServiceError(403, f"dir {host} is outside the directories this daemon may grant to a guest "
                                        f"({', '.join(self._grantable) or 'none'}; --grant-dir)")
        defaults = {f.name: getattr(Limits(), f.name) for f in fields(Limits)}
        for key, value in spec.limits.items():
            if key not in defaults:
                raise ServiceError(400, f"unknown limit {key!r}; limits: {', '.join(defaults)}")
            ceiling = defaults[key]
            if not isinstance(value, (int, float)) or isinstance(value, bool) or value <= 0:
                raise ServiceError(400, f"limit {key} must be a number above 0")
            if ceiling is not None and value > ceiling:
                raise ServiceError(400, f"limit {key} = {value} is over this daemon's {ceiling}: "
                                        "a request may only lower a limit")
        if spec.policy is not None and self.config.policy is not None:
            raise ServiceError(403, f"this daemon runs every module under its own policy ({self.config.policy.source}, "
                                    "--policy); send no policy")
        if spec.source.kind == KERNEL_ONLY and (spec.policy is not None or spec.dirs or spec.env):
            raise ServiceError(400, "policy, dirs and env apply to Wasm modules; a kernel-only program takes "
                                    "args only (its flags, --map NAME, --attach PROG=TARGET)")
        return spec

    # ---- lifecycle ----------------------------------------------------------------------
    def get(self, instance_id: str) -> ManagedInstance:
        with self._lock:
            found = self._instances.get(instance_id)
        if found is None:
            raise ServiceError(404, f"no instance {instance_id!r} (GET /instances lists them)")
        return found

    def list(self) -> List[ManagedInstance]:
        with self._lock:
            return list(self._instances.values())

    def start(self, name: str, spec: Spec, wait: float, instance_id: str = "", persist: bool = True
              ) -> ManagedInstance:
        self.check_spec(spec)
        managed = ManagedInstance(name or spec.source.name, spec, self.config, instance_id)
        with self._storing(spec.source):
            with self._lock:
                if len(self._instances) >= self.config.max_instances:
                    raise ServiceError(429, f"this daemon keeps at most {self.config.max_instances} instances "
                                            "(--max-instances); DELETE stopped ones first")
                self._instances[managed.id] = managed
            try:
                managed.run = self._launch(managed, spec, wait)
            except BaseException:
                with self._lock:
                    del self._instances[managed.id]
                raise
            if persist:
                self._persist()
        return managed

    def _launch(self, managed: ManagedInstance, spec: Spec, wait: float) -> Run:
        run = Run(spec, managed.log, self.config, self._workdir)
        run.start()
        run.attached.wait(wait)
        return run

    def stop(self, managed: ManagedInstance) -> None:
        with managed.changing:
            self._stop(managed)
            managed.wanted = False
        self._persist()

    def _stop(self, managed: ManagedInstance) -> None:
        run = managed.run
        if run is not None and not run.done.is_set():
            run.stop()
            if not run.join():
                managed.log.add("host", "the instance did not end within the grace period and 5 s more")

    def restart(self, managed: ManagedInstance, wait: float) -> None:
        with managed.changing:
            self._stop(managed)
            managed.run = self._launch(managed, managed.spec, wait)
            managed.restarts += 1
            managed.wanted = True
        self._persist()

    def update(self, managed: ManagedInstance, spec: Spec, wait: float) -> None:
        """The new generation is started and attached before the old one is stopped; one
        that does not attach is stopped and the old one kept."""
        self.check_spec(spec)
        with self._storing(spec.source):
            with managed.changing:
                self._update(managed, spec, wait)
            self._persist()

    def _update(self, managed: ManagedInstance, spec: Spec, wait: float) -> None:
        new = self._launch(managed, spec, wait)
        if new.done.is_set() or not new.attached.is_set():
            new.stop()
            new.join()
            why = f"it exited with status {new.exit_code}: {_failure(managed.log)}" if new.done.is_set() \
                else f"still starting after {wait} s"
            raise ServiceError(422, f"the new version did not attach ({why}); the running version is kept")
        old = managed.run
        managed.run, managed.spec = new, spec
        managed.generation += 1
        managed.log.add("host", f"updated to generation {managed.generation} ({spec.source.name})")
        if old is not None:
            old.stop()
            old.join()

    def delete(self, managed: ManagedInstance) -> None:
        with managed.changing:
            self._stop(managed)
            with self._lock:
                self._instances.pop(managed.id, None)
        self._persist()

    # ---- persistence --------------------------------------------------------------------
    @contextmanager
    def _storing(self, source: Source) -> Iterator[None]:
        """SOURCE's module in the state directory, kept there by every save meanwhile,
        before anything that names it is saved."""
        if self._state is None:
            yield
            return
        with self._saving:
            self._state.modules.put(source.data, source.digest)
            self._pinned.append(source.digest)
        try:
            yield
        finally:
            with self._saving:
                self._pinned.remove(source.digest)

    def _persist(self) -> None:
        """Saves the instances clients want running in the state directory."""
        if self._state is None:
            return
        with self._saving:
            instances = self.list()
            self._state.save([m.record() for m in instances if m.wanted] + self._unrestored,
                             keep={*self._pinned, *(m.spec.source.digest for m in instances)})

    def restore(self, wait: float = 5.0) -> Tuple[int, List[str]]:
        """Starts the instances the state directory holds (ids kept), checked as a request
        is against this daemon's configuration; returns how many started and, one line
        each, why the others did not (their records are kept for a later daemon)."""
        if self._state is None:
            return 0, []
        started, problems = 0, []
        for record in self._state.load():
            try:
                source = record["source"]
                data = self._state.modules.read(source["digest"])
                spec = Spec(Source(source["name"], data, kind_of(source["name"], data), source["origin"],
                                   source["digest"]),
                            list(record["args"]), dict(record["env"]), [(h, g) for h, g in record["dirs"]],
                            record["policy"], dict(record["limits"]))
                self.start(record["name"], spec, wait, record["id"], persist=False)
                started += 1
            except WasmBpfError as exc:  # e.g. a flag this daemon was started without: kept for the next
                self._unrestored.append(record)
                problems.append(f"instance {record.get('id')} ({record.get('name')}) not restored: {exc}")
            except (KeyError, TypeError, ValueError, AttributeError) as exc:
                problems.append(f"a bad record in the state directory dropped ({type(exc).__name__}: {exc})")
        self._persist()
        return started, problems

    def shutdown(self) -> int:
        """Stops every instance (all asked first, then waited for) and releases them;
        returns how many were running."""
        runs = [m.run for m in self.list() if m.run is not None and not m.run.done.is_set()]
        for run in runs:
            run.stop()
        for run in runs:
            run.join()
        if self._tmp is not None:
            self._tmp.cleanup()
        return len(runs)
