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

struct {
    __uint(type, BPF_MAP_TYPE_TASK_STORAGE);
    __uint(map_flags, BPF_F_NO_PREALLOC);
    __type(key, int);
    __type(value, __u64);
} m_task_storage SEC(".maps");

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
 * `step` to `counter` on every getppid() of `target_pid` and reads inner maps
 * through the map-in-map. */
struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4096);
} rb SEC(".maps"); /* never written: the guest polls it to wait */

struct maps_ctl {
    __u32 target_pid;
    __u32 pad;
    __u64 counter;
    __u64 seen_inner;
} ctl;          /* .bss */
__u64 step = 1; /* .data */

SEC("tp/syscalls/sys_enter_getppid")
int count(void *ctx)
{
    __u32 zero = 0;
    __u64 *v;
    void *inner;

    if ((bpf_get_current_pid_tgid() >> 32) != ctl.target_pid)
        return 0;
    __sync_fetch_and_add(&ctl.counter, step);
    inner = bpf_map_lookup_elem(&m_array_of_maps, &zero);
    if (inner && (v = bpf_map_lookup_elem(inner, &zero)))
        ctl.seen_inner = *v;
    return 0;
}
