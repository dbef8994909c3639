"""Edge cases of the host ABI (host_abi/ABI.md), exercised by purpose-built guests.

The guests (tests/guests/) print the raw value of every host call as key=value
lines; each test compares them with what ABI.md documents, and the autouse
no_bpf_leaks fixture (conftest.py) checks that no program or link survives.
Events come from a tracepoint on getppid() filtered by this process's pid: the
guest arms the program through its .bss and the test calls os.getppid() from a
thread while the guest polls.
"""
import ctypes
import os
import threading
import time

import pytest

import wasm_bpf
from conftest import bpf_link_ids, bpf_program_ids, held_bpf_ids
from guests.build import guests
from guests.helpers import (EBADF, EBUSY, EEXIST, EFAULT, EILSEQ, EINTR, EINVAL, ENAMETOOLONG,
                           ENODEV, ENOENT, Trigger, parse, wait_until)
from wasm_bpf._shim import ffi, lib


# ---------------------------------------------------------------- helpers

@pytest.fixture(scope="module")
def g():
    return guests()


def run_guest(path, *args, config=None):
    res = wasm_bpf.run(str(path), [str(a) for a in args], config=config, capture_output=True)
    return res, parse(res.stdout)


def check(out: dict, expected: dict):
    """All mismatches at once, so one run reports every deviation from ABI.md."""
    bad = {k: (out.get(k, "<missing>"), v) for k, v in expected.items() if out.get(k, "<missing>") != v}
    assert not bad, "got vs expected (ABI.md): " + ", ".join(
        f"{k}: got {got} expected {exp}" for k, (got, exp) in bad.items())


class Background:
    """Instance.run() in a thread."""

    def __init__(self, path, args, config=None):
        self.inst = wasm_bpf.Instance(str(path), [str(a) for a in args], config=config,
                                      capture_output=True)
        self.code = None
        self.error = None
        self.ended_at = None
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self):
        try:
            self.code = self.inst.run()
        except BaseException as exc:  # reported by join()
            self.error = exc
        self.ended_at = time.monotonic()

    def start(self):
        self._thread.start()
        return self

    def join(self, timeout=10):
        self._thread.join(timeout)
        assert not self._thread.is_alive(), "the guest did not end"
        self.inst.close()
        if self.error:
            raise self.error
        return self.code

    @property
    def out(self):
        return parse(self.inst.stdout)


def nothing_left(before, timeout=0.3):
    """No BPF program or link held by this process beyond those of `before`
    (= held_bpf_ids() taken earlier), waiting up to `timeout`."""
    return wait_until(lambda: not (held_bpf_ids()[0] - before[0])
                      and not (held_bpf_ids()[1] - before[1]), timeout)


def possible_cpus() -> int:
    return lib.libbpf_num_possible_cpus()


# ------------------------------------------------------------------- load

def test_load_failures_return_zero_and_valid_loads_give_distinct_handles(g, capfd):
    res, out = run_guest(g["abi"], "load")
    assert res.exit_code == 0, res
    failures = ["zero_size", "neg_size", "int_min_size", "past_end", "outside", "wrap",
                "garbage", "truncated", "header_only", "bad_machine", "bad_shoff",
                "verifier_reject"]
    check(out, {**{k: 0 for k in failures},
                "h1_nonzero": 1, "h2_nonzero": 1, "distinct": 1, "h1_attach": 0,
                "h1_fd": 1, "close1": 0, "close2": 0, "h3_new": 1, "close3": 0,
                "survived": 1})
    # "The reason is printed to stderr as one line" per failed load (no -v).
    host_lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert len(host_lines) == len(failures), host_lines


def test_load_ex_skips_named_programs(g):
    res, out = run_guest(g["abi"], "loadex")
    assert res.exit_code == 0, res
    check(out, {
        "one_loaded": 1, "one_attach_skipped": -EINVAL, "one_attach_loaded": 0, "one_close": 0,
        "two_loaded": 1, "two_attach_tp": -EINVAL, "two_attach_xdp": -EINVAL, "two_map_fd": 1,
        "two_close": 0, "unknown_name": 0, "list_outside": 0,
        "empty_list_loaded": 1, "empty_list_attach": 0, "empty_list_close": 0,
        "zero_size": 0, "survived": 1,
    })


def test_rodata_patched_before_load(g):
    res, out = run_guest(g["abi"], "rodata")
    assert res.exit_code == 0, res
    check(out, {"offset_ok": 1, "loaded": 1, "lookup": 0, "patched": 1, "close": 0})


# ----------------------------------------------------------------- attach

def test_attach_errors(g):
    res, out = run_guest(g["abi"], "attach")
    assert res.exit_code == 0, res
    check(out, {
        "loaded": 1, "closed_close": 0,
        "unknown_handle": -EINVAL, "zero_handle": -EINVAL, "closed_handle": -EINVAL,
        "unknown_prog": -ENOENT, "empty_name": -ENOENT,
        "name_outside": -EFAULT, "name_at_end": -EFAULT, "name_huge": -EFAULT,
        "name_unterminated": -EFAULT, "name_too_long": -ENAMETOOLONG,
        "name_not_utf8": -EILSEQ, "name_4096_with_nul": -ENOENT,
        "name_4097_with_nul": -ENAMETOOLONG, "map_name_too_long": -ENAMETOOLONG,
        "target_too_long": -ENAMETOOLONG, "target_not_utf8": -EILSEQ, "target_outside": -EFAULT, "target_unterminated": -EFAULT,
        "tp_with_target": -EINVAL, "xdp_nodev": -ENODEV,
        "tp_null": 0, "tp_empty": 0, "xdp_lo": 0,
        "close_h": 0, "close_h2": 0, "survived": 1,
    })


# --------------------------------------------------------- map_fd_by_name

def test_map_fd_by_name(g):
    res, out = run_guest(g["abi"], "fdname")
    assert res.exit_code == 0, res
    check(out, {
        "unknown": -ENOENT, "kconfig_absent": -ENOENT, "bad_handle": -EINVAL,
        "name_outside": -EFAULT, "name_unterminated": -EFAULT,
        "exact_ok": 1, "exact_distinct": 1, "same_twice": 1,
        # suffix resolution finds the right section: contents checked
        "bss_fd_ok": 1, "bss_lookup": 0, "bss_zero": 1,
        "data_fd_ok": 1, "data_lookup": 0, "data_magic": 1,
        "rodata_fd_ok": 1, "rodata_lookup": 0, "rodata_magic": 1,
        "skeleton_name": 1, "close": 0, "survived": 1,
    })


# ------------------------------------------------------------ map_operate

def test_map_operate(g):
    ncpus = possible_cpus()
    res, out = run_guest(g["abi"], "mapop", ncpus)
    assert res.exit_code == 0, res
    check(out, {
        "fds_ok": 1, "close_h2": 0,
        "fd_0": -EBADF, "fd_1": -EBADF, "fd_2": -EBADF, "fd_9999": -EBADF, "fd_neg": -EBADF,
        "fd_closed_obj": -EBADF, "fd_closed_obj_update": -EBADF,
        "cmd_0": -EINVAL, "cmd_5": -EINVAL, "cmd_99": -EINVAL, "cmd_neg": -EINVAL,
        "lookup_missing": -ENOENT, "delete_missing": -ENOENT,
        "key_null_lookup": -EFAULT, "key_null_update": -EFAULT, "key_null_delete": -EFAULT,
        "key_straddles_end": -EFAULT, "key_outside": -EFAULT, "key_huge": -EFAULT,
        "value_straddles_end": -EFAULT, "value_outside_update": -EFAULT,
        "next_key_outside": -EFAULT,
        "value_exact_end_update": 0, "roundtrip_end_lookup": 0, "roundtrip_end_value": 1,
        "update": 0, "lookup": 0, "roundtrip": 1,
        "update_noexist_existing": -EEXIST, "update_exist_missing": -ENOENT,
        "delete": 0, "lookup_deleted": -ENOENT,
        "next_first": 0, "next_end": -ENOENT, "next_count": 7, "next_all_once": 1,
        "next_from_missing": 0,
        "pcpu_update": 0, "pcpu_lookup": 0, "pcpu_values": 1, "pcpu_guard": 1,
        "pcpu_end_exact": 0, "pcpu_end_exact_value": 1,
        "pcpu_end_short8": -EFAULT, "pcpu_end_unrounded": -EFAULT, "pcpu_end_short1": -EFAULT,
        "pcpu_update_short": -EFAULT, "pcpu_bad_index": -ENOENT,
        "close": 0, "survived": 1,
    })


def test_map_operate_i64_pointer_variant(g):
    res, out = run_guest(g["mapop64"])
    assert res.exit_code == 0, res
    check(out, {
        "fd_ok": 1, "fd_9999": -EBADF, "fd_0": -EBADF, "cmd_77": -EINVAL,
        "lookup_missing": -ENOENT, "key_null": -EFAULT, "key_outside": -EFAULT,
        "key_above_4g": -EFAULT, "value_above_4g": -EFAULT,
        "update": 0, "update_noexist": -EEXIST, "lookup": 0, "roundtrip": 1,
        "next_first": 0, "next_end": -ENOENT, "next_count": 2,
        "next_mask": (1 << 3) | (1 << 8),
        "delete": 0, "lookup_deleted": -ENOENT, "close": 0, "after_close": -EBADF,
        "EBADF": EBADF,
    })


def _bpf_map_create_hash() -> int:
    libbpf = ctypes.CDLL("libbpf.so.1", use_errno=True)
    libbpf.bpf_map_create.restype = ctypes.c_int
    libbpf.bpf_map_create.argtypes = [ctypes.c_int, ctypes.c_char_p, ctypes.c_uint32,
                                      ctypes.c_uint32, ctypes.c_uint32, ctypes.c_void_p]
    fd = libbpf.bpf_map_create(1, b"abi_test_map", 4, 8, 8, None)  # BPF_MAP_TYPE_HASH
    assert fd >= 0, f"bpf_map_create: {fd}"
    return fd


def test_map_operate_refuses_fds_of_other_instances_and_of_the_host(g, tmp_path):
    """An fd another live instance got, a BPF map fd the host process holds and a
    plain file fd of the host: all -EBADF, and none of them is touched; the other
    instance's object handle is unknown here (-EINVAL) and its object survives."""
    host_map = _bpf_map_create_hash()
    key, val = ffi.new("uint32_t *", 5), ffi.new("uint64_t *", 1234)
    assert lib.bpf_map_update_elem(host_map, key, val, 0) == 0
    plain = os.open(tmp_path, os.O_RDONLY)
    cfg = wasm_bpf.RunConfig(dirs=[(str(tmp_path), "/sync")])
    holder = Background(g["abi"], ["holdfd", "/sync"], cfg).start()
    try:
        assert wait_until(lambda: (tmp_path / "fd").exists(), 10), "holder did not start"
        other_fd = int((tmp_path / "fd").read_text())
        other_handle = int((tmp_path / "handle").read_text())
        res, out = run_guest(g["abi"], "foreignfd", other_fd, host_map, plain, f"h{other_handle}")
    finally:
        (tmp_path / "go").touch()
        code = holder.join()
        os.close(plain)
    try:
        check(out, {f"{op}_{fd}": -EBADF for fd in (other_fd, host_map, plain)
                    for op in ("lookup", "update", "next")})
        check(out, {"value_untouched": 1, "own_update": 0, "own_lookup": 0, "close": 0,
                    # object handles are local to an instance too
                    "handle_attach": -EINVAL, "handle_fd": -EINVAL, "handle_close": -EINVAL})
        assert res.exit_code == 0
        # the holder's map still has its own value, the host map its own
        assert code == 0
        check(holder.out, {"attach": 0, "update": 0, "lookup_own": 0, "own_value": 55})
        val[0] = 0
        assert lib.bpf_map_lookup_elem_flags(host_map, key, val, 0) == 0 and val[0] == 1234
    finally:
        os.close(host_map)


# ------------------------------------------------------------ buffer_poll

def test_poll_errors_and_timeouts(g):
    res, out = run_guest(g["abi"], "pollerr")
    assert res.exit_code == 0, res
    check(out, {
        "fds_ok": 1, "fd_9999": -EBADF, "fd_0": -EBADF, "fd_other_object": -EBADF,
        "bad_handle": -EINVAL, "zero_handle": -EINVAL, "hash_map": -EINVAL,
        "data_outside": -EFAULT, "data_far": -EFAULT,
        "idx_huge": -EINVAL, "idx_neg": -EINVAL, "idx_null": -EINVAL,
        "idx_wrong_type": -EINVAL, "idx_void_type": -EINVAL,
        "perf_idx_null": -EINVAL, "perf_data_outside": -EFAULT,
        "ring_t0": 0, "perf_t0": 0, "ring_t200": 0, "perf_t200": 0, "calls": 0,
        "close": 0, "close2": 0, "after_close": -EINVAL, "survived": 1,
    })
    assert out["ring_t0_ms"] < 100 and out["perf_t0_ms"] < 100, out
    assert 150 <= out["ring_t200_ms"] < 1000, out
    assert 150 <= out["perf_t200_ms"] < 1000, out


def test_poll_delivers_every_record_of_ring_and_perf_buffers(g):
    n = 40
    with Trigger():
        res, out = run_guest(g["abi"], "pollall", os.getpid(), n)
    assert res.exit_code == 0, res
    check(out, {
        "perf_prime": 0, "arm": 0, "attach": 0, "wait_sent": 0, "sent_ring": n, "sent_perf": n,
        # all n were queued before the first poll: one poll delivers them all
        "ring_count": n, "ring_sum": n, "ring_maxpoll": n, "ring_errs": 0, "ring_bad": 0,
        "ring_size": 64, "ring_inorder": 1, "ring_extra": 0,
        "perf_count": n, "perf_sum": n, "perf_maxpoll": n, "perf_errs": 0, "perf_bad": 0,
        "perf_size_ge": 1, "perf_unique": 1, "perf_extra": 0, "close": 0,
    })


def test_poll_with_negative_timeout_returns_when_a_record_arrives(g):
    with Trigger():
        res, out = run_guest(g["abi"], "pollblock", os.getpid())
    assert res.exit_code == 0, res
    check(out, {"arm": 0, "attach": 0, "poll": 1, "calls": 1, "bad": 0, "close": 0})
    assert out["poll_ms"] < 2000


def test_poll_passes_truncated_size(g):
    with Trigger():
        res, out = run_guest(g["abi"], "polltrunc", os.getpid())
    assert res.exit_code == 0, res
    # *_bad == 0: size <= max_size, and nothing written past data + max_size
    check(out, {"perf_prime": 0, "arm": 0, "attach": 0, "wait_sent": 0,
                "ring_count": 3, "ring_sum": 3, "ring_bad": 0, "ring_size": 16, "ring_prefix": 1,
                "perf_count": 3, "perf_sum": 3, "perf_bad": 0, "perf_size": 16, "perf_prefix": 1,
                "close": 0})


def test_poll_negative_callback_result_stops_and_keeps_the_rest(g):
    with Trigger():
        res, out = run_guest(g["abi"], "pollstop", os.getpid())
    assert res.exit_code == 0, res
    check(out, {
        "perf_prime": 0, "arm": 0, "attach": 0, "wait_sent": 0,
        "ring_p1": -1, "ring_p1_calls": 2, "ring_p2": 3, "ring_p2_calls": 5, "ring_p3": 0,
        **{f"ring_seq{i}": i for i in range(5)},
        "perf_p1": -7, "perf_p1_calls": 2, "perf_p2": 3, "perf_p2_calls": 5, "perf_p3": 0,
        "perf_seen_mask": 0b11111, "close": 0,
    })


def test_poll_from_its_own_callback_is_ebusy(g):
    with Trigger():
        res, out = run_guest(g["abi"], "pollbusy", os.getpid())
    assert res.exit_code == 0, res
    check(out, {"arm": 0, "attach": 0, "wait_sent": 0, "poll": 1, "inner": -EBUSY,
                "calls": 1, "close": 0})


def test_callback_trap_ends_the_run_with_status_1(g, capfd):
    before = held_bpf_ids()
    with Trigger():
        res, out = run_guest(g["abi"], "pollcb", os.getpid(), "trap")
    assert res.exit_code == 1, res
    check(out, {"arm": 0, "attach": 0, "wait_sent": 0})
    assert "returned" not in out
    host_lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    assert len(host_lines) == 1, host_lines
    assert nothing_left(before), "BPF programs/links left after the trap"


def test_callback_calling_exit_sets_the_status(g):
    before = held_bpf_ids()
    with Trigger():
        res, out = run_guest(g["abi"], "pollcb", os.getpid(), "exit")
    assert res.exit_code == 7, res
    assert "returned" not in out
    assert nothing_left(before)


def test_callback_wrapper_poll(g):
    n = 20
    with Trigger():
        res, out = run_guest(g["cbwrap"], os.getpid(), n)
    assert res.exit_code == 0, res
    check(out, {"arm": 0, "bad_fd": -EBADF, "bad_handle": -EINVAL, "data_outside": -EFAULT,
                "attach": 0, "calls": n, "sum": n, "bad": 0, "close": 0})
    assert "poll_error" not in out


def test_callback_wrapper_without_export_is_einval(g):
    res, out = run_guest(g["cbwrap_noexport"], os.getpid(), 5)
    assert res.exit_code == 0, res
    check(out, {"arm": 0, "attach": 0, "poll_error": -EINVAL, "calls": 0, "close": 0})


def test_callback_wrapper_with_wrongly_typed_export_is_einval(g):
    res, out = run_guest(g["cbwrap_wrongtype"], os.getpid(), 5)
    assert res.exit_code == 0, res
    check(out, {"arm": 0, "attach": 0, "poll_error": -EINVAL, "calls": 0, "close": 0})


def test_callback_wrapper_names_are_configurable(g):
    n = 10
    cfg = wasm_bpf.RunConfig(callback_module="my-wrapper", callback_export="my-cb")
    with Trigger():
        res, out = run_guest(g["cbwrap_renamed"], os.getpid(), n, config=cfg)
    assert res.exit_code == 0, res
    check(out, {"arm": 0, "attach": 0, "calls": n, "sum": n, "bad": 0, "close": 0})


# ------------------------------------------------------------------ close

def test_close_twice_and_use_after_close(g):
    res, out = run_guest(g["abi"], "close")
    assert res.exit_code == 0, res
    check(out, {"attach": 0, "update": 0, "close1": 0, "close2": -EINVAL,
                "close_zero": -EINVAL, "close_unknown": -EINVAL,
                "lookup_after": -EBADF, "update_after": -EBADF, "poll_after": -EINVAL,
                "attach_after": -EINVAL, "fd_after": -EINVAL, "survived": 1})


def test_close_detaches_while_the_guest_keeps_running(g, tmp_path):
    before = held_bpf_ids()
    cfg = wasm_bpf.RunConfig(dirs=[(str(tmp_path), "/sync")])
    bg = Background(g["abi"], ["closedetach", "/sync"], cfg).start()
    try:
        assert wait_until(lambda: (tmp_path / "attached").exists(), 10), "guest did not attach"
        progs, links = (now - old for now, old in zip(held_bpf_ids(), before))
        assert len(links) == 2, f"expected the tracepoint and XDP links, got {links}"
        assert len(progs) == 2, f"expected on_getppid and xdp_pass, got {progs}"
        assert links <= bpf_link_ids() and progs <= bpf_program_ids()
        (tmp_path / "go1").touch()
        assert wait_until(lambda: (tmp_path / "closed").exists(), 10), "guest did not close"
        assert bg.ended_at is None, "the guest should still be running"
        assert nothing_left(before), f"after wasm_close_bpf_object: {held_bpf_ids()} vs {before}"
        # and gone from the kernel, not just from this process's fds
        assert wait_until(lambda: not (links & bpf_link_ids()) and not (progs & bpf_program_ids()), 2)
        assert bg.ended_at is None
    finally:
        (tmp_path / "go2").touch()
        code = bg.join()
    assert code == 0
    check(bg.out, {"attach_tp": 0, "attach_xdp": 0, "close": 0})


# ------------------------------------------------------------- exit codes

@pytest.mark.parametrize("scenario,status", [("ret3", 3), ("retneg1", 255), ("exit255", 255),
                                             ("procexit255", 255), ("trap", 1)])
def test_exit_status(g, scenario, status):
    res, out = run_guest(g["abi"], scenario)
    assert res.exit_code == status, res
    if scenario == "exit255":
        assert out.get("before_exit") == 1  # exit() flushed stdio: not a trap
    if scenario == "trap":
        assert out.get("before_trap") == 1


def test_bare_proc_exit_255(g):
    res = wasm_bpf.run(str(g["exit_wasi"]), capture_output=True)
    assert res.exit_code == 255


def test_instance_run_returns_the_status(g):
    with wasm_bpf.Instance(str(g["abi"]), ["ret3"], capture_output=True) as inst:
        assert inst.run() == 3


@pytest.mark.parametrize("data", [b"", b"not a wasm module at all\n", b"\x7fELF\x02\x01\x01" + b"\0" * 64,
                                  b"\0asm\x01\0\0\0\xff\xff"],
                         ids=["empty", "text", "elf", "bad-wasm"])
def test_not_wasm_is_a_clear_error(data, tmp_path):
    with pytest.raises(wasm_bpf.WasmBpfError) as exc:
        wasm_bpf.run(data, capture_output=True)
    assert str(exc.value).strip() and "\n" not in str(exc.value).strip()
    path = tmp_path / "junk.wasm"
    path.write_bytes(data)
    with pytest.raises(wasm_bpf.WasmBpfError):
        wasm_bpf.run(str(path), capture_output=True)


def test_missing_module_file_is_a_clear_error(tmp_path):
    with pytest.raises(wasm_bpf.WasmBpfError):
        wasm_bpf.run(str(tmp_path / "nope.wasm"), capture_output=True)


@pytest.mark.parametrize("guest,names", [
    ("unknown_name", ["nonexistent"]),
    ("unknown_module", ["mystery_module", "mystery_function"]),
    ("wrongtype_close", ["wasm_close_bpf_object"]),
    ("wrongtype_load", ["wasm_load_bpf_object"]),
    ("wrongtype_poll", ["wasm_bpf_buffer_poll"]),
])
def test_bad_imports_stop_the_run_before_start(g, guest, names):
    with pytest.raises(wasm_bpf.WasmBpfError) as exc:
        wasm_bpf.run(str(g[guest]), capture_output=True)
    message = str(exc.value)
    for name in names:
        assert name in message, message


# ------------------------------------------------------------------ errno

def test_guest_errno_constants_match(g):
    res, out = run_guest(g["abi"], "errno")
    assert res.exit_code == 0, res
    check(out, {"EINVAL": EINVAL, "ENOENT": ENOENT, "EBADF": EBADF, "EFAULT": EFAULT,
                "EINTR": EINTR, "ENODEV": ENODEV,
                "is_EINVAL": 1, "is_ENOENT_attach": 1, "is_ENOENT_map": 1,
                "is_ENOENT_lookup": 1, "is_EBADF": 1, "is_EFAULT": 1, "is_ENODEV": 1,
                "is_EINVAL_close": 1})


# ------------------------------------------------------------------- stop

def _start_waiting(g, how, **cfg):
    before = held_bpf_ids()
    bg = Background(g["abi"], ["wait", how], wasm_bpf.RunConfig(**cfg)).start()
    # the guest attaches right before it starts polling
    assert wait_until(lambda: held_bpf_ids()[1] - before[1], 10), "guest did not attach"
    time.sleep(0.2)
    assert bg.ended_at is None
    return bg, before


def test_stop_makes_a_blocking_poll_return_eintr(g):
    bg, before = _start_waiting(g, "eintr")
    t0 = time.monotonic()
    bg.inst.stop()
    code = bg.join()
    assert code == 0
    assert bg.ended_at - t0 < 0.5, "poll did not return promptly after stop()"
    check(bg.out, {"attach": 0, "poll": -EINTR, "eintr": 1, "polls": 1, "close": 0})
    assert nothing_left(before)


@pytest.mark.parametrize("how", ["ignore", "spin"])
def test_stop_interrupts_a_guest_that_does_not_return(g, how):
    bg, before = _start_waiting(g, how, grace_period=0.5)
    t0 = time.monotonic()
    bg.inst.stop()
    code = bg.join()
    # ABI.md: interrupted after the grace period -> 128 + signal number; stop()
    # stands for SIGINT
    assert code == 130
    assert 0.4 <= bg.ended_at - t0 < 2.0
    assert "poll" not in bg.out  # never left its loop
    assert nothing_left(before)


def test_run_config_timeout(g):
    before = held_bpf_ids()
    t0 = time.monotonic()
    res, out = run_guest(g["abi"], "wait", "eintr", config=wasm_bpf.RunConfig(timeout=0.5))
    assert res.exit_code == 0
    assert 0.4 <= time.monotonic() - t0 < 2.5
    check(out, {"poll": -EINTR, "eintr": 1, "close": 0})
    assert nothing_left(before)


def test_run_config_timeout_interrupts_spinning_guest(g):
    t0 = time.monotonic()
    res, out = run_guest(g["abi"], "wait", "spin",
                         config=wasm_bpf.RunConfig(timeout=0.3, grace_period=0.3))
    assert res.exit_code == 124
    assert 0.5 <= time.monotonic() - t0 < 3.0
