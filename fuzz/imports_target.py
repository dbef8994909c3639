"""Target "imports": every host import, called from a guest with hypothesis-chosen
integers.

One input is a short program: which guest variant, what fills the guest's memory,
which real BPF objects are loaded first (so handles, map fds and program fds are
sometimes valid), and then a sequence of import calls whose arguments mix valid
values, boundary values (pointers at and past the end of memory, negative and huge
lengths) and random integers. Properties, per call: it returns an int that is a
valid result or a negative errno from the import's documented set; no Python
exception escapes (a trap only when the guest's own callback traps). Per input:
after the host closes, this process holds no BPF program or link fd."""
import errno as E
import json
import os
import threading
import traceback
from pathlib import Path
from typing import Any, Dict, List, Sequence, Set, Tuple

import wasmtime
from hypothesis import strategies as st

from wasm_bpf._native import ffi, lib
from wasm_bpf.errors import to_guest_errno
from wasm_bpf.imports import WasmBpfHost
from wasm_bpf.objspec import maps_of, open_object, programs_of
from wasm_bpf.sandbox import Sandbox

from . import guest
from .common import ROOT, Finding, Stats, fuzz_object, held_bpf_fds, kernel_bpf_ids, leaked_since, run_for

# Guest memory layout of one input (the memory starts with 4 pages = 256 KiB).
STRINGS_AT, ELF_AT, DATA_AT = 0x1000, 0x10000, 0x28000
POLL_WATCHDOG = 0.2  # seconds before a blocking poll is stopped (-EINTR)

# What each argument of each import means, so most draws are near-valid. An import
# added to the host later gets random integers for every argument.
POLL_ARGS = ["handle", "fd", "callback", "ptr", "ptr", "size", "timeout"]
ARG_KINDS: Dict[str, List[str]] = {
    "wasm_load_bpf_object": ["elf", "elf_size"],
    "wasm_load_bpf_object_ex": ["elf", "elf_size", "ptr", "size"],
    "wasm_attach_bpf_program": ["handle", "prog_name", "target"],
    "wasm_bpf_attach_link": ["handle", "prog_name", "target"],
    "wasm_bpf_map_fd_by_name": ["handle", "map_name"],
    "wasm_bpf_prog_fd_by_name": ["handle", "prog_name"],
    "wasm_bpf_buffer_poll": POLL_ARGS,
    "wasm_bpf_buffer_poll_batch": POLL_ARGS,
    "callback-wrapper:wasm_bpf_buffer_poll": ["handle", "fd", "ptr", "ptr", "size", "timeout"],
    "wasm_bpf_map_operate": ["fd", "cmd", "ptr", "ptr", "ptr", "flags"],
    "wasm_bpf_map_batch": ["fd", "batch_cmd", "ptr", "ptr", "ptr", "ptr", "ptr", "flags", "flags"],
    "wasm_close_bpf_object": ["handle"],
    "wasm_bpf_link_destroy": ["link"],
    "wasm_bpf_iter_read": ["handle", "prog_name", "ptr", "size"],
    "wasm_bpf_map_mirror": ["fd", "ptr", "size"],
    "wasm_bpf_user_ringbuf_submit": ["fd", "ptr", "size"],
    "wasm_bpf_num_possible_cpus": [],
}


def _errnos(*names: str) -> Set[int]:
    return {-to_guest_errno(getattr(E, n)) for n in names}


STRING_ERRORS = ("EFAULT", "ENAMETOOLONG", "EILSEQ")
ANY_ERRNO = set(range(-76, 0))  # "the kernel's errno": any WASI errno
# The documented errors (host_abi/ABI.md) of each import; ANY_ERRNO where the ABI
# passes the kernel's refusal through.
ALLOWED: Dict[str, Set[int]] = {
    "wasm_attach_bpf_program": ANY_ERRNO,
    "wasm_bpf_attach_link": ANY_ERRNO,
    "wasm_bpf_map_operate": ANY_ERRNO,
    "wasm_bpf_map_batch": ANY_ERRNO,
    "wasm_bpf_iter_read": ANY_ERRNO,
    "wasm_bpf_map_fd_by_name": _errnos("EINVAL", "ENOENT", *STRING_ERRORS),
    "wasm_bpf_prog_fd_by_name": _errnos("EINVAL", "ENOENT", *STRING_ERRORS),
    "wasm_bpf_buffer_poll": _errnos("EINVAL", "EBADF", "EFAULT", "EBUSY", "EINTR"),
    "wasm_bpf_buffer_poll_batch": _errnos("EINVAL", "EBADF", "EFAULT", "EBUSY", "EINTR"),
    "callback-wrapper:wasm_bpf_buffer_poll": _errnos("EINVAL", "EBADF", "EFAULT", "EBUSY", "EINTR"),
    "wasm_close_bpf_object": _errnos("EINVAL"),
    "wasm_bpf_link_destroy": _errnos("EINVAL"),
    "wasm_bpf_map_mirror": _errnos("EBADF", "EINVAL", "EFAULT"),
    "wasm_bpf_user_ringbuf_submit": _errnos("ENOSPC", "E2BIG", "EBADF", "EINVAL", "EFAULT", "EPERM"),
}
BUFFER_MAPS = ("fz_ring", "fz_perf")
POLLS = [("wasm_bpf", "wasm_bpf_buffer_poll"), ("wasm_bpf_ext", "wasm_bpf_buffer_poll_batch"),
         (guest.CALLBACK_MODULE, "wasm_bpf_buffer_poll")]
STOP_RESULT = -5  # what guest.CB_STOP returns; a poll returns it unchanged

TARGETS = ["", "lo", "lo,mode=generic", "lo,mode=native", "lo,mode=bogus", "lo:ingress", "lo:egress",
           "tcx:lo:ingress", "tcx:lo:sideways", "lo:", ":", ",", ",,=", "nosuchif0", "nosuchif0:ingress",
           "/sys/fs/cgroup", "/sys/fs/cgroup/unified", "../../etc", "cpu-clock", "cpu-clock,freq=99",
           "task-clock,cpu=0,period=100000", "page-faults,pid=1", "cycles", "cpu-clock,freq=-1",
           "cpu-clock,cpu=99999", "libc.so.6:getpid", "/bin/true:main", "/bin/true:0x10", "a:b:c",
           "__x64_sys_getppid", "do_sys_openat2+0x10", "fz_ring", "fz_hash", "1:0", "0:0",
           "99999999:3", "x" * 300]
EXTRA_NAMES = [".bss", ".data", ".rodata", ".kconfig", "fuzz.bss", "x.data", "fz_", "", "nosuch",
               "fz_tp\n", "FZ_TP"]


def _object_names(elf: bytes) -> Tuple[List[str], List[str]]:
    """(program names, map names) of a BPF object, as libbpf reads them."""
    buf = ffi.from_buffer(elf)
    obj = open_object(buf)
    try:
        return [p.name for p in programs_of(obj)], [m.name for m in maps_of(obj)]
    finally:
        lib.bpf_object__close(obj)


class Corpus:
    """The objects a guest may load, and the strings its memory holds."""

    def __init__(self) -> None:
        self.objects: List[bytes] = [fuzz_object().read_bytes()]
        taskiter = ROOT / "wasm_examples/taskiter/.output/taskiter.bpf.o"
        if taskiter.exists():  # an iterator program, for wasm_bpf_iter_read
            self.objects.append(taskiter.read_bytes())
        progs, maps = set(), set()
        for elf in self.objects:
            p, m = _object_names(elf)
            progs |= set(p)
            maps |= set(m)
        self.prog_names, self.map_names = sorted(progs), sorted(maps)
        self.strings: List[bytes] = [s.encode() + b"\0" for s in
                                     [*self.prog_names, *self.map_names, *EXTRA_NAMES, *TARGETS]]
        self.strings += [b"\xff\xfe\0", b"fz_\xc3\0", b"y" * 5000]  # not UTF-8; no NUL in 4096 bytes
        self.strings_table = bytearray()
        self.string_at: Dict[bytes, int] = {}
        for s in self.strings:
            self.string_at[s] = STRINGS_AT + len(self.strings_table)
            self.strings_table += s
        assert STRINGS_AT + len(self.strings_table) < ELF_AT
        assert all(ELF_AT + len(o) <= DATA_AT for o in self.objects)

    def name_offsets(self, names: Sequence[str]) -> List[int]:
        return [self.string_at[n.encode() + b"\0"] for n in names]


class Session:
    """One input's guest: a fresh store, host and instance."""

    def __init__(self, engine: wasmtime.Engine, module: wasmtime.Module) -> None:
        self.messages: List[str] = []
        self.stop_flag = ffi.new("int *")
        self.host = WasmBpfHost(self.messages.append, self.stop_flag, sandbox=Sandbox(dirs=()))
        self.store = wasmtime.Store(engine)
        linker = wasmtime.Linker(engine)
        linker.define_wasi()
        self.store.set_wasi(wasmtime.WasiConfig())
        self.host.bind(linker, module, guest.CALLBACK_MODULE)
        self.instance = linker.instantiate(self.store, module)
        self.exports = self.instance.exports(self.store)
        memory = self.exports["memory"]
        assert isinstance(memory, wasmtime.Memory)
        self.memory = memory
        self.variant = 0
        self.handles: List[int] = []
        self.links: List[int] = []
        self.map_fds: List[int] = []
        self.prog_fds: List[int] = []
        self.buffers: List[Tuple[int, int]] = []  # (handle, fd) of ring and perf buffers

    @property
    def mem_size(self) -> int:
        return self.memory.data_len(self.store)

    def write(self, offset: int, data: bytes) -> None:
        self.memory.write(self.store, data, offset)

    def call(self, export: str, *args: int) -> Any:
        func = self.exports[export]
        assert isinstance(func, wasmtime.Func)
        return func(self.store, *args)

    def close(self) -> None:
        self.host.close()
        self.store.close()


def mix(*weighted: Tuple[int, Any]) -> Any:
    """A strategy choosing among strategies with these weights (st.one_of weighs its
    branches as it likes)."""
    total = sum(w for w, _ in weighted)

    def branch(i: int) -> Any:
        for w, strategy in weighted:
            if i < w:
                return strategy
            i -= w
        raise AssertionError(i)

    return st.integers(0, total - 1).flatmap(branch)


def _i32(v: int) -> int:
    v &= 0xFFFFFFFF
    return v - (1 << 32) if v >= 1 << 31 else v


def _i64(v: int) -> int:
    v &= 0xFFFFFFFFFFFFFFFF
    return v - (1 << 64) if v >= 1 << 63 else v


class ImportFuzzer:
    def __init__(self, stats: Stats, crash_dir: Path) -> None:
        self.stats = stats
        self.crash_dir = crash_dir
        self.engine = wasmtime.Engine()
        self.modules = [wasmtime.Module(self.engine, guest.module_bytes(v)) for v in (0, 1)]
        self.corpus = Corpus()
        self.held_before = held_bpf_fds()

    # ---- drawing arguments ----
    def _value(self, data: Any, s: Session, kind: str, wasm_type: str, log: List[Any]) -> int:
        """One argument. Every draw has a fixed shape (indices into lists, offsets
        reduced modulo the memory size), so what the kernel returned earlier changes
        the values but never the shape of the draws (hypothesis requires that)."""
        c = self.corpus
        size = s.mem_size

        def pick(valid: Sequence[int], other: Sequence[int]) -> Any:
            """Mostly one of `valid` (what the host handed out; its length varies), else one of `other`."""
            def choose(i: int) -> int:
                return valid[i % len(valid)] if valid and i < 85 else other[i % len(other)]
            return st.integers(0, 99).map(choose)

        rand = st.integers(-(1 << 31), (1 << 31) - 1) if wasm_type == "i32" else st.integers(-(1 << 63), (1 << 63) - 1)
        pointers = st.one_of(
            st.sampled_from([0, 1, DATA_AT, DATA_AT + 8, size - 1, size, size + 1, size - 8, size - 4096,
                             (1 << 32) - 1, (1 << 31), (1 << 32) + DATA_AT, -1]),
            st.integers(0, 1 << 24).map(lambda v: v % (size + 65)),
            st.sampled_from(sorted(c.string_at.values())))
        boundary_sizes = [0, 1, 4, 8, 16, 64, 4096, size - DATA_AT, size, -1, -(1 << 31), (1 << 31) - 1,
                          1 << 24, (1 << 24) + 1]
        smart: Dict[str, Any] = {
            "handle": pick(s.handles, [0, 1, 2, -1, 1 << 32 | 1, (1 << 63) - 1]),
            "link": pick(s.links, [0, 1, 2, -1, (1 << 63) - 1]),
            "fd": pick(s.map_fds, s.prog_fds + [0, 1, 2, -1, 3, 100, 1 << 30]),
            "cmd": st.sampled_from([1, 2, 3, 4, 21, 0, 5, 24, 26, 100, -1]),
            "batch_cmd": st.sampled_from([24, 25, 26, 27, 1, 2, 0, -1]),
            "ptr": pointers,
            "size": st.one_of(st.sampled_from(boundary_sizes), st.integers(0, 70000), st.sampled_from([8, 64, 4096])),
            "elf": st.one_of(st.just(ELF_AT), pointers),
            "elf_size": st.one_of(st.sampled_from([len(o) for o in c.objects]),
                                  st.sampled_from([0, -1, 16, 64, 1 << 30, (1 << 30) + 1, size]),
                                  st.integers(0, 1 << 24).map(lambda v: v % (size + 1))),
            "prog_name": st.one_of(st.sampled_from(c.name_offsets(c.prog_names)), pointers),
            "map_name": st.one_of(st.sampled_from(c.name_offsets(c.map_names)), pointers),
            "target": st.one_of(st.just(0), st.sampled_from(c.name_offsets(TARGETS)), pointers),
            "callback": st.one_of(st.integers(0, guest.TABLE_SIZE + 1), rand),
            "timeout": st.sampled_from([0, 1, 10, -1, (1 << 31) - 1, -(1 << 31)]),
            "flags": st.one_of(st.sampled_from([0, 1, 2, 4, 1 << 32]), rand),
        }
        strategy = smart.get(kind)
        if strategy is None:
            value = data.draw(rand)
        elif kind == "timeout":  # never a random wait: the watchdog bounds the waits there are
            value = data.draw(strategy)
        else:
            value = data.draw(mix((6, strategy), (1, rand)))  # mostly near-valid
        if kind == "callback" and value == guest.CB_TRAP:
            log.append("trap-callback")
        return _i32(value) if wasm_type == "i32" else _i64(value)

    # ---- one input ----
    def run_one(self, data: Any) -> None:
        variant = data.draw(st.sampled_from([0, 1]), label="variant")
        log: List[Any] = [("variant", variant)]
        s = Session(self.engine, self.modules[variant])
        s.variant = variant
        try:
            self._fill(data, s, log)
            self._preload(data, s, log)
            for _ in range(data.draw(st.integers(1, 25), label="calls")):
                self._step(data, s, log)
        except _Finding as f:
            self._record(f.kind, f.detail, log)
        except Exception as exc:  # an exception out of the harness itself is a finding too
            self._record("python exception", "".join(traceback.format_exception(exc))[-2000:], log)
        finally:
            try:
                s.close()
            except Exception as exc:
                self._record("python exception at close", "".join(traceback.format_exception(exc))[-2000:], log)
        left = held_bpf_fds() - self.held_before
        if left:
            self._record("leak", f"BPF fds still held after the instance closed: {sorted(left)}", log)

    def _fill(self, data: Any, s: Session, log: List[Any]) -> None:
        mode = data.draw(st.sampled_from(["zeros", "random", "strings"]), label="fill")
        log.append(("fill", mode))
        if mode == "random":
            chunk = data.draw(st.binary(min_size=1, max_size=512), label="random bytes")
            log.append(("bytes", chunk.hex()))
            s.write(0, (chunk * (STRINGS_AT // len(chunk) + 1))[:STRINGS_AT])
            s.write(DATA_AT, (chunk * ((s.mem_size - DATA_AT) // len(chunk) + 1))[:s.mem_size - DATA_AT])
        elif mode == "strings":  # the data region full of names: keys and values that look like strings
            table = bytes(self.corpus.strings_table)
            s.write(DATA_AT, (table * ((s.mem_size - DATA_AT) // len(table) + 1))[:s.mem_size - DATA_AT])
        s.write(STRINGS_AT, bytes(self.corpus.strings_table))
        if data.draw(st.booleans(), label="unterminated tail"):  # a string that runs into the end of memory
            s.write(s.mem_size - 64, b"z" * 64)

    def _preload(self, data: Any, s: Session, log: List[Any]) -> None:
        c = self.corpus
        for index, elf in enumerate(c.objects):
            if not data.draw(mix((3, st.just(True)), (1, st.just(False))), label=f"load object {index}"):
                continue
            s.write(ELF_AT, elf)
            handle = self._checked(s, "wasm_bpf", "wasm_load_bpf_object", [ELF_AT, len(elf)], log)
            if not handle:
                raise _Finding("bad result", f"the unmodified object {index} did not load: {s.messages[-3:]}")
            if data.draw(mix((3, st.just(True)), (1, st.just(False))), label="map fds"):
                for map_name, offset in zip(c.map_names, c.name_offsets(c.map_names)):
                    fd = self._checked(s, "wasm_bpf", "wasm_bpf_map_fd_by_name", [handle, offset], log)
                    if fd >= 0 and map_name in BUFFER_MAPS:
                        s.buffers.append((handle, fd))
            if data.draw(st.booleans(), label="prog fds"):
                for offset in c.name_offsets(c.prog_names):
                    self._checked(s, "wasm_bpf_ext", "wasm_bpf_prog_fd_by_name", [handle, offset], log)

    def _step(self, data: Any, s: Session, log: List[Any]) -> None:
        action = data.draw(st.sampled_from(["import"] * 7 + ["poll", "poll", "getppid", "grow", "reenter"]),
                           label="action")
        if action == "getppid":  # fires fz_tp if attached: records for the polls
            for _ in range(data.draw(st.integers(1, 50))):
                os.getppid()
            log.append("getppid")
            return
        if action == "grow":
            pages = data.draw(st.integers(0, 8))
            log.append(("grow", pages, s.call("grow", pages)))
            return
        if action == "reenter":  # what guest.CB_REENTER polls from inside a callback
            objs, fds = s.handles + [0], s.map_fds + [0]
            obj = objs[data.draw(st.integers(0, 15)) % len(objs)]
            fd = fds[data.draw(st.integers(0, 15)) % len(fds)]
            s.call("set_reenter", obj, fd)
            log.append(("reenter", obj, fd))
            return
        key = data.draw(st.sampled_from(sorted(guest.imports(0))), label="import")
        params, _ = guest.imports(s.variant)[key]
        module, name = key
        kinds = ARG_KINDS.get(name if module != guest.CALLBACK_MODULE else f"{module}:{name}", [])
        args = [self._value(data, s, kinds[i] if i < len(kinds) else "any", t, log) for i, t in enumerate(params)]
        if action == "poll" and s.buffers:  # a real buffer: the record path, its callbacks and their traps
            key = data.draw(st.sampled_from(POLLS))
            module, name = key
            params, _ = guest.imports(s.variant)[key]
            kinds = ARG_KINDS[name if module != guest.CALLBACK_MODULE else f"{module}:{name}"]
            args = [self._value(data, s, k, t, log) for k, t in zip(kinds, params)]
            args[0], args[1] = s.buffers[data.draw(st.integers(0, 7)) % len(s.buffers)]
        self._checked(s, module, name, args, log)

    # ---- calling and checking ----
    def _checked(self, s: Session, module: str, name: str, args: List[int], log: List[Any]) -> int:
        label = name if module != guest.CALLBACK_MODULE else f"{module}:{name}"
        entry: List[Any] = [label, args]
        log.append(entry)
        watchdog = None
        if "poll" in name:  # a poll that would wait forever is stopped, as a signal would
            watchdog = threading.Timer(POLL_WATCHDOG, lambda: s.stop_flag.__setitem__(0, 1))
            watchdog.start()
        try:
            result = s.call(guest.export_name(module, name), *args)
        except wasmtime.Trap as exc:
            if len(log) >= 2 and log[-2] == "trap-callback":  # the guest's own callback trapped
                entry.append("trap")
                self.stats.outcome(f"trap in callback: {label}")
                return 0
            raise _Finding("python exception", f"{label}{tuple(args)} trapped: {str(exc)[:500]}") from None
        except Exception as exc:
            raise _Finding("python exception", f"{label}{tuple(args)} raised "
                           + "".join(traceback.format_exception(exc))[-1500:]) from None
        finally:
            if watchdog is not None:
                watchdog.cancel()
                s.stop_flag[0] = 0
        entry.append(result)
        self._check_result(s, label, args, result)
        return result

    def _check_result(self, s: Session, label: str, args: List[int], result: Any) -> None:
        if not isinstance(result, int):
            raise _Finding("bad result", f"{label}{tuple(args)} returned {result!r}")
        ok = False
        if label in ("wasm_load_bpf_object", "wasm_load_bpf_object_ex"):
            ok = result == 0 or (result > 0 and result not in s.handles)
            if result > 0:
                s.handles.append(result)
        elif result < 0:
            allowed = ALLOWED.get(label, ANY_ERRNO)
            ok = result in allowed or ("poll" in label and result == STOP_RESULT)
            if label.startswith("wasm_bpf_map") or "attach" in label or "submit" in label:
                ok = ok or result in _errnos("EPERM")  # the policy
        elif label == "wasm_bpf_map_fd_by_name":
            ok = _fd_kind(result) == "anon_inode:bpf-map"
            if ok and result not in s.map_fds:
                s.map_fds.append(result)
        elif label == "wasm_bpf_prog_fd_by_name":
            ok = _fd_kind(result) == "anon_inode:bpf-prog"
            if ok and result not in s.prog_fds:
                s.prog_fds.append(result)
        elif label == "wasm_bpf_attach_link":
            ok = result > 0
            s.links.append(result)
        elif label == "wasm_bpf_iter_read":
            ok = result <= args[3]
        elif label == "wasm_bpf_num_possible_cpus":
            ok = result >= 1
        elif "poll" in label:
            ok = True  # a record count
        else:
            ok = result == 0
        if not ok:
            raise _Finding("bad result", f"{label}{tuple(args)} returned {result} "
                           f"(host said: {s.messages[-1:] or 'nothing'})")
        self.stats.outcome(f"ok: {label}" if result >= 0 and not (label.startswith("wasm_load") and result == 0)
                           else f"{label}: {_errno_name(result) if result < 0 else 'load failed'}")

    def _record(self, kind: str, detail: str, log: List[Any]) -> None:
        self.crash_dir.mkdir(parents=True, exist_ok=True)
        path = self.crash_dir / f"{self.stats.target}-{len(self.stats.findings) + 1}.json"
        path.write_text(json.dumps({"kind": kind, "detail": detail, "calls": log}, indent=1, default=str))
        self.stats.findings.append(Finding(kind, detail, str(path)))


class _Finding(Exception):
    def __init__(self, kind: str, detail: str) -> None:
        super().__init__(detail)
        self.kind, self.detail = kind, detail


def _fd_kind(fd: int) -> str:
    try:
        return os.readlink(f"/proc/self/fd/{fd}")
    except OSError:
        return ""


_WASI_NAMES: Dict[int, str] = {}


def _errno_name(result: int) -> str:
    if not _WASI_NAMES:
        for name, value in E.__dict__.items():
            if name.startswith("E") and isinstance(value, int):
                _WASI_NAMES.setdefault(to_guest_errno(value), name)
    return "-" + _WASI_NAMES.get(-result, str(-result))


def fuzz(seconds: float, crash_dir: Path) -> Stats:
    """Runs the import target for `seconds`; findings are saved under crash_dir."""
    stats = Stats("imports")
    before = kernel_bpf_ids()
    fuzzer = ImportFuzzer(stats, crash_dir)
    run_for(seconds, st.data(), fuzzer.run_one, stats, batch=20)
    left = leaked_since(before)
    if left:
        stats.findings.append(Finding("leak", f"BPF programs/links left in the kernel after the run: {sorted(left)}"))
    return stats
