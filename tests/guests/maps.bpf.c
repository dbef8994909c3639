// SPDX-License-Identifier: GPL-2.0
/* One map of every type the guest map API can reach (tests/test_map_api.py). Keys
 * are u32 and values u64 where the type allows it. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

#define KV_MAP(name, map_type, n)           \
    struct {                                \
        __uint(type, map_type);             \
        __uint(max_entries, n);             \
        __type(key, __u32);                 \
        __type(value, __u64);               \
    } name SEC(".maps")

KV_MAP(m_hash, BPF_MAP_TYPE_HASH, 64);
KV_MAP(m_array, BPF_MAP_TYPE_ARRAY, 8);
KV_MAP(m_percpu_hash, BPF_MAP_TYPE_PERCPU_HASH, 64);
KV_MAP(m_percpu_array, BPF_MAP_TYPE_PERCPU_ARRAY, 8);
KV_MAP(m_lru_hash, BPF_MAP_TYPE_LRU_HASH, 64);
KV_MAP(m_lru_percpu_hash, BPF_MAP_TYPE_LRU_PERCPU_HASH, 64);

struct {
    __uint(type, BPF_MAP_TYPE_QUEUE);
    __uint(max_entries, 16);
    __type(value, __u64);
} m_queue SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_STACK);
    __uint(max_entries, 16);
    __type(value, __u64);
} m_stack SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_BLOOM_FILTER);
    __uint(max_entries, 64);
    __type(value, __u64);
} m_bloom SEC(".maps");

/* Maps of fds and of XDP redirect targets. */
struct {
    __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, __u32);
} m_prog_array SEC(".maps");

/* Maps whose values are host fds a guest cannot have (sockets, perf events,
 * cgroups, AF_XDP sockets): guest updates are refused. */
#define FD_VALUED_MAP(name, map_type)       \
    struct {                                \
        __uint(type, map_type);             \
        __uint(max_entries, 4);             \
        __type(key, __u32);                 \
        __type(value, __u32);               \
    } name SEC(".maps")

FD_VALUED_MAP(m_perf_event_array, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
FD_VALUED_MAP(m_cgroup_array, BPF_MAP_TYPE_CGROUP_ARRAY);
FD_VALUED_MAP(m_sockmap, BPF_MAP_TYPE_SOCKMAP);
FD_VALUED_MAP(m_sockhash, BPF_MAP_TYPE_SOCKHASH);
FD_VALUED_MAP(m_xskmap, BPF_MAP_TYPE_XSKMAP);
FD_VALUED_MAP(m_reuseport_sockarray, BPF_MAP_TYPE_REUSEPORT_SOCKARRAY);

/* Local storage keyed by an fd (task: pidfd, socket, inode, cgroup): refused. */
#define FD_KEYED_STORAGE(name, map_type)    \
    struct {                                \
        __uint(type, map_type);             \
        __uint(map_flags, BPF_F_NO_PREALLOC); \
        __type(key, int);                   \
        __type(value, __u64);               \
    } name SEC(".maps")

FD_KEYED_STORAGE(m_task_storage, BPF_MAP_TYPE_TASK_STORAGE);
FD_KEYED_STORAGE(m_sk_storage, BPF_MAP_TYPE_SK_STORAGE);
FD_KEYED_STORAGE(m_inode_storage, BPF_MAP_TYPE_INODE_STORAGE);
FD_KEYED_STORAGE(m_cgrp_storage, 32 /* BPF_MAP_TYPE_CGRP_STORAGE: newer than these UAPI headers */);

/* Records the guest produces (wasm_bpf_user_ringbuf_submit); `count` drains them.
 * m_user_rb_full has no consumer: the guest fills it up. */
struct {
    __uint(type, BPF_MAP_TYPE_USER_RINGBUF);
    __uint(max_entries, 4096);
} m_user_rb SEC(".maps"), m_user_rb_full SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_DEVMAP);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, __u32);
} m_devmap SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_DEVMAP_HASH);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, struct bpf_devmap_val);
} m_devmap_hash SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_CPUMAP);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, __u32);
} m_cpumap SEC(".maps");

struct lpm_key {
    __u32 prefixlen;
    __u8 addr[4];
};
struct {
    __uint(type, BPF_MAP_TYPE_LPM_TRIE);
    __uint(max_entries, 16);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, struct lpm_key);
    __type(value, __u64);
} m_lpm SEC(".maps");

struct inner {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, __u64);
};
struct inner inner_a SEC(".maps"), inner_b SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
    __uint(max_entries, 4);
    __type(key, __u32);
    __array(values, struct inner);
} m_array_of_maps SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH_OF_MAPS);
    __uint(max_entries, 4);
    __type(key, __u32);
    __array(values, struct inner);
} m_hash_of_maps SEC(".maps");

/* .bss and .data, read and written by the guest after load; the program adds
 * `step` to `counter` on every getppid() of `target_pid`, reads inner maps through
 * the map-in-map, drains the user ring buffer and tail-calls m_prog_array[0]. */
struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4096);
} rb SEC(".maps"); /* never written: the guest polls it to wait */

struct maps_ctl {
    __u32 target_pid;
    __u32 pad;
    __u64 counter;
    __u64 seen_inner;
    __u64 tail_hits;
    __u64 user_records;
    __u64 user_sum;
} ctl;          /* .bss */
__u64 step = 1; /* .data */

static long add_sample(struct bpf_dynptr *sample, void *sum)
{
    __u64 v = 0;

    bpf_dynptr_read(&v, sizeof(v), sample, 0, 0);
    *(__u64 *)sum += v;
    return 0;
}

SEC("tp/syscalls/sys_enter_getppid")
int count(void *ctx)
{
    __u32 zero = 0;
    __u64 *v, sum = 0;
    long drained;
    void *inner;

    if ((bpf_get_current_pid_tgid() >> 32) != ctl.target_pid)
        return 0;
    __sync_fetch_and_add(&ctl.counter, step);
    inner = bpf_map_lookup_elem(&m_array_of_maps, &zero);
    if (inner && (v = bpf_map_lookup_elem(inner, &zero)))
        ctl.seen_inner = *v;
    drained = bpf_user_ringbuf_drain(&m_user_rb, add_sample, &sum, 0);
    if (drained > 0) {
        __sync_fetch_and_add(&ctl.user_records, drained);
        __sync_fetch_and_add(&ctl.user_sum, sum);
    }
    bpf_tail_call(ctx, &m_prog_array, 0);
    return 0;
}

/* Reached only through the tail call: the guest puts its fd into m_prog_array. */
SEC("tp/syscalls/sys_enter_getppid")
int tail(void *ctx)
{
    __sync_fetch_and_add(&ctl.tail_hits, 1);
    return 0;
}
