"""Cgroup local storage (BPF_MAP_TYPE_CGROUP_STORAGE, PERCPU_CGROUP_STORAGE) through
the guest map API: the kernel creates a cgroup's storage when the program that uses
it (guests/cgstorage.bpf.c, cgroup_skb/egress) is attached to the cgroup the test
creates. The guest (guests/storage_guest.c) finds the key with get_next_key, writes
both storages, and reads them back after the test has sent packets from the cgroup."""
import os
import socket

import pytest

from guests.build import guests
from guests.helpers import EINVAL, ENOENT, GuestThread, granted, run_in_cgroup

BPF_CGROUP_INET_EGRESS = 1
DATAGRAMS = 5


@pytest.fixture
def sink():
    s = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
    s.bind(("127.0.0.1", 0))
    yield s
    s.close()


def test_cgroup_storage_lookup_update_and_get_next_key(cgroup, sink):
    guest = GuestThread(guests()["storage"], [cgroup], "ready", config=granted(os.path.dirname(cgroup)))
    port = sink.getsockname()[1]
    send = ("import socket\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
            f"for _ in range({DATAGRAMS}): s.sendto(b'x', ('127.0.0.1', {port}))")
    run_in_cgroup(cgroup, send)()
    sink.settimeout(5)
    assert all(sink.recv(8) == b"x" for _ in range(DATAGRAMS))
    out = guest.stop()
    ncpus = out["ncpus"]

    assert out["before_attach"] == -ENOENT, out  # no storage until a cgroup has the program
    assert (out["attach"], out["first_key"], out["next_key_end"]) == (0, 0, -ENOENT), out
    assert (out["inode"], out["attach_type"]) == (os.stat(cgroup).st_ino, BPF_CGROUP_INET_EGRESS), out
    assert (out["percpu_first_key"], out["percpu_same_key"]) == (0, 1), out
    assert (out["update"], out["percpu_update"]) == (0, 0), out
    assert out["lookup_other_cgroup"] == -ENOENT, out
    assert out["delete"] == -EINVAL, out  # storage lives as long as the attachment
    assert (out["lookup"], out["percpu_lookup"], out["close"]) == (0, 0, 0), out
    packets = out["value"] - 1000
    assert packets >= DATAGRAMS, out
    # both storages counted the same packets on top of what the guest wrote
    assert out["percpu_sum"] == sum(100 * c for c in range(ncpus)) + packets, out
