"""The guest map API (libbpf-wasm.h over wasm_bpf_map_operate and wasm_bpf_map_batch)
on every map type a guest can reach: hash, array, per-CPU, LRU, queue, stack,
bloom filter, LPM trie, array/hash of maps, devmap/devmap_hash/cpumap, prog array
(the guest's own program fds, a real tail call), user ring buffer (records the BPF
program drains), .bss/.data after load; updates of maps of socket, perf event and
cgroup fds and any use of maps keyed by fds (task, socket, inode, cgroup storage)
are refused. Cgroup storage is in test_cgroup_storage.py, stack traces in the profile
example's test, struct_ops maps in the tcpcc example's. The guest (guests/maps_guest.c)
prints raw results; the expectations are computed here."""
import errno
import os
import threading
import time

import pytest

import wasm_bpf
from guests.build import guests
from wasm_bpf.errors import to_guest_errno
from guests.helpers import EBADF, EINVAL, ENOENT, parse, wait_until


def possible_cpus():
    with open("/sys/devices/system/cpu/possible") as f:
        n = 0
        for part in f.read().strip().split(","):
            lo, _, hi = part.partition("-")
            n += int(hi or lo) - int(lo) + 1
    return n


@pytest.fixture(scope="module")
def result():
    """Runs the maps guest once: it exercises every map, then waits while this
    process calls getppid() 4 times, then reads .bss back."""
    inst = wasm_bpf.Instance(str(guests()["maps"]), [str(possible_cpus()), str(os.getpid())], capture_output=True)
    status = []
    thread = threading.Thread(target=lambda: status.append(inst.run()), daemon=True)
    thread.start()
    assert wait_until(lambda: b"ready=1" in inst.stdout or not thread.is_alive(), timeout=20)
    for _ in range(4):
        os.getppid()
    time.sleep(0.1)
    inst.stop()
    thread.join(15)
    inst.close()
    assert status == [0], inst.stdout
    return parse(inst.stdout)


def of(result, name):
    prefix = name + "."
    return {k[len(prefix):]: v for k, v in result.items() if k.startswith(prefix)}


N = 8


@pytest.mark.parametrize("name,percpu,is_array", [
    ("m_hash", False, False), ("m_lru_hash", False, False), ("m_percpu_hash", True, False),
    ("m_lru_percpu_hash", True, False), ("m_array", False, True), ("m_percpu_array", True, True),
])
def test_key_value_maps(result, name, percpu, is_array):
    r = of(result, name)
    slots = possible_cpus() if percpu else 1
    assert (r["update"], r["lookup"]) == (0, 0), r
    assert r["sum"] == sum(k * 100 + c for k in range(N) for c in range(slots)), r
    assert (r["keys"], r["next_key_end"]) == (N, -ENOENT), r
    if is_array:  # arrays cannot lose elements
        assert r["lookup_and_delete"] < 0 and r["delete"] == -EINVAL and r["after_delete"] == 0, r
    else:
        assert (r["lookup_and_delete"], r["lookup_and_delete_value"]) == (0, 100), r
        assert r["after_lookup_and_delete"] == -ENOENT, r
        assert (r["delete"], r["after_delete"]) == (0, -ENOENT), r
    assert (r["update_batch"], r["update_batch_count"]) == (0, N), r
    assert r["lookup_batch_count"] == N and r["lookup_batch_end"] in (0, -ENOENT), r
    assert r["lookup_batch_sum"] == sum(k * 100 + c + 1 for k in range(N) for c in range(slots)), r
    if not is_array:
        assert (r["delete_batch"], r["delete_batch_count"]) == (0, 2), r
        assert r["lookup_and_delete_batch"] in (0, -ENOENT) and r["lookup_and_delete_batch_count"] == N - 2, r
        assert r["empty"] == -ENOENT, r


@pytest.mark.parametrize("name,first,order", [("m_queue", 1, 12345), ("m_stack", 5, 54321)])
def test_queue_and_stack(result, name, first, order):
    r = of(result, name)
    assert (r["push"], r["peek"], r["peek_value"]) == (0, 0, first), r
    assert (r["pop_order"], r["pop_end"]) == (order, -ENOENT), r


def test_bloom_filter(result):
    r = of(result, "m_bloom")
    assert (r["push"], r["has_15"], r["has_1000"]) == (0, 0, -ENOENT), r


def test_lpm_trie(result):
    r = of(result, "m_lpm")
    assert (r["update8"], r["update24"], r["lookup_10_1_2_3"]) == (0, 0, 0), r
    assert (r["match_10_1_2_3"], r["match_10_9_2_3"]) == (24, 8), r


@pytest.mark.parametrize("name", ["m_array_of_maps", "m_hash_of_maps"])
def test_map_in_map(result, name):
    r = of(result, name)
    assert (r["inner_update"], r["update"], r["lookup"], r["inner_id_nonzero"]) == (0, 0, 0, 1), r
    assert r["update_foreign_fd"] == -EBADF, r  # fd 1 is the host's stdout, not a map of the guest


def test_live_mirror_of_bss(result):
    r = of(result, "mirror")
    assert (r["hash"], r["wrong_size"], r["bss"], r["initial_pid_ok"]) == (-EINVAL, -EINVAL, 0, 1), r
    assert r["live_counter"] == 4 * 5, r  # refreshed by the polls, never looked up


def test_devmap_devmap_hash_cpumap(result):
    d, h, c = of(result, "m_devmap"), of(result, "m_devmap_hash"), of(result, "m_cpumap")
    assert (d["update"], d["lookup"], d["value"], d["delete"]) == (0, 0, 1, 0), d
    assert (d["next_key"], d["first_key"]) == (0, 0), d
    assert (h["update"], h["lookup"], h["value"], h["delete"]) == (0, 0, 1, 0), h
    assert h["update_prog_fd"] == -EBADF, h  # a program fd the guest cannot have
    assert (c["update"], c["lookup"], c["value"], c["delete"]) == (0, 0, 192, 0), c


def test_prog_array_takes_the_guests_own_programs_and_tail_calls_work(result):
    r = of(result, "m_prog_array")
    assert (r["prog_fd_ok"], r["no_such_prog"]) == (1, -ENOENT), r
    assert (r["update"], r["lookup"], r["prog_id_nonzero"]) == (0, 0, 1), r
    assert r["update_map_fd"] == -EBADF, r    # a map fd is not a program fd
    assert r["prog_fd_as_map"] == -EBADF, r   # and a program fd is not a map fd
    assert r["update_batch"] == -EINVAL, r
    assert of(result, "bss")["tail_hits"] == 4, result  # count tail-called tail on each getppid()


@pytest.mark.parametrize("name", ["m_perf_event_array", "m_cgroup_array", "m_sockmap", "m_sockhash", "m_xskmap",
                                  "m_reuseport_sockarray"])
def test_maps_of_sockets_perf_events_and_cgroups_are_refused(result, name):
    assert of(result, name)["update"] == -EBADF


@pytest.mark.parametrize("name", ["m_task_storage", "m_sk_storage", "m_inode_storage", "m_cgrp_storage"])
def test_maps_keyed_by_fds_are_refused(result, name):
    assert of(result, name) == {"update": -EBADF, "lookup": -EBADF}


def test_user_ringbuf_records_reach_the_bpf_program(result):
    r, bss = of(result, "m_user_rb"), of(result, "bss")
    assert r["submit"] == 0, r
    assert (bss["user_records"], bss["user_sum"]) == (3, 10 + 20 + 30), bss  # drained by count, in one call
    full = of(result, "m_user_rb_full")
    # 8-byte records take 16 bytes of the 4096-byte ring with their header
    assert 0 < full["submitted"] <= 4096 // 16 and full["full"] == -to_guest_errno(errno.ENOSPC), full
    assert r["too_big"] == -to_guest_errno(errno.E2BIG), r
    assert (r["empty"], r["not_user_ringbuf"], r["foreign_fd"]) == (-EINVAL, -EINVAL, -EBADF), r


def test_bss_and_data_after_load(result):
    r = of(result, "bss")
    assert (r["write"], r["attach"], r["read"]) == (0, 0, 0), r
    assert of(result, "data")["write"] == 0
    assert r["counter"] == 4 * 5, r  # 4 getppid() calls, step 5 written to .data after load
    assert r["seen_inner"] == 7, r   # the program read inner_a through m_array_of_maps
    assert of(result, "obj")["close"] == 0
