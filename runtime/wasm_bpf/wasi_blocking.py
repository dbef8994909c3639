"""The guest's stdio and the WASI calls that can block, served so that a stop ends them.

wasmtime's own WASI (Rust) blocks the guest's thread where neither a stop request nor
the epoch interrupt reaches it: a guest in sleep(3600), in poll() with timeout -1 or
in read(0, ...) could only be killed. So the host serves them:

- ``poll_oneoff`` (what sleep, nanosleep, usleep, poll and select become) is the
  host's: it waits with poll() on the guest's stdin and on a wake-up pipe that a
  stop request and the forced interrupt poke.
- stdin is a pipe the host feeds from the chosen source (the host's stdin, a file, an
  fd, bytes) and closes on a stop request, so a read(0) in progress returns end of
  input at once. wasmtime keeps serving fd 0 (fd_read, fdstat, close, renumber), so the
  guest sees one consistent stdin; shadowing fd_read for fd 0 instead would have to
  follow fd_close/fd_renumber to know which guest fd is still the stdin.

A stop request is delivered once, like a signal: the blocking poll_oneoff in progress,
or the next one, fails with EINTR (sleep() returns early, poll() returns -1/EINTR);
later ones wait as usual. Once the grace period has ended (the forced interrupt),
every poll_oneoff traps at once, so a guest that goes back to sleep or ignores EINTR
ends. Calls that never block are left to wasmtime: sched_yield, random_get, clocks,
files. Writes to stdout/stderr are wasmtime's too: one to an inherited stream or a
given fd, a pipe nobody reads, waits for the reader, as in a native process
(docs/cleanup.md)."""
from __future__ import annotations

import errno
import fcntl
import os
import select
import struct
import termios
import threading
import time
from typing import Any, Callable, Dict, List, Optional, Tuple, Union

import wasmtime

from .errors import WasmBpfError

WASI_MODULE = "wasi_snapshot_preview1"
INHERIT, NONE, CAPTURE = "inherit", "none", "capture"
# What RunConfig.stdin/stdout/stderr take: INHERIT, NONE, CAPTURE (outputs), a path
# (str or os.PathLike), an open fd (int), for stdin bytes, for the outputs a callable
# called with each line (LineCallback).
Stdio = Union[str, os.PathLike, int, bytes, Callable[[bytes], object]]

# WASI preview 1: errno values, event types, clocks, layouts (wasi/api.h).
_ERRNO_BADF, _ERRNO_FAULT, _ERRNO_INTR, _ERRNO_INVAL, _ERRNO_NOTSUP = 8, 21, 27, 28, 58
_CLOCK, _FD_READ, _FD_WRITE = 0, 1, 2
_REALTIME, _MONOTONIC = 0, 1
_ABSTIME = 1
_HANGUP = 1
_SUBSCRIPTION = struct.Struct("<QB7xi4xQQH6x")  # userdata, tag, clock id | fd, timeout, precision, flags
_EVENT = struct.Struct("<QHB5xQH6x")  # userdata, error, type, nbytes, flags
_CHUNK = 1 << 16
_LONGEST_WAIT = 3600.0  # s per poll() call: longer guest timeouts wait in several
# What only wasmtime's WASI knows (where the guest's monotonic clock starts, whether a
# guest fd is open) is asked through this module, instantiated in the guest's store:
# wasmtime's WASI functions need a calling instance with a memory, so a host function
# cannot call them directly.
_PROBE_WAT = """(module
  (import "wasi_snapshot_preview1" "clock_time_get" (func $clock (param i32 i64 i32) (result i32)))
  (import "wasi_snapshot_preview1" "fd_fdstat_get" (func $fdstat (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "now") (param $id i32) (result i64)
    (drop (call $clock (local.get $id) (i64.const 1) (i32.const 0)))
    (i64.load (i32.const 0)))
  (func (export "fd_error") (param $fd i32) (result i32)
    (call $fdstat (local.get $fd) (i32.const 8))))"""


class Wakeup:
    """A pipe whose read end turns readable when poked: a poll() that includes it
    ends early. Its owner pokes it only before close() (the fd numbers get reused)."""

    def __init__(self) -> None:
        self._read, self._write = os.pipe()
        os.set_blocking(self._read, False)
        os.set_blocking(self._write, False)

    def fileno(self) -> int:
        return self._read

    def poke(self) -> None:
        try:
            os.write(self._write, b"!")
        except BlockingIOError:  # full: it is readable anyway
            pass

    def drain(self) -> None:
        try:
            while os.read(self._read, 512):
                pass
        except BlockingIOError:
            pass

    def close(self) -> None:
        os.close(self._read)
        os.close(self._write)


class StdinFeed:
    """The guest's stdin: a pipe a thread fills from `source` (an fd to copy until its
    end, or bytes); its write end is closed at the end of the source or on stop().
    The thread reads ahead of the guest (up to a pipe's worth and a chunk), as a
    pipe between two processes would."""

    def __init__(self, source: Union[int, bytes], owns_source: bool) -> None:
        self.read_fd, self._write_fd = os.pipe()
        os.set_blocking(self._write_fd, False)
        self._source, self._owns_source = source, owns_source
        self._stop = Wakeup()
        self._thread = threading.Thread(target=self._pump, name="wasm-bpf-stdin", daemon=True)
        self._thread.start()

    @property
    def path(self) -> str:
        """What wasmtime opens as the guest's stdin: the same pipe, its own descriptor."""
        return f"/proc/self/fd/{self.read_fd}"

    def _pump(self) -> None:
        pending = self._source if isinstance(self._source, bytes) else b""
        source = self._source if isinstance(self._source, int) else None
        stop = self._stop.fileno()
        try:
            while True:
                if not pending:
                    if source is not None and _background_reader(source):
                        # A background job reading its terminal is stopped (SIGTTIN):
                        # wait for the foreground, as a native tool that reads nothing.
                        if stop in _wait({stop: select.POLLIN}, 0.2):
                            return
                        continue
                    if source is None or stop in _wait({source: select.POLLIN, stop: select.POLLIN}):
                        return
                    pending = os.read(source, _CHUNK)
                    if not pending:
                        return
                if stop in _wait({self._write_fd: select.POLLOUT, stop: select.POLLIN}):
                    return
                pending = pending[os.write(self._write_fd, pending[:_CHUNK]):]
        except OSError:  # the source failed, or the guest closed its stdin: end of input
            return
        finally:
            os.close(self._write_fd)
            if self._owns_source and source is not None:
                os.close(source)

    def stop(self) -> None:
        self._stop.poke()

    def close(self) -> None:
        self.stop()
        self._thread.join()
        os.close(self.read_fd)
        self._stop.close()


def open_stdin(choice: Stdio) -> Optional[StdinFeed]:
    """The feed for RunConfig.stdin, or None for NONE (wasmtime's empty stdin)."""
    if isinstance(choice, (bytes, bytearray)):
        return StdinFeed(bytes(choice), owns_source=False)
    if isinstance(choice, int) and not isinstance(choice, bool):
        return StdinFeed(os.dup(choice), owns_source=True)
    if choice == NONE:
        return None
    if choice == INHERIT:
        try:
            return StdinFeed(os.dup(0), owns_source=True)
        except OSError:  # this process has no stdin: neither has the guest
            return None
    if isinstance(choice, (str, os.PathLike)):
        try:  # O_NONBLOCK: opening a FIFO with no writer must not wait here
            fd = os.open(choice, os.O_RDONLY | os.O_NONBLOCK | os.O_CLOEXEC)
        except OSError as exc:
            raise WasmBpfError(f"stdin {os.fspath(choice)}: {exc.strerror}") from None
        os.set_blocking(fd, True)
        return StdinFeed(fd, owns_source=True)
    raise WasmBpfError(f"stdin {choice!r}: expected 'inherit', 'none', a path, an fd or bytes")


class CaptureBuffer:
    """A captured stdout or stderr: keeps the first `limit` bytes, counts the rest."""

    def __init__(self, limit: Optional[int]) -> None:
        self.data = bytearray()
        self.dropped = 0
        self._limit = limit

    def write(self, chunk: bytes) -> None:
        room = len(chunk) if self._limit is None else max(0, self._limit - len(self.data))
        self.data += chunk[:room]
        self.dropped += len(chunk) - min(room, len(chunk))


class LineCallback:
    """stdout or stderr as a Python callback per line: callback(line) with each complete
    line the guest writes (bytes, without its b"\\n"), and its last unfinished line
    when the run ends (flush). An exception in the callback fails the guest's write
    (EIO) and is reported once."""

    def __init__(self, callback: Callable[[bytes], object], name: str, report: Callable[[str], None]) -> None:
        self._callback = callback
        self._name = name
        self._report = report
        self._pending = b""
        self._failed = False

    def write(self, chunk: bytes) -> Optional[int]:
        *lines, self._pending = (self._pending + chunk).split(b"\n")
        return self._call(lines)

    def flush(self) -> None:
        pending, self._pending = self._pending, b""
        if pending:
            self._call([pending])

    def _call(self, lines: List[bytes]) -> Optional[int]:
        if self._failed:
            return -errno.EIO
        try:
            for line in lines:
                self._callback(line)
        except Exception as exc:
            self._failed = True
            self._report(f"the {self._name} callback raised {type(exc).__name__}: {exc}; "
                         f"the guest's writes to {self._name} fail from here on (EIO)")
            return -errno.EIO
        return None


def _writer(fd: int) -> Callable[[bytes], None]:
    def write(chunk: bytes) -> None:
        view = memoryview(chunk)
        while view:
            view = view[os.write(fd, view):]
    return write


def configure_output(wasi: wasmtime.WasiConfig, name: str, choice: Stdio,
                     custom: Callable[[bytes], Optional[int]]) -> None:
    """Sets stdout or stderr (name) of `wasi` for RunConfig.stdout/stderr; custom
    takes the output for CAPTURE and a callable (the instance's CaptureBuffer or
    LineCallback)."""
    if callable(choice) or choice == CAPTURE:
        setattr(wasi, f"{name}_custom", custom)
    elif choice == INHERIT:
        getattr(wasi, f"inherit_{name}")()
    elif isinstance(choice, int) and not isinstance(choice, bool):
        setattr(wasi, f"{name}_custom", _writer(choice))
    elif isinstance(choice, (str, os.PathLike)) and choice != NONE:
        try:
            setattr(wasi, f"{name}_file", os.fspath(choice))
        except wasmtime.WasmtimeError:
            raise WasmBpfError(f"{name} {os.fspath(choice)}: cannot open it for writing") from None
    elif choice != NONE:  # NONE: wasmtime's default, a sink
        raise WasmBpfError(f"{name} {choice!r}: expected 'inherit', 'none', 'capture', a path, an fd "
                           "or a callable (called with each line)")


class BlockingCalls:
    """poll_oneoff for one Instance, and the guest's stdin; stop state shared with it."""

    def __init__(self, stdin: Stdio) -> None:
        self._stdin_choice = stdin
        self._stdin: Optional[StdinFeed] = None
        self._wake: Optional[Wakeup] = None  # made by configure(): fds only while a run needs them
        self._lock = threading.Lock()
        self._stopping = False
        self._stop_delivered = False
        self._interrupted = False
        self._now: Any = None  # (clock id) -> the guest's time on it, ns (wasmtime's clocks)
        self._fd_error: Any = None  # (fd) -> 0 for an open guest fd, else a WASI errno

    def configure(self, wasi: wasmtime.WasiConfig) -> None:
        """Gives the guest its stdin (called once, before the run)."""
        feed = open_stdin(self._stdin_choice)
        with self._lock:
            self._stdin, self._wake = feed, Wakeup()
            if feed is not None and self._stopping:  # stopped before the run began
                feed.stop()
        if feed is not None:
            wasi.stdin_file = feed.path

    def define(self, linker: wasmtime.Linker, store: wasmtime.Store) -> None:
        """Shadows wasmtime's poll_oneoff (linker.define_wasi() done, shadowing allowed)."""
        probe = linker.instantiate(store, wasmtime.Module(store.engine, _PROBE_WAT)).exports(store)
        self._now, self._fd_error = probe["now"], probe["fd_error"]
        i32 = wasmtime.ValType.i32()  # a FuncType per engine: wasmtime ties one to the first it meets
        linker.define_func(WASI_MODULE, "poll_oneoff", wasmtime.FuncType([i32] * 4, [i32]), self._poll_oneoff,
                           access_caller=True)

    @property
    def wake_fd(self) -> int:
        """The wake-up pipe's read end (-1 before configure()): readable once a stop
        is requested, so other waits of the guest (its buffer polls) can include it.
        Only poll_oneoff drains it."""
        return self._wake.fileno() if self._wake is not None else -1

    def request_stop(self) -> None:
        """The guest's blocking call (or its next one) fails with EINTR; stdin ends."""
        with self._lock:
            self._stopping = True
            # The wake-up first: a poll that the stdin's end wakes then sees the stop too.
            if self._wake is not None:
                self._wake.poke()
            if self._stdin is not None:
                self._stdin.stop()

    def interrupt(self) -> None:
        """Every blocking call, the one in progress too, now traps."""
        with self._lock:
            self._interrupted = True
            if self._wake is not None:
                self._wake.poke()

    def close(self) -> None:
        """At the end of the run. Idempotent."""
        with self._lock:
            feed, wake, self._stdin, self._wake = self._stdin, self._wake, None, None
        if feed is not None:
            feed.close()
        if wake is not None:
            wake.close()

    # ---- poll_oneoff -------------------------------------------------------------------
    def _poll_oneoff(self, caller: wasmtime.Caller, subs_ptr: int, events_ptr: int, count: int,
                     nevents_ptr: int) -> int:
        self._check_interrupt()
        # wasmtime passes i32s signed: pointers above 2 GiB come negative.
        subs_ptr, events_ptr, count, nevents_ptr = (v & 0xFFFFFFFF
                                                    for v in (subs_ptr, events_ptr, count, nevents_ptr))
        memory = caller.get("memory")
        if not isinstance(memory, wasmtime.Memory):
            return _ERRNO_FAULT
        if count == 0:
            return _ERRNO_INVAL
        size = memory.data_len(caller)
        if any(p + n > size for p, n in ((subs_ptr, count * _SUBSCRIPTION.size),
                                                    (events_ptr, count * _EVENT.size), (nevents_ptr, 4))):
            return _ERRNO_FAULT
        subs = bytes(memory.read(caller, subs_ptr, subs_ptr + count * _SUBSCRIPTION.size))
        ready: List[bytes] = []  # events that do not wait
        clocks: List[Tuple[int, float]] = []  # (userdata, deadline on time.monotonic())
        stdin_waits: List[int] = []  # userdata of fd_read subscriptions on the fed stdin
        stdin, wake = self._stdin, self._wake
        assert wake is not None  # configured before the guest could call
        for i in range(count):
            userdata, tag, ident, timeout, _precision, flags = _SUBSCRIPTION.unpack_from(subs, i * _SUBSCRIPTION.size)
            if tag == _CLOCK:
                if ident not in (_REALTIME, _MONOTONIC):
                    ready.append(_EVENT.pack(userdata, _ERRNO_NOTSUP, tag, 0, 0))
                    continue
                if flags & _ABSTIME:  # the guest's clocks are wasmtime's (its monotonic starts at 0)
                    timeout -= self._now(caller, ident)
                clocks.append((userdata, time.monotonic() + max(timeout, 0) / 1e9))
            elif tag == _FD_READ and ident == 0 and stdin is not None:
                stdin_waits.append(userdata)
            elif tag in (_FD_READ, _FD_WRITE):  # files, stdout/stderr: wasmtime never waits on them
                ready.append(_EVENT.pack(userdata, self._fd_error(caller, ident), tag, 0, 0))
            else:
                return _ERRNO_INVAL
        waits = {wake.fileno(): select.POLLIN}
        if stdin_waits and stdin is not None:
            waits[stdin.read_fd] = select.POLLIN
        while True:
            if self._stop_pending():
                return _ERRNO_INTR
            now = time.monotonic()
            if ready or any(deadline <= now for _, deadline in clocks):
                wait: Optional[float] = 0
            else:
                wait = min([_LONGEST_WAIT, *(deadline - now for _, deadline in clocks)]) if clocks else None
            readable = _wait(waits, wait)
            if wake.fileno() in readable:  # a stop request or the interrupt
                wake.drain()
                self._check_interrupt()
                continue
            now = time.monotonic()
            events = ready + [_EVENT.pack(u, 0, _CLOCK, 0, 0) for u, deadline in clocks if deadline <= now]
            if stdin is not None and stdin.read_fd in readable:
                available = _bytes_available(stdin.read_fd)  # 0: the end of input
                events += [_EVENT.pack(u, 0, _FD_READ, available, 0 if available else _HANGUP)
                           for u in stdin_waits]
            if events:
                memory.write(caller, b"".join(events), events_ptr)
                memory.write(caller, struct.pack("<I", len(events)), nevents_ptr)
                return 0

    def _check_interrupt(self) -> None:
        if self._interrupted:
            raise wasmtime.Trap("interrupted: the stop's grace period ended in a blocking WASI call")

    def _stop_pending(self) -> bool:
        with self._lock:
            if self._stopping and not self._stop_delivered:
                self._stop_delivered = True
                return True
        return False


def _wait(fds: Dict[int, int], seconds: Optional[float] = None) -> List[int]:
    """poll(): the fds of `fds` (fd -> events) that are ready; select() cannot take fds
    above 1023, which a host with many BPF links has."""
    poller = select.poll()
    for fd, events in fds.items():
        poller.register(fd, events)
    return [fd for fd, _ in poller.poll(None if seconds is None else max(0, seconds * 1000))]


def _background_reader(fd: int) -> bool:
    """Is fd a terminal whose foreground process group is not this process's?"""
    try:
        return os.isatty(fd) and os.tcgetpgrp(fd) != os.getpgrp()
    except OSError:
        return False


def _bytes_available(fd: int) -> int:
    buf = fcntl.ioctl(fd, termios.FIONREAD, b"\0\0\0\0")
    return int.from_bytes(buf, "little")
