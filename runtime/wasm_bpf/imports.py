"""The host functions a guest imports (module ``wasm_bpf`` and friends), documented in
host_abi/ABI.md.

Each import is a method that takes decoded arguments and raises HostCallError on bad
input; one wrapper turns that into the negative WASI errno the guest receives. The
host binds exactly the imports a module declares, with the types it declares them with
(the upstream Go/Rust SDKs declare map_operate's pointers as i64).

The three poll imports are host functions of the C shim (struct wbpf_host), so a guest
polling in a loop never enters Python; their methods here serve the calls the shim
hands back: those whose arguments fail a check, to answer with the documented error
and its message."""
from __future__ import annotations

import ctypes
import errno
import itertools
import weakref
from operator import attrgetter
from typing import Any, Callable, Collection, Dict, List, Optional, Sequence, Tuple

import wasmtime
from wasmtime import FuncType, ValType
from wasmtime import _ffi as wt_ffi
from wasmtime import _func as wt_func

from ._native import ffi, lib
from .attach import Link
from .buffers import BufferStats, PollTarget
from .errors import HostCallError, WasmBpfError, guest_errno_table, to_guest_errno
from .guest_memory import GuestMemory
from .limits import LimitError
from .bpf_object import BpfObject
from .maps import GuestMaps, MapInfo
from .policy import PolicyRefusal
from .sandbox import Sandbox

WASI_MODULE = "wasi_snapshot_preview1"
EXT_MODULE = "wasm_bpf_ext"
MAX_OBJECT_SIZE = 1 << 30
MAX_ITER_READ = 1 << 24

# Argument kinds: how a raw Wasm value is decoded before the method sees it.
PTR, PTR64, HANDLE, I32, U64 = "ptr", "ptr64", "handle", "i32", "u64"
_WASM_TYPE = {PTR: "i32", PTR64: "i64", HANDLE: "i64", I32: "i32", U64: "i64"}


def _decode(kind: str, value: int) -> int:
    if kind == PTR:
        return value & 0xFFFFFFFF
    if kind in (HANDLE, U64):
        return value & 0xFFFFFFFFFFFFFFFF
    if kind == PTR64:
        value &= 0xFFFFFFFFFFFFFFFF
        if value > 0xFFFFFFFF:
            raise HostCallError(errno.EFAULT, f"pointer {value:#x} is beyond 4 GiB")
    return value


class Signature:
    def __init__(self, params: Sequence[str], result: str) -> None:
        self.params = tuple(params)
        self.result = result

    def wasm_params(self) -> List[str]:
        return [_WASM_TYPE[p] for p in self.params]

    def func_type(self) -> FuncType:
        types = {"i32": ValType.i32(), "i64": ValType.i64()}
        return FuncType([types[t] for t in self.wasm_params()], [types[self.result]])

    def __str__(self) -> str:
        return f"({', '.join(self.wasm_params())}) -> {self.result}"


# (module, name) -> (method of WasmBpfHost, signatures accepted, value returned when the call fails or
# None for -errno, loud). "maps.*": the map operations, in maps.GuestMaps.
_POLL = Signature([HANDLE, I32, I32, PTR, PTR, I32, I32], "i32")
IMPORTS: Dict[Tuple[str, str], Tuple[str, Tuple[Signature, ...], Optional[int], bool]] = {
    ("wasm_bpf", "wasm_load_bpf_object"): ("load_object", (Signature([PTR, I32], "i64"),), 0, True),
    ("wasm_bpf", "wasm_attach_bpf_program"): ("attach_program", (Signature([HANDLE, PTR, PTR], "i32"),), None, True),
    ("wasm_bpf", "wasm_bpf_map_fd_by_name"): ("map_fd_by_name", (Signature([HANDLE, PTR], "i32"),), None, False),
    ("wasm_bpf", "wasm_bpf_buffer_poll"): ("buffer_poll", (_POLL,), None, False),
    ("wasm_bpf", "wasm_bpf_map_operate"): ("maps.operate", (
        Signature([I32, I32, PTR, PTR, PTR, U64], "i32"),
        Signature([I32, I32, PTR64, PTR64, PTR64, U64], "i32"),
    ), None, False),
    ("wasm_bpf", "wasm_close_bpf_object"): ("close_object", (Signature([HANDLE], "i32"),), None, False),
    (EXT_MODULE, "wasm_load_bpf_object_ex"): ("load_object_ex", (Signature([PTR, I32, PTR, I32], "i64"),), 0, True),
    (EXT_MODULE, "wasm_bpf_buffer_poll_batch"): ("buffer_poll_batch", (_POLL,), None, False),
    (EXT_MODULE, "wasm_bpf_attach_link"): ("attach_link", (Signature([HANDLE, PTR, PTR], "i64"),), None, True),
    (EXT_MODULE, "wasm_bpf_link_destroy"): ("link_destroy", (Signature([HANDLE], "i32"),), None, False),
    (EXT_MODULE, "wasm_bpf_iter_read"): ("iter_read", (Signature([HANDLE, PTR, PTR, I32], "i32"),), None, True),
    (EXT_MODULE, "wasm_bpf_num_possible_cpus"): ("num_possible_cpus", (Signature([], "i32"),), None, False),
    (EXT_MODULE, "wasm_bpf_map_mirror"): ("maps.mirror", (Signature([I32, PTR, I32], "i32"),), None, False),
    (EXT_MODULE, "wasm_bpf_map_batch"): ("maps.batch", (
        Signature([I32, I32, PTR, PTR, PTR, PTR, PTR, U64, U64], "i32"),), None, False),
    (EXT_MODULE, "wasm_bpf_user_ringbuf_submit"): ("maps.user_ringbuf_submit", (Signature([I32, PTR, I32], "i32"),),
                                                   None, False),
    (EXT_MODULE, "wasm_bpf_prog_fd_by_name"): ("prog_fd_by_name", (Signature([HANDLE, PTR], "i32"),), None, False),
}
_WRAPPER_POLL = Signature([HANDLE, I32, I32, PTR, I32, I32], "i32")
# The imports the shim serves, by method: the kind of poll (shim.h).
_C_POLLS = {"buffer_poll": lib.WBPF_POLL_RECORD, "buffer_poll_batch": lib.WBPF_POLL_BATCH,
            "buffer_poll_export": lib.WBPF_POLL_EXPORT}
_MAX_ERRNO = 4096  # Linux errno values the shim translates (MAX_ERRNO); above: EIO
# The hosts the shim may hand a poll back to, by the key it was given (weakly: a cffi
# handle to the host, held by the host, would be a cycle).
_HOSTS: "weakref.WeakValueDictionary[int, WasmBpfHost]" = weakref.WeakValueDictionary()
_HOST_KEYS = itertools.count(1)


def signature_of(ty: FuncType) -> Tuple[List[str], List[str]]:
    """(params, results) of a function type, as value type names: "i32", "i64"."""
    return [str(t) for t in ty.params], [str(t) for t in ty.results]


def describe_type(ty: Any) -> str:
    """An import's declared type for a message: "(i32) -> i32", or its kind (a global...)."""
    if isinstance(ty, FuncType):
        return f"({', '.join(str(t) for t in ty.params)}) -> {', '.join(str(t) for t in ty.results) or '()'}"
    return "a " + type(ty).__name__.removesuffix("Type").lower()


def _takes_i32s(ty: FuncType, count: int) -> bool:
    """Is ty (i32 x count) -> i32: a record callback (3) or a batch callback (4)?"""
    return signature_of(ty) == (["i32"] * count, ["i32"])


class WasmBpfHost:
    """The BPF state of one guest instance: its objects, links and the fds it was given.
    Object and link handles are positive i64 values local to the instance; a link dies
    with its object."""

    def __init__(self, report: Callable[[str], None], stop_flag: Any, *, verbose: bool = False,
                 perf_pages: int = 64, callback_export: str = "go-callback",
                 sandbox: Optional[Sandbox] = None, object_name: str = "") -> None:
        self._report = report
        self._object_name = object_name  # libbpf's name of the guest's objects (the module's)
        self.sandbox = sandbox or Sandbox(dirs=())  # a guest reaches no host path unless granted
        self._verbose = verbose
        self._perf_pages = perf_pages
        self._callback_export = callback_export
        self.objects: Dict[int, BpfObject] = {}
        self._next_handle = 1
        self._links: Dict[int, Tuple[int, Link]] = {}  # link handle -> (object handle, link)
        self._next_link = 1
        self.buffer_stats: List[BufferStats] = []  # of the buffers of closed objects
        self._memory: Optional[wasmtime.Memory] = None
        self.memory_bytes = 0  # the guest's linear memory at its last host call (Instance.status)
        self.call_watch = ffi.new("struct wbpf_call_watch *")  # sampled by the CPU watchdog
        # The C side of the poll imports; what it points to lives as long as it does.
        self._stop_request = ffi.new("struct wbpf_stop *", {"flag": stop_flag, "wake_fd": -1})
        self._wasi_errno = ffi.new("int32_t[]", guest_errno_table(_MAX_ERRNO))
        self._fallbacks: Dict[int, Callable[..., int]] = {}  # poll kind -> the wrapped method
        key = next(_HOST_KEYS)
        _HOSTS[key] = self
        c_host = lib.wbpf_host_new(self._stop_request, self.call_watch, ffi.cast("void *", key),
                                   callback_export.encode(), self._wasi_errno, _MAX_ERRNO)
        if c_host == ffi.NULL:
            raise MemoryError("cannot allocate the poll imports' state")
        self._c_host = ffi.gc(c_host, lib.wbpf_host_free)
        self.maps = GuestMaps(self.sandbox, self._c_host)

    # ---- the imports ----------------------------------------------------------------
    def load_object(self, mem: GuestMemory, buf: int, size: int) -> int:
        return self.load_object_ex(mem, buf, size, 0, 0)

    def load_object_ex(self, mem: GuestMemory, buf: int, size: int, no_load: int, no_load_size: int) -> int:
        if size <= 0 or size > MAX_OBJECT_SIZE:
            raise HostCallError(errno.EINVAL, f"object size {size} is out of range")
        self.sandbox.limits.check_objects(len(self.objects))
        elf = mem.read(buf, size)
        try:
            names = [n.decode() for n in mem.read(no_load, no_load_size).split(b"\0") if n] if no_load_size > 0 else []
        except UnicodeDecodeError:  # found by fuzz/: it escaped as a Python exception
            raise HostCallError(errno.EILSEQ, "a name in the no_load list is not UTF-8") from None
        obj = BpfObject(elf, no_load=names, sandbox=self.sandbox, name=self._object_name)
        handle = self._next_handle
        self._next_handle += 1
        self.objects[handle] = obj
        return handle

    def attach_program(self, mem: GuestMemory, handle: int, name: int, target: int) -> int:
        self._attach(mem, handle, name, target)
        return 0

    def attach_link(self, mem: GuestMemory, handle: int, name: int, target: int) -> int:
        link = self._attach(mem, handle, name, target)
        link_handle = self._next_link
        self._next_link += 1
        self._links[link_handle] = (handle, link)
        return link_handle

    def link_destroy(self, mem: GuestMemory, link_handle: int) -> int:
        entry = self._links.pop(link_handle, None)
        if entry is None:
            raise HostCallError(errno.EINVAL, f"unknown link handle {link_handle:#x}")
        owner, link = entry
        self.objects[owner].destroy_link(link)
        return 0

    def map_fd_by_name(self, mem: GuestMemory, handle: int, name: int) -> int:
        obj = self._object(handle)
        fd = obj.map_fd(mem.string(name))
        if fd not in self.maps:
            info = MapInfo.of_fd(fd)
            if info.type in (lib.BPF_MAP_TYPE_PERF_EVENT_ARRAY, lib.BPF_MAP_TYPE_RINGBUF):
                # Set the consumer up now, where a libbpf program calls perf_buffer__new
                # or ring_buffer__new: perf records output before it would be dropped,
                # and the first poll should not pay for mapping a large ring.
                buffer = obj.buffer(fd, self._perf_pages)
                if lib.wbpf_host_add_buffer(self._c_host, handle, fd, buffer.c_buffer):
                    raise HostCallError(errno.ENOMEM, "cannot record the buffer for the poll imports")
            self.maps.hand_out(handle, obj, info)
        return fd

    def prog_fd_by_name(self, mem: GuestMemory, handle: int, name: int) -> int:
        """The fd of a program of one of the guest's objects: the only program fds a
        guest may store in a map (prog array, devmap/cpumap value)."""
        fd = self._object(handle).program_fd(mem.string(name))
        self.maps.hand_out_program(handle, fd)
        return fd

    def iter_read(self, mem: GuestMemory, handle: int, name: int, buf: int, size: int) -> int:
        obj = self._object(handle)
        prog_name = mem.string(name)
        if size <= 0 or size > MAX_ITER_READ:
            raise HostCallError(errno.EINVAL, f"buffer size {size} is out of range")
        mem.check(buf, size)
        data = obj.iter_read(prog_name, size)
        mem.write(buf, data)
        return len(data)

    def num_possible_cpus(self, mem: GuestMemory) -> int:
        n = int(lib.libbpf_num_possible_cpus())
        if n < 0:
            raise HostCallError(-n, "cannot read the number of possible CPUs")
        return n

    def buffer_poll(self, mem: GuestMemory, handle: int, fd: int, sample_func: int, ctx: int,
                    data: int, max_size: int, timeout_ms: int) -> int:
        callback = self._table_function(mem, sample_func)
        return self._poll(mem, handle, fd, callback, f"table entry {sample_func}", ctx, data, max_size, timeout_ms)

    def buffer_poll_batch(self, mem: GuestMemory, handle: int, fd: int, batch_func: int, ctx: int,
                          data: int, max_size: int, timeout_ms: int) -> int:
        callback = self._table_function(mem, batch_func)
        return self._poll(mem, handle, fd, callback, f"table entry {batch_func}", ctx, data, max_size,
                          timeout_ms, batch=True)

    def buffer_poll_export(self, mem: GuestMemory, handle: int, fd: int, ctx: int, data: int,
                           max_size: int, timeout_ms: int) -> int:
        callback = mem.caller.get(self._callback_export)
        return self._poll(mem, handle, fd, callback, f"export {self._callback_export!r}",
                          ctx, data, max_size, timeout_ms)

    def close_object(self, mem: GuestMemory, handle: int) -> int:
        if any(buf.busy for buf in self._object(handle).buffers.values()):
            # A poll callback closing its own object would free the buffer the shim
            # is walking (a crash of the host process, found by tests/test_hostile.py).
            raise HostCallError(errno.EBUSY, f"object {handle:#x} is being polled: close it after the poll returns")
        self._close(handle)
        return 0

    @property
    def polls(self) -> int:
        """The buffer polls the guest has made (the service takes the first as its
        "set up" mark)."""
        return int(lib.wbpf_host_polls(self._c_host))

    # ---- helpers --------------------------------------------------------------------
    def _object(self, handle: int) -> BpfObject:
        obj = self.objects.get(handle)
        if obj is None:
            raise HostCallError(errno.EINVAL, f"unknown object handle {handle:#x}")
        return obj

    def _attach(self, mem: GuestMemory, handle: int, name: int, target: int) -> Link:
        obj = self._object(handle)
        prog_name, target_str = mem.string(name), mem.optional_string(target)
        try:
            return obj.attach(prog_name, target_str)
        except HostCallError as exc:
            raise HostCallError(exc.errno, f"cannot attach program {prog_name!r}: {exc}") from None

    @staticmethod
    def _table_function(mem: GuestMemory, index: int) -> Any:
        table = mem.caller.get("__indirect_function_table")
        if not isinstance(table, wasmtime.Table):
            raise HostCallError(errno.EINVAL, "the module exports no __indirect_function_table "
                                "(link it with -Wl,--export-table)")
        return table.get(mem.caller, index) if index else None

    def _poll(self, mem: GuestMemory, handle: int, fd: int, callback: Any, what: str, ctx: int,
              data: int, max_size: int, timeout_ms: int, batch: bool = False) -> int:
        obj = self._object(handle)
        if self.maps.get(fd).handle != handle:
            raise HostCallError(errno.EBADF, f"map fd {fd} belongs to another object")
        nargs = 4 if batch else 3
        if not isinstance(callback, wasmtime.Func) or not _takes_i32s(callback.type(mem.caller), nargs):
            raise HostCallError(errno.EINVAL, f"{what} is not a function ({', '.join(['i32'] * nargs)}) -> i32")
        if max_size < 0 or (batch and max_size < lib.WBPF_BATCH_MIN_BUFFER):
            raise HostCallError(errno.EINVAL, f"max_size {max_size} is too small")
        mem.check(data, max_size)
        target = PollTarget(mem.caller, mem.memory, callback, ctx & 0xFFFFFFFF, data, max_size, batch,
                            self.call_watch)
        return obj.buffer(fd, self._perf_pages).poll(target, timeout_ms, self._stop_request)

    def _close(self, handle: int) -> None:
        obj = self.objects.pop(handle)
        self._links = {k: v for k, v in self._links.items() if v[0] != handle}
        lib.wbpf_host_forget(self._c_host, handle)  # before its buffers are freed
        self.maps.forget(handle)
        self.buffer_stats.extend(buf.stats(handle) for buf in obj.buffers.values())
        obj.close()

    def close(self) -> None:
        """Closes every object the guest left open (links detached first)."""
        for handle in list(self.objects):
            self._close(handle)

    def live_buffer_stats(self) -> List[BufferStats]:
        """Records delivered and lost per event buffer: the closed objects' and the open ones'."""
        return [*self.buffer_stats,
                *(buf.stats(handle) for handle, obj in list(self.objects.items()) for buf in list(obj.buffers.values()))]

    # ---- binding --------------------------------------------------------------------
    def bind(self, linker: wasmtime.Linker, module: wasmtime.Module, callback_module: str,
             defined: Collection[Tuple[str, str]] = (), wake_fd: int = -1) -> None:
        """Defines every BPF import the module declares; raises WasmBpfError naming an
        import this host does not provide or a declared type it does not accept.
        defined: (module, name) of the imports already defined (host functions);
        wake_fd: a pipe that turns readable on a stop request, which ends a poll's wait."""
        self._stop_request.wake_fd = wake_fd
        table = dict(IMPORTS)
        table[(callback_module, "wasm_bpf_buffer_poll")] = ("buffer_poll_export", (_WRAPPER_POLL,), None, False)
        problems = []
        for imp in module.imports:
            key = (imp.module, imp.name or "")
            if imp.module == WASI_MODULE or key in defined:
                continue
            if key not in table:
                problems.append(f"{imp.module}.{imp.name} is not provided by this host")
                continue
            method, signatures, failure, loud = table[key]
            declared = imp.type
            sig = next((s for s in signatures if isinstance(declared, FuncType)
                        and signature_of(declared) == (s.wasm_params(), [s.result])), None)
            if sig is None:
                accepted = " or ".join(str(s) for s in signatures)
                problems.append(f"{imp.module}.{imp.name} is declared as {describe_type(declared)}, "
                                f"expected a function {accepted}")
                continue
            wrapped = self._wrap(f"{imp.name}", attrgetter(method)(self), sig, failure, loud)
            if method in _C_POLLS:
                self._fallbacks[_C_POLLS[method]] = wrapped
                self._define_c_poll(linker, imp.module, imp.name or "", sig, _C_POLLS[method])
            else:
                linker.define_func(imp.module, imp.name or "", sig.func_type(), wrapped, access_caller=True)
        if problems:
            raise WasmBpfError("the module's imports do not match this host: " + "; ".join(problems))

    def _define_c_poll(self, linker: wasmtime.Linker, module: str, name: str, sig: Signature, kind: int) -> None:
        """Defines a poll import as the shim's host function."""
        functype = sig.func_type()
        error = lib.wbpf_host_define_poll(self._c_host, _c_pointer(linker.ptr()), module.encode(), name.encode(),
                                          _c_pointer(functype.ptr()), kind)
        if error != ffi.NULL:
            raise wasmtime.WasmtimeError._from_ptr(
                ctypes.cast(int(ffi.cast("uintptr_t", error)), ctypes.POINTER(wt_ffi.wasmtime_error_t)))

    def _fallback(self, caller_ptr: Any, kind: int, args: Any) -> int:
        """A poll the shim handed back: its Python implementation, with the raw Wasm
        arguments (obj i64, then i32s) as a host function of wasmtime-py gets them."""
        caller = wasmtime.Caller(ctypes.cast(int(ffi.cast("uintptr_t", caller_ptr)),
                                             ctypes.POINTER(wt_ffi.wasmtime_caller_t)))
        try:
            nargs = 6 if kind == lib.WBPF_POLL_EXPORT else 7
            return self._fallbacks[kind](caller, args[0].i64, *(args[i].i32 for i in range(1, nargs)))
        finally:
            caller._invalidate()

    def _wrap(self, name: str, method: Callable[..., int], sig: Signature, failure: Optional[int],
              loud: bool) -> Callable[..., int]:
        kinds = sig.params

        def host_function(caller: wasmtime.Caller, *raw: int) -> int:
            try:
                args = [_decode(k, v) for k, v in zip(kinds, raw)]
                mem = self._guest_memory(caller)
                result = method(mem, *args)
                self.maps.refresh_mirrors(mem)  # live .bss/.data mirrors the guest asked for
                return result
            except HostCallError as exc:
                if loud or self._verbose or isinstance(exc, LimitError):  # limits always say their flag
                    self._report(f"{name}: {exc}")
                return failure if failure is not None else -to_guest_errno(exc.errno)
            except PolicyRefusal as exc:  # always said: the user decides on the policy
                self._report(str(exc))
                return failure if failure is not None else -to_guest_errno(errno.EPERM)
            except (ValueError, OverflowError, ctypes.ArgumentError) as exc:
                # A guest value Python or C could not take (a number too big for a C int,
                # bytes that are not UTF-8) that no check caught: the guest gets -EINVAL,
                # never a Python exception ending the run (host_abi/ABI.md, Bad input).
                self._report(f"{name}: bad argument ({type(exc).__name__}: {exc})")
                return failure if failure is not None else -to_guest_errno(errno.EINVAL)

        return host_function

    def _guest_memory(self, caller: wasmtime.Caller) -> GuestMemory:
        if self._memory is None:
            memory = caller.get("memory")
            if not isinstance(memory, wasmtime.Memory):
                raise HostCallError(errno.EFAULT, "the module exports no memory named 'memory'")
            self._memory = memory
        self.memory_bytes = self._memory.data_len(caller)
        return GuestMemory(caller, self._memory)


def _c_pointer(ptr: Any) -> Any:
    """A wasmtime-py (ctypes) pointer as a cffi void *."""
    return ffi.cast("void *", ctypes.cast(ptr, ctypes.c_void_p).value or 0)


@ffi.def_extern()
def wbpf_poll_fallback(fallback: Any, caller: Any, kind: int, args: Any) -> Any:
    """The shim's hand-back (shim.h): the i32 result goes to args[0]; whatever ends the
    guest's call (proc_exit in a callback, a trap) becomes the trap returned, its
    exception kept for wasmtime-py to raise where the guest was called, as its own
    host functions do."""
    try:
        args[0].i32 = _HOSTS[int(ffi.cast("uintptr_t", fallback))]._fallback(caller, kind, args)
        return ffi.NULL
    except BaseException as exc:  # noqa: B036 - everything must reach the guest's caller
        wt_func.LAST_EXCEPTION = exc  # type: ignore[assignment]  # as its trampoline does
        trap = wasmtime.Trap("python exception")._consume()
        return ffi.cast("void *", ctypes.cast(trap, ctypes.c_void_p).value or 0)
