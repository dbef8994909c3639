"""Host functions written in Python that a guest imports: how a guest hands records,
requests or results to the embedding application.

    @wasm_bpf.host_function(params=["i32", "i32"], results=["i32"], memory=True)
    def record(mem, ptr, size):
        seen.append(mem.read(ptr, size))
        return 0

    config = wasm_bpf.RunConfig(host_functions={"app": {"record": record}})

The guest declares `__attribute__((import_module("app"), import_name("record")))`.
Its declared type must be the one given here, or the run does not start. A guest
pointer is read only through `mem` (GuestMemory: bounds-checked, an out-of-range
access is a trap). An exception in the function ends the guest with a trap and a
one-line message; it never reaches the host's caller. A host function runs in the
guest's thread, so its CPU time counts against the guest's limits; when a limit, the
timeout or stop() ends the guest while a host function runs, the function is
interrupted at its next Python instruction (Calls.interrupt)."""
from __future__ import annotations

import ctypes
import threading
from dataclasses import dataclass
from typing import Any, Callable, Dict, List, Mapping, Optional, Sequence, Set, Tuple

import wasmtime

from .errors import WasmBpfError
from .guest_memory import GuestMemory

VALUE_TYPES = {"i32": wasmtime.ValType.i32, "i64": wasmtime.ValType.i64,
               "f32": wasmtime.ValType.f32, "f64": wasmtime.ValType.f64}


@dataclass(frozen=True)
class HostFunction:
    """A Python callable with the Wasm type a guest imports it with. memory=True:
    the callable's first argument is the guest's memory (GuestMemory)."""

    func: Callable[..., Any]
    params: Tuple[str, ...] = ()
    results: Tuple[str, ...] = ()
    memory: bool = False

    def __post_init__(self) -> None:
        bad = [t for t in (*self.params, *self.results) if t not in VALUE_TYPES]
        if bad:
            raise WasmBpfError(f"host function {getattr(self.func, '__name__', self.func)!r}: {bad[0]!r} "
                               f"is not a Wasm value type ({', '.join(VALUE_TYPES)})")
        if len(self.results) > 1:
            raise WasmBpfError("a host function returns at most one value")

    def __call__(self, *args: Any) -> Any:  # still callable from Python
        return self.func(*args)

    @property
    def func_type(self) -> wasmtime.FuncType:
        return wasmtime.FuncType([VALUE_TYPES[t]() for t in self.params], [VALUE_TYPES[t]() for t in self.results])


def host_function(params: Sequence[str] = (), results: Sequence[str] = (),
                  memory: bool = False) -> Callable[[Callable[..., Any]], HostFunction]:
    """A decorator: the function, typed for a guest's import."""
    def wrap(func: Callable[..., Any]) -> HostFunction:
        return HostFunction(func, tuple(params), tuple(results), memory)
    return wrap


HostFunctions = Mapping[str, Mapping[str, HostFunction]]  # module -> name -> function


class Interrupted(BaseException):
    """Raised inside a running host function when its guest is ended (a BaseException,
    so that the function's own `except Exception` does not swallow it)."""


class Calls:
    """Which thread runs one instance's Python host function now, so that ending the
    guest can end a function that does not return: the watchdog's engine interrupt
    only acts at the next Wasm instruction. The interrupt is an asynchronous exception
    (PyThreadState_SetAsyncExc): raised at the function's next Python instruction, not
    inside a blocking C call (time.sleep, a read), which it follows."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._thread: Optional[int] = None
        self._interrupted = False  # at most one exception is sent: it ends the guest

    def enter(self) -> None:
        with self._lock:
            if self._interrupted:
                raise Interrupted()
            self._thread = threading.get_ident()

    def leave(self) -> None:
        with self._lock:
            if self._thread is not None and self._interrupted:  # sent, maybe not raised yet: withdrawn
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._thread), None)
            self._thread = None

    def interrupt(self) -> None:
        with self._lock:
            if self._interrupted:
                return
            self._interrupted = True
            if self._thread is not None:
                ctypes.pythonapi.PyThreadState_SetAsyncExc(ctypes.c_ulong(self._thread), ctypes.py_object(Interrupted))


def define(linker: wasmtime.Linker, module: wasmtime.Module, functions: HostFunctions,
           report: Callable[[str], None], calls: Calls) -> Set[Tuple[str, str]]:
    """Defines the host functions the module imports; returns their (module, name).
    A declared type other than the function's is refused before the run. calls
    tracks them running (for the instance's interrupt)."""
    defined: Set[Tuple[str, str]] = set()
    problems: List[str] = []
    for imp in module.imports:
        fn = functions.get(imp.module, {}).get(imp.name or "")
        if fn is None:
            continue
        declared = imp.type
        if not isinstance(declared, wasmtime.FuncType) or _types(declared) != (fn.params, fn.results):
            problems.append(f"{imp.module}.{imp.name} is declared as {_describe(declared)}, "
                            f"the host function takes ({', '.join(fn.params)}) -> {', '.join(fn.results) or '()'}")
            continue
        linker.define_func(imp.module, imp.name or "", fn.func_type,
                           _wrapped(f"{imp.module}.{imp.name}", fn, report, calls), access_caller=True)
        defined.add((imp.module, imp.name or ""))
    if problems:
        raise WasmBpfError("the module's imports do not match the host functions: " + "; ".join(problems))
    return defined


def _types(ty: wasmtime.FuncType) -> Tuple[Tuple[str, ...], Tuple[str, ...]]:
    return tuple(str(t) for t in ty.params), tuple(str(t) for t in ty.results)


def _describe(ty: Any) -> str:
    if isinstance(ty, wasmtime.FuncType):
        params, results = _types(ty)
        return f"({', '.join(params)}) -> {', '.join(results) or '()'}"
    return "a " + type(ty).__name__.removesuffix("Type").lower()


def _wrapped(name: str, fn: HostFunction, report: Callable[[str], None], calls: Calls) -> Callable[..., Any]:
    memories: Dict[str, wasmtime.Memory] = {}

    def call(caller: wasmtime.Caller, *args: Any) -> Any:
        try:
            calls.enter()
            try:
                if fn.memory:
                    if "memory" not in memories:
                        memory = caller.get("memory")
                        if not isinstance(memory, wasmtime.Memory):
                            raise WasmBpfError("the module exports no memory named 'memory'")
                        memories["memory"] = memory
                    result = fn.func(GuestMemory(caller, memories["memory"]), *args)
                else:
                    result = fn.func(*args)
            finally:
                calls.leave()
            if fn.results and not isinstance(result, (int, float)):
                raise WasmBpfError(f"returned {result!r}, not a {fn.results[0]}")
            return result if fn.results else None
        except Interrupted:  # the instance reports why it ended the guest (limit, timeout, stop)
            calls.leave()  # again: the exception may have been raised inside leave() itself
            raise wasmtime.Trap(f"host function {name} interrupted") from None
        except Exception as exc:  # the guest traps; the application's own run() sees no exception
            message = f"host function {name}: {type(exc).__name__}: {exc}"
            report(message)
            raise wasmtime.Trap(message) from None

    return call
