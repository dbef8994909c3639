"""Guests running at the same time in one process (each a wasm_bpf.Instance in its
own thread, as an embedding application runs them) cannot reach each other: object
handles, link handles and map fds are per instance, a guest pointer always means
the guest's own memory, and one guest ending in any way (stopped, trapping,
exiting, closed) leaves the others running with their programs attached (tc
filters on a shared clsact qdisc included) and their own exit status. libbpf's
messages and log level stay with the instance that caused them.

The guest is tests/guests/isolation_guest.c: every copy loads the ABI object with
its own tag, which its records carry, so a copy can tell its records from others'."""
import os
import signal
import subprocess
import threading
import time

import pytest
from wasmtime import _func as wasmtime_func

import wasm_bpf
from conftest import veth_pair
from guests.build import guests
from guests.helpers import EBADF, EINVAL, GuestThread, Trigger, wait_until
from wasm_bpf._shim import ffi, lib
from wasm_bpf.attach import net
from wasm_bpf.errors import GuestExit
from wasm_bpf.instance import EXIT_TRAP

VERIFIER_LOG = "-- BEGIN PROG LOAD LOG --"  # a warning: captured at every level
INFO_MESSAGE = "skipping unrecognized data section"  # logged at info level, as -v asks
KEY_MARKER = 7  # isolation_guest.c stores its marker's bytes under this key


@pytest.fixture(scope="module")
def built():
    return guests()  # a failed build raises BuildError with clang's output


@pytest.fixture(scope="module")
def wasm(built):
    return built["isolation"]


def serve(wasm, tag, action="none", foreign=(), verbose=False, grace_period=2.0):
    """A copy of the guest serving its own object, tagged `tag`; host messages are
    kept in inst.messages only."""
    return GuestThread(wasm, ["serve", os.getpid(), tag, action, *foreign], "ready",
                       config=wasm_bpf.RunConfig(verbose=verbose, grace_period=grace_period),
                       report=lambda message: None)


def keeps_receiving(guest, more=10):
    """Records keep reaching the guest: `more` arrive within 5 s."""
    before = guest.out.get("records", 0)
    return wait_until(lambda: guest.out.get("records", 0) >= before + more, timeout=5)


def map_value(fd, key):
    """The 8-byte value of `key` in a guest's hash map, read by the host process."""
    k, v = ffi.new("uint32_t *", key), ffi.new("unsigned char[8]")
    assert lib.bpf_map_lookup_elem_flags(fd, k, v, 0) == 0
    return bytes(v)


def test_a_guest_cannot_use_another_guests_handles_link_or_fds(wasm):
    """A gets B's object handle, link handle and map fds: every call on them fails
    (-EINVAL for handles, -EBADF for fds), before and after A has objects of its
    own, and B's map, link and records are untouched."""
    with Trigger():
        b = serve(wasm, 2)
        try:
            numbers = [b.out[k] for k in ("handle", "link", "hmap_fd", "ring_fd")]
            a = serve(wasm, 1, foreign=numbers)
            try:
                assert keeps_receiving(a) and keeps_receiving(b)
                assert map_value(b.out["hmap_fd"], KEY_MARKER) == b"tag2".ljust(8, b"\0")
            finally:
                out_a = a.stop()
        finally:
            out_b = b.stop()

    expected = {f"foreign_before_{k}": -EINVAL
                for k in ("attach", "fd_by_name", "poll_handle", "link_destroy", "iter_read", "close")}
    for when in ("before", "after"):
        expected.update({f"foreign_{when}_{k}": -EBADF for k in (
            "lookup", "update", "delete", "next_key", "ring_lookup", "batch_lookup", "batch_delete", "mirror")})
        expected[f"foreign_{when}_value_untouched"] = 1
    expected["foreign_after_poll_fd"] = -EBADF
    assert {k: out_a.get(k) for k in expected} == expected
    # B's object, link and records were never A's to touch.
    assert out_b["foreign_records"] == 0 and out_b["marker_roundtrip"] == 1
    assert out_b["link_destroy"] == 0 and out_b["close"] == 0
    assert out_a["foreign_records"] == 0 and out_a["close"] == 0


@pytest.mark.parametrize("how, action, status", [
    ("stop", "none", 0),  # leaves on -EINTR
    ("stop", "ignore", 128 + signal.SIGINT),  # interrupted after the grace period
    ("trap", "trap", EXIT_TRAP), ("exit", "exit", 3)])  # in its record callback
def test_one_guest_ending_leaves_the_other_running(wasm, how, action, status):
    """A is stopped (and leaves, or is interrupted in Wasm), traps or exits, and is
    closed: B's records keep arriving and its link is still there to destroy."""
    with Trigger():
        b = serve(wasm, 2)
        try:
            a = serve(wasm, 1, action=action, grace_period=0.3)
            try:
                assert keeps_receiving(b)
                if how == "stop":
                    a.inst.stop()
                assert a.wait() == status, a.inst.messages
            finally:
                a.inst.stop()
                a.wait()
                a.inst.close()
            assert keeps_receiving(b)
        finally:
            out_b = b.stop()
    assert out_b["foreign_records"] == 0
    assert out_b["link_destroy"] == 0 and out_b["close"] == 0


def test_a_guest_that_traps_does_not_take_another_guests_exit_status(wasm, monkeypatch):
    """wasmtime-py passes a host function's exception (proc_exit's among them) to
    the next trap in the process through one global. Here another guest's exit is
    left in flight there, as it is for a moment when that guest calls exit() in
    another thread; then this guest traps: it reports its own trap, not that exit."""
    guest = serve(wasm, 1, action="trap")
    monkeypatch.setattr(wasmtime_func, "LAST_EXCEPTION", GuestExit(42))
    with Trigger():  # the guest's records, and so its trap, come only now
        status = guest.wait()
    guest.inst.close()
    assert status == EXIT_TRAP, guest.inst.messages
    assert guest.inst.messages == ["the guest trapped"]


def test_the_same_guest_offsets_hold_each_guests_own_data(wasm):
    """Two copies of one module: their marker and record buffer are at the same
    offsets, yet each one's map got its own marker bytes from that offset and each
    one's records were copied into its own memory only."""
    with Trigger():
        a, b = serve(wasm, 1), serve(wasm, 2)
        try:
            assert keeps_receiving(a) and keeps_receiving(b)
            assert a.out["marker_off"] == b.out["marker_off"]
            assert a.out["record_off"] == b.out["record_off"]
            assert map_value(a.out["hmap_fd"], KEY_MARKER) == b"tag1".ljust(8, b"\0")
            assert map_value(b.out["hmap_fd"], KEY_MARKER) == b"tag2".ljust(8, b"\0")
        finally:
            out_a, out_b = a.stop(), b.stop()
    for out in (out_a, out_b):
        assert out["records"] >= 10 and out["foreign_records"] == 0 and out["marker_roundtrip"] == 1


def test_libbpf_log_of_a_quiet_guest_stays_out_of_a_verbose_guests_output(wasm, capfd):
    """While a verbose guest runs, another guest without -v fails to load: its
    verifier log is not printed (only -v prints it), though its error is reported."""
    loud = serve(wasm, 1, verbose=True)
    try:
        quiet = serve(wasm, 2, action="badload")
        quiet.inst.stop()
        assert quiet.wait() == 0
        quiet.inst.close()
    finally:
        loud.stop()
    assert quiet.out["badload"] == 0
    assert any("verifier rejected program" in m for m in quiet.inst.messages), quiet.inst.messages
    assert VERIFIER_LOG not in capfd.readouterr().err


def test_a_verbose_guest_stays_verbose_when_another_one_ends(wasm, capfd):
    """Two verbose guests; the first ends, then the second loads an object libbpf
    logs an info message about: that message is still printed."""
    first = serve(wasm, 1, verbose=True)
    try:
        second = serve(wasm, 2, action="infoload", verbose=True)
    finally:
        first.stop()
    capfd.readouterr()
    second.inst.stop()
    assert second.wait() == 0
    second.inst.close()
    assert second.out["infoload"] == 1
    assert INFO_MESSAGE in capfd.readouterr().err


class QdiscRace:
    """The shim's functions, except that the instance that creates a clsact qdisc
    waits (up to 2 s) until another one has tried to create it too, as a thread
    switch at that moment would make it. The kernel calls are the real ones."""

    def __init__(self, real):
        self._real = real
        self.created, self.second_tried = threading.Event(), threading.Event()

    def __getattr__(self, name):
        return getattr(self._real, name)

    def bpf_tc_hook_create(self, hook):
        rc = self._real.bpf_tc_hook_create(hook)
        if rc == 0 and not self.created.is_set():
            self.created.set()
            if self.second_tried.wait(2):
                time.sleep(0.2)  # the other one carries on meanwhile
        else:
            self.second_tried.set()
        return rc


def test_closing_one_guest_keeps_another_guests_tc_filter(built, monkeypatch):
    """Two guests attach tc filters to one interface at the same moment, so they share
    the clsact qdisc the first one creates. The first one ending removes its own
    filter only: the second one's stays on the qdisc, which goes with the last filter."""
    race = QdiscRace(net.lib)
    monkeypatch.setattr(net, "lib", race)
    with veth_pair("10.214.0", "wbis") as (ns, host):
        args = [os.getpid(), "run", "on_tc", f"{host}:ingress"]
        first = []
        starter = threading.Thread(target=lambda: first.append(GuestThread(built["link"], args, "ready")))
        starter.start()
        assert race.created.wait(20), "the first guest did not attach"
        second = GuestThread(built["link"], args, "ready")
        starter.join(20)
        try:
            assert first and first[0].out["link0"] > 0 and second.out["link0"] > 0
        finally:
            for guest in first:
                guest.stop()
            filters = subprocess.run(["tc", "filter", "show", "dev", host, "ingress"],
                                     capture_output=True, text=True).stdout
            second.stop()
        qdiscs = subprocess.run(["tc", "qdisc", "show", "dev", host], capture_output=True, text=True).stdout
    assert filters.count("name on_tc") == 1, filters
    assert "clsact" not in qdiscs, qdiscs
