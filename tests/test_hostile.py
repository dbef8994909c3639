"""Hostile guests: every row of the "Bad input" table of host_abi/ABI.md that
tests/test_abi.py, tests/test_isolation.py and tests/test_policy.py do not cover.

Each test runs a guest that feeds the host bad input (tests/guests/hostile_guest.c,
one scenario per run, and the tiny tests/guests/hostile_*.wat modules) and checks
  - the guest gets exactly the result the table documents,
  - the host process survives: the same process then runs a normal guest, which
    loads, reads and closes an object as usual (the `unharmed` fixture),
  - nothing leaks: no BPF program or link (the autouse fixture of conftest.py) and
    no file descriptor (the process holds as many as before the test).
The last test checks the table itself: every test it cites exists, and every test
here is cited.
"""
import gc
import os
import re
from pathlib import Path

import pytest

import wasm_bpf
import wasm_bpf.imports
from guests.build import guests
from guests.helpers import (EACCES, EBADF, EBUSY, EFAULT, EILSEQ, EINVAL, ENAMETOOLONG, ENOENT, LIBC_DIR,
                            GuestThread, Trigger, parse)

ROOT = Path(__file__).resolve().parent.parent
ABI_MD = ROOT / "host_abi" / "ABI.md"
E2BIG, ESRCH = 1, 71  # WASI numbering, as the guest sees them
HANDLE_IMPORTS = ("attach", "fd_by_name", "poll", "poll_batch", "wrapper_poll", "attach_link",
                  "iter_read", "prog_fd", "close")
FD_IMPORTS = ("lookup", "update", "batch", "mirror", "submit", "poll", "poll_batch", "wrapper_poll")
NAME_IMPORTS = ("attach", "attach_target", "fd_by_name", "prog_fd", "attach_link", "link_target", "iter_read")


@pytest.fixture(scope="module")
def g():
    return guests()  # a failed build raises BuildError with clang's output


def open_fds() -> int:
    return len(os.listdir("/proc/self/fd"))


def normal_run(g) -> None:
    """A well-behaved guest: loads the ABI object, patches and reads .rodata, closes."""
    res = wasm_bpf.run(str(g["abi"]), ["rodata"], capture_output=True)
    assert res.exit_code == 0, res
    assert parse(res.stdout) == {"offset_ok": 1, "loaded": 1, "lookup": 0, "patched": 1, "close": 0}


@pytest.fixture(scope="module")
def warm(g):
    normal_run(g)  # what a first run opens once (caches) is not counted as a leak


@pytest.fixture
def unharmed(g, warm):
    """After the test: this process still runs a normal guest, and holds no more file
    descriptors than before it."""
    gc.collect()  # what earlier tests left for the collector is not this test's
    before = open_fds()
    yield
    normal_run(g)
    gc.collect()
    assert open_fds() <= before, f"fds: {before} before, {open_fds()} after: {os.listdir('/proc/self/fd')}"


def run_hostile(g, *args, config=None):
    """Runs the hostile guest; returns (exit status, key=value output, host messages)."""
    inst = wasm_bpf.Instance(str(g["hostile"]), [str(a) for a in args], config=config,
                             capture_output=True, report=lambda message: None)
    try:
        status = inst.run()
    finally:
        inst.close()
    return status, parse(inst.stdout), inst.messages


def check(out: dict, expected: dict) -> None:
    """Every deviation from the table at once."""
    bad = {k: (out.get(k, "<missing>"), v) for k, v in expected.items() if out.get(k, "<missing>") != v}
    assert not bad, "got vs expected (ABI.md, Bad input): " + ", ".join(
        f"{k}: got {got} expected {exp}" for k, (got, exp) in bad.items())


# ---------------------------------------------------------------- handles

def test_bad_object_and_link_handles(g, unharmed):
    """Object handles 0, unknown, all-ones and closed, to every import taking one;
    link handles 0, unknown, negative, an object's handle, destroyed, of a closed
    object. Only the loud imports (attach, attach_link, iter_read) print."""
    status, out, messages = run_hostile(g, "handles")
    assert status == 0
    expected = {f"{case}_{imp}": -EINVAL for case in ("zero", "unknown", "ones", "closed") for imp in HANDLE_IMPORTS}
    expected.update({"loaded": 1, "close_closed": 0, "link_ok": 1, "link_zero": -EINVAL, "link_unknown": -EINVAL,
                     "link_neg": -EINVAL, "link_object_handle": -EINVAL, "link_destroy": 0, "link_twice": -EINVAL,
                     "orphan_ok": 1, "close_live": 0, "link_of_closed_object": -EINVAL, "survived": 1})
    check(out, expected)
    assert len(messages) == 4 * 3 and all("unknown object handle" in m for m in messages), messages


def test_another_instances_handles_and_fds(g, unharmed):
    """Another live instance's object handle, link handle and ring buffer fd, to the
    imports tests/test_isolation.py does not try them on; the other instance keeps
    its object, link and records."""
    with Trigger():
        holder = GuestThread(g["isolation"], ["serve", os.getpid(), 2, "none"], "ready",
                             report=lambda message: None)
        try:
            numbers = [holder.out[k] for k in ("handle", "link", "ring_fd")]
            status, out, _ = run_hostile(g, "foreign", *numbers)
        finally:
            held = holder.stop()
    assert status == 0
    check(out, {"attach_link": -EINVAL, "prog_fd": -EINVAL, "poll_batch_handle": -EINVAL,
                "wrapper_poll_handle": -EINVAL, "link_destroy": -EINVAL, "own_loaded": 1,
                "poll_batch_fd": -EBADF, "wrapper_poll_fd": -EBADF, "submit_fd": -EBADF,
                "batch_update_fd": -EBADF, "own_close": 0, "calls": 0})
    assert held["records"] > 0 and held["link_destroy"] == 0 and held["close"] == 0


# -------------------------------------------------------------------- fds

def test_fds_that_are_not_this_instances_map_fds(g, unharmed):
    """The host's stdin/stdout/stderr, -1, INT_MAX, a program fd and a closed object's
    map fd, to every import taking a map fd: -EBADF, and no callback runs. A ring
    buffer of another object of this instance is -EBADF for a poll only."""
    status, out, messages = run_hostile(g, "fds")
    assert status == 0
    expected = {f"{case}_{imp}": -EBADF for case in ("stdin", "stdout", "stderr", "neg", "big", "prog", "closed")
                for imp in FD_IMPORTS}
    expected.update({"loaded": 1, "fds_ok": 1, "close_gone": 0, "other_object_poll": -EBADF,
                     "other_object_poll_batch": -EBADF, "other_object_wrapper_poll": -EBADF,
                     "other_object_own_poll": 0, "close": 0, "close_other": 0, "calls": 0, "survived": 1})
    check(out, expected)
    assert messages == []


# ---------------------------------------------------------------- strings

def test_bad_strings(g, unharmed):
    """Names and attach targets outside memory, at its very end, unterminated, of 8191
    bytes, not UTF-8 (also an overlong NUL), and NULL, which is offset 0 (an ordinary
    offset: empty there, a name once one is put there); the no_load list of
    wasm_load_bpf_object_ex not UTF-8, unterminated, with a negative size."""
    status, out, messages = run_hostile(g, "strings")
    assert status == 0
    results = {"outside": -EFAULT, "at_end": -EFAULT, "unterminated": -EFAULT, "too_long": -ENAMETOOLONG,
               "not_utf8": -EILSEQ, "overlong_nul": -EILSEQ, "null_empty": -ENOENT}
    expected = {f"{case}_{imp}": result for case, result in results.items() for imp in NAME_IMPORTS}
    expected["null_empty_link_target"] = 1  # an empty target is no target: attached
    expected["null_empty_attach_target"] = 0
    expected.update({"loaded": 1, "null_map_name": 1, "null_prog_name": 1, "null_link_name": 1,
                     "null_link_destroy": 0, "no_load_not_utf8": 0,
                     "no_load_unterminated_ok": 1, "no_load_unterminated_attach": -EINVAL,
                     "no_load_unterminated_close": 0, "no_load_negative_size_ok": 1,
                     "no_load_negative_size_attach": 0, "no_load_negative_size_close": 0,
                     "map_name_not_utf8": -EILSEQ, "close": 0, "close_iter": 0, "survived": 1})
    check(out, expected)
    assert any("wasm_load_bpf_object_ex" in m and "utf-8" in m.lower() for m in messages), messages


# ----------------------------------------------------------------- ranges

def test_out_of_range_pointers_and_sizes(g, unharmed):
    """Pointer/length pairs outside memory, wrapping around 4 GiB, negative or too
    small sizes, for the polls, iter_read, map_mirror, user_ringbuf_submit, map_batch
    and map_operate, and ELF images libbpf cannot open."""
    status, out, messages = run_hostile(g, "ranges")
    assert status == 0
    check(out, {
        "loaded": 1,
        "poll_max_neg": -EINVAL, "poll_max_int_min": -EINVAL, "poll_data_wrap": -EFAULT,
        "batch_max_15": -EINVAL, "batch_max_neg": -EINVAL, "batch_data_outside": -EFAULT,
        "batch_data_far": -EFAULT, "wrapper_max_neg": -EINVAL, "wrapper_data_outside": -EFAULT,
        "poll_not_buffer": -EINVAL, "batch_not_buffer": -EINVAL, "wrapper_not_buffer": -EINVAL,
        "iter_len_zero": -EINVAL, "iter_len_neg": -EINVAL, "iter_len_huge": -EINVAL,
        "iter_buf_outside": -EFAULT, "iter_buf_far": -EFAULT, "iter_not_iter": -EINVAL, "iter_no_prog": -ENOENT,
        "mirror_size_neg": -EINVAL, "mirror_size_wrong": -EINVAL, "mirror_outside": -EFAULT,
        "mirror_wrap": -EFAULT, "mirror_not_array": -EINVAL, "mirror_stop_unset": 0,
        "submit_zero": -EINVAL, "submit_neg": -EINVAL, "submit_outside": -EFAULT, "submit_far": -EFAULT,
        "submit_too_big": -E2BIG, "submit_not_user_ring": -EINVAL,
        "batch_count_null": -EFAULT, "batch_count_outside": -EFAULT, "batch_count_huge": -EFAULT,
        "batch_keys_outside": -EFAULT, "batch_values_outside": -EFAULT, "batch_in_outside": -EFAULT,
        "batch_out_outside": -EFAULT, "mapop_key_wrap": -EFAULT,
        "elf_magic_only": 0, "elf_ex_garbage": 0, "elf_ex_outside": 0, "elf_ex_neg": 0, "elf_ex_list_outside": 0,
        "calls": 0, "close": 0, "close_maps": 0, "close_iter": 0, "survived": 1,
    })
    # iter_read (7 bad calls) and the 5 failed loads say why; the quiet imports do not
    assert len(messages) == 12, messages


# ------------------------------------------------------------------- cmds

def test_unknown_commands_and_bad_flags(g, unharmed):
    """Batch commands that are not one of 24..27 (also the single-element ones),
    flags the kernel does not know for map_operate and map_batch; GET_NEXT_KEY
    ignores its flags."""
    status, out, _ = run_hostile(g, "cmds")
    assert status == 0
    check(out, {
        "loaded": 1, **{f"batch_cmd_{c}": -EINVAL for c in (0, 1, 2, 23, 28, 99, 999)},
        "update_bad_flags": -EINVAL, "update_flags_4": -EINVAL, "update_ok": 0, "lookup_bad_flags": -EINVAL,
        "delete_bad_flags": -EINVAL, "next_key_flags_ignored": 0, "batch_bad_elem_flags": -EINVAL,
        "batch_bad_flags": -EINVAL, "batch_lookup_end": -ENOENT, "close": 0, "survived": 1,
    })


# -------------------------------------------------------------- callbacks

def test_bad_callback_indices(g, unharmed):
    """Batch callback indices: NULL, past the table, negative, a record callback, a
    () -> () function; a batch callback as a record callback. A host import of the
    record type is a valid table entry."""
    status, out, _ = run_hostile(g, "callbacks")
    assert status == 0
    check(out, {"loaded": 1, "batch_idx_null": -EINVAL, "batch_idx_huge": -EINVAL, "batch_idx_neg": -EINVAL,
                "batch_idx_record_type": -EINVAL, "batch_idx_void_type": -EINVAL,
                "poll_idx_batch_type": -EINVAL, "poll_idx_host_import": 0, "calls": 0, "close": 0,
                "survived": 1})


@pytest.mark.parametrize("export", ["cb_not_func", "memory", "_start", "__indirect_function_table"],
                         ids=["global", "memory", "wrong-type", "table"])
def test_callback_export_that_is_not_a_record_callback(g, unharmed, export):
    """The callback-wrapper export named by RunConfig.callback_export is a global, the
    memory, a function of another type, a table: -EINVAL."""
    status, out, _ = run_hostile(g, "wrapper", config=wasm_bpf.RunConfig(callback_export=export))
    assert status == 0
    check(out, {"loaded": 1, "wrapper_poll": -EINVAL, "close": 0})


# ---------------------------------------------------------------- reentry

@pytest.mark.parametrize("mode, inner, poll", [
    ("close", -EBUSY, None),  # closing the object being polled: this crashed the host
    ("destroy", 0, None),  # destroying the link that feeds the buffer
    ("batch", -EBUSY, None),  # polling the same buffer again, in batches
    ("wrapper", -EBUSY, None),  # ... through callback-wrapper
    ("load", 0, None),  # loading and closing another object
    ("host_import", 0, -EINVAL),  # the callback is map_mirror: its -EINVAL ends the poll
])
def test_host_calls_from_a_poll_callback(g, unharmed, mode, inner, poll):
    """From inside a record callback the guest calls the host again on the object
    being polled; then it polls once more and closes it normally."""
    with Trigger():
        status, out, _ = run_hostile(g, "reentry", os.getpid(), mode)
    assert status == 0
    check(out, {"arm": 0, "link": 1, "inner": inner, "poll_after": 1, "close": 0})
    if poll is not None:
        assert out["poll"] == poll, out
    else:  # every record already in the ring when the poll starts is delivered: 1 or more
        assert out["poll"] >= 1, out


def test_a_callback_that_grows_the_memory_gets_every_record_intact(g, unharmed):
    """The shim reads the guest memory's base once per poll (the engine never moves a
    memory): callbacks that grow it by 4 MiB per record, per record and in batches,
    still get every record intact and in order, a batch buffer in the grown memory
    works, and a buffer past the new end is refused."""
    with Trigger():
        status, out, _ = run_hostile(g, "grow", os.getpid())
    assert status == 0
    check(out, {"arm": 0, "attach": 0, "buffer_in_grown_memory": 1, "records": 48, "bad": 0, "grow_failed": 0,
                "grew": 1, "past_end": -EFAULT, "batch_past_end": -EFAULT, "close": 0})


# ---------------------------------------------------------- attach targets

@pytest.mark.parametrize("prog, target, result", [
    ("on_uprobe", "libc.so.6:getpid,pid=99999999999999999999", -EINVAL),
    ("on_uprobe", "libc.so.6:getpid+-1", -EINVAL),
    ("on_uprobe", "libc.so.6:0x1ffffffffffffffffff", -EINVAL),
    ("on_usdt", "libc.so.6:prov:name,pid=-99999999999", -EINVAL),
    ("on_kprobe", "__x64_sys_getppid+99999999999999999999999", -EINVAL),
    ("on_perf_event", "cpu-clock,pid=4294967297", -EINVAL),  # not truncated to pid 1
    ("on_perf_event", "cpu-clock,cpu=99999999999", -EINVAL),
    ("on_socket", "99999999999999999999:1", -EINVAL),
    ("on_socket", "1:99999999999999999999", -EINVAL),
    ("on_socket", "self:0", -EINVAL),  # a pid is a number
    ("on_xdp", "lo,mode=bogus", -EINVAL),
])
def test_attach_targets_with_numbers_out_of_range(g, unharmed, prog, target, result):
    """Targets whose numbers do not fit the C types the kernel takes: these escaped as
    Python exceptions (OverflowError) and ended the run, or were truncated."""
    config = wasm_bpf.RunConfig(dirs=[(LIBC_DIR, LIBC_DIR)])
    status, out, messages = run_hostile(g, "target", prog, target, config=config)
    assert status == 0
    check(out, {"loaded": 1, "attach": result, "attach_link": result, "close": 0})
    assert len(messages) == 2 and "bad argument" not in " ".join(messages), messages


def test_a_socket_target_naming_a_host_fd_that_was_not_handed_over(g, unharmed):
    """PID:FD with the host's own pid and its stdin: refused as not handed to the
    module, before anything (even whether it is a socket) is said about the fd."""
    status, out, _ = run_hostile(g, "target", "on_socket", f"{os.getpid()}:0")
    assert status == 0
    check(out, {"loaded": 1, "attach": -EACCES, "attach_link": -EACCES, "close": 0})


# ---------------------------------------------------------------- modules

@pytest.mark.parametrize("guest, status, message", [
    ("hostile_no_memory", EFAULT, "exports no memory named 'memory'"),
    ("hostile_memory_global", EFAULT, "exports no memory named 'memory'"),
    ("hostile_no_table", EINVAL, "exports no __indirect_function_table"),
    ("hostile_start_section", EINVAL, "unknown object handle 0x1"),
    ("hostile_start_params", 1, "the guest trapped: too few parameters"),
    ("hostile_instantiate_trap", 1, "the guest trapped: out of bounds memory access"),
])
def test_modules_of_a_bad_shape_run_and_end(g, unharmed, guest, status, message):
    """Modules without memory or table, calling the host from their start function,
    with a _start that cannot be called, trapping while instantiated: the documented status and message (these guests exit
    with -result)."""
    inst = wasm_bpf.Instance(str(g[guest]), config=wasm_bpf.RunConfig(verbose=True), capture_output=True,
                             report=lambda m: None)
    with inst:
        assert inst.run() == status, inst.messages
    assert any(m.startswith(message) or message in m for m in inst.messages), inst.messages


@pytest.mark.parametrize("guest, names", [
    ("hostile_no_start", ["no _start export"]),
    ("hostile_start_global", ["no _start export"]),
    ("hostile_import_kinds", ["wasm_close_bpf_object is declared as a global",
                              "wasm_bpf_num_possible_cpus is declared as a memory"]),
    ("hostile_unknown_wasi", ["wasi_snapshot_preview1.no_such_function is not provided by this host"]),
    ("hostile_wasi_wrongtype", ["wasi_snapshot_preview1.", "is declared as (", "WASI's is ("]),
])
def test_modules_that_cannot_start_are_a_clear_error(g, unharmed, guest, names):
    """No _start (or one that is no function), host imports that are no functions,
    WASI imports that do not exist or fit:
    WasmBpfError with a one-line message naming the problem, before any guest code."""
    with pytest.raises(wasm_bpf.WasmBpfError) as exc:
        wasm_bpf.run(str(g[guest]), capture_output=True)
    message = str(exc.value)
    assert "\n" not in message and "object at 0x" not in message, message
    for name in names:
        assert name in message, message


@pytest.mark.parametrize("source", [
    b"(module (func (export \"_start\") (result i32)))",  # parses, does not validate
    b"(module (func (export \"_start\")",  # WAT cut short
    b"\0asm\x01\0\0\0\x01\x05\x01\x60\x00",  # a section cut short
    b"\0asm\x02\0\0\0",  # an unknown version
], ids=["invalid", "wat-cut", "section-cut", "version"])
def test_malformed_wasm_is_a_clear_error(unharmed, source):
    with pytest.raises(wasm_bpf.WasmBpfError) as exc:
        wasm_bpf.run(source, capture_output=True)
    assert str(exc.value).strip() and "\n" not in str(exc.value).strip()


def test_an_unforeseen_conversion_error_is_an_error_return(unharmed, monkeypatch):
    """The safety net: a guest value some check missed and Python or C could not take
    (OverflowError, ValueError, a ctypes argument error) gives the guest -EINVAL and
    one line, never a Python exception ending the run."""
    def overflowing(self, mem):
        raise OverflowError("int too big to convert")

    monkeypatch.setattr(wasm_bpf.imports.WasmBpfHost, "num_possible_cpus", overflowing)
    wat = b"""(module
      (import "wasm_bpf_ext" "wasm_bpf_num_possible_cpus" (func $cpus (result i32)))
      (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
      (memory (export "memory") 1)
      (func (export "_start") (call $exit (i32.sub (i32.const 0) (call $cpus)))))"""
    with wasm_bpf.Instance(wat, capture_output=True, report=lambda m: None) as inst:
        assert inst.run() == EINVAL
    assert inst.messages == ["wasm_bpf_num_possible_cpus: bad argument (OverflowError: int too big to convert)"]


# ------------------------------------------------------------------ table

def _table_rows() -> list:
    text = ABI_MD.read_text()
    section = text.split("\n## Bad input\n", 1)[1].split("\n## ", 1)[0]
    return [line for line in section.splitlines() if line.startswith("| ") and not line.startswith("| import")]


@pytest.mark.unit
def test_the_bad_input_table_cites_tests_that_exist_and_every_test_here():
    rows = _table_rows()
    assert len(rows) > 100
    cited = set()
    for row in rows:
        cells = [c.strip() for c in re.split(r"(?<!\\)\|", row.strip().strip("|"))]
        assert len(cells) == 5, row
        for file, name in re.findall(r"(tests/test_\w+\.py)::(test_\w+)", cells[4]):
            assert re.search(rf"^def {name}\(", (ROOT / file).read_text(), re.M), f"{file}::{name} (in {row})"
            cited.add((file, name))
        assert re.search(r"tests/test_\w+\.py::test_\w+", cells[4]), f"no test cited: {row}"
    here = re.findall(r"^def (test_\w+)\(", Path(__file__).read_text(), re.M)
    missing = [t for t in here if ("tests/test_hostile.py", t) not in cited
               and t != "test_the_bad_input_table_cites_tests_that_exist_and_every_test_here"]
    assert not missing, f"tests of this file the table does not cite: {missing}"
