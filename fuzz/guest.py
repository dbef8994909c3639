"""The fuzzing guest: a WAT module that imports every import of the host (all of
imports.IMPORTS, plus the callback-wrapper poll) and exports a thin wrapper
`call:<module>:<name>` for each, so Python can call any import with any integers
through the real guest path (wasmtime -> the host's bound function -> the guest's memory).

It is generated from the IMPORTS table so a new import is fuzzed without touching
this file. `variant` picks the alternative declared types (map_operate with i64
pointers): one module cannot import the same name with two types."""
from typing import Dict, List, Tuple

import wasmtime

from wasm_bpf.imports import IMPORTS

CALLBACK_MODULE = "callback-wrapper"
WRAPPER_POLL = (["i64", "i32", "i32", "i32", "i32", "i32"], "i32")

# Table entries a poll's sample_func / batch_func may name (0 is NULL).
CB_RECORD, CB_BATCH, CB_STOP, CB_WRONG_TYPE, CB_TRAP, CB_GROW, CB_REENTER = range(1, 8)
TABLE_SIZE = 8
MEMORY_PAGES, MEMORY_MAX_PAGES = 4, 64


def imports(variant: int = 0) -> Dict[Tuple[str, str], Tuple[List[str], str]]:
    """(module, name) -> (param types, result type) of the guest built for `variant`."""
    out = {}
    for (module, name), (_, sigs, _, _) in IMPORTS.items():
        sig = sigs[min(variant, len(sigs) - 1)]
        out[(module, name)] = (sig.wasm_params(), sig.result)
    out[(CALLBACK_MODULE, "wasm_bpf_buffer_poll")] = WRAPPER_POLL
    return out


def export_name(module: str, name: str) -> str:
    return f"call:{module}:{name}"


def wat(variant: int = 0) -> str:
    decls, wrappers = [], []
    for i, ((module, name), (params, result)) in enumerate(sorted(imports(variant).items())):
        p = " ".join(params)
        decls.append(f'  (import "{module}" "{name}" (func $imp{i} (param {p}) (result {result})))'
                     if params else f'  (import "{module}" "{name}" (func $imp{i} (result {result})))')
        args = " ".join(f"(local.get {j})" for j in range(len(params)))
        wrappers.append(f'  (func (export "{export_name(module, name)}") {"(param " + p + ")" if p else ""} '
                        f'(result {result}) (call $imp{i} {args}))')
    poll = next(i for i, key in enumerate(sorted(imports(variant))) if key == ("wasm_bpf", "wasm_bpf_buffer_poll"))
    return "\n".join([
        "(module",
        *decls,
        f'  (memory (export "memory") {MEMORY_PAGES} {MEMORY_MAX_PAGES})',
        f'  (table (export "__indirect_function_table") {TABLE_SIZE} funcref)',
        "  (elem (i32.const 1) $cb_record $cb_batch $cb_stop $cb_wrong $cb_trap $cb_grow $cb_reenter)",
        "  (global $re_obj (mut i64) (i64.const 0))",
        "  (global $re_fd (mut i32) (i32.const 0))",
        "  (global $calls (mut i32) (i32.const 0))",
        # Record callbacks: the ordinary one, one that stops the poll, one of the wrong
        # type, one that traps, one that grows memory under the host's feet, and one
        # that polls again from inside the poll (-EBUSY).
        "  (func $cb_record (param i32 i32 i32) (result i32)"
        " (global.set $calls (i32.add (global.get $calls) (i32.const 1))) (i32.const 0))",
        "  (func $cb_batch (param i32 i32 i32 i32) (result i32) (i32.const 0))",
        "  (func $cb_stop (param i32 i32 i32) (result i32) (i32.const -5))",
        "  (func $cb_wrong (param i32) (result i32) (i32.const 0))",
        "  (func $cb_trap (param i32 i32 i32) (result i32) (unreachable))",
        "  (func $cb_grow (param i32 i32 i32) (result i32) (drop (memory.grow (i32.const 1))) (i32.const 0))",
        f"  (func $cb_reenter (param i32 i32 i32) (result i32) (call $imp{poll} (global.get $re_obj)"
        " (global.get $re_fd) (i32.const 1) (i32.const 0) (i32.const 0) (i32.const 64) (i32.const 0)))",
        '  (func (export "go-callback") (param i32 i32 i32) (result i32) (i32.const 0))',
        '  (func (export "set_reenter") (param i64 i32) (global.set $re_obj (local.get 0))'
        " (global.set $re_fd (local.get 1)))",
        '  (func (export "callbacks") (result i32) (global.get $calls))',
        '  (func (export "grow") (param i32) (result i32) (memory.grow (local.get 0)))',
        '  (func (export "_start"))',
        *wrappers,
        ")",
    ]) + "\n"


def module_bytes(variant: int = 0) -> bytes:
    return wasmtime.wat2wasm(wat(variant))
