// SPDX-License-Identifier: GPL-2.0
/* Cgroup local storage for tests/test_cgroup_storage.py: one shared and one per-CPU
 * storage, both keyed by (cgroup inode, attach type) and created by the kernel when
 * the program is attached to a cgroup; the program counts egress packets in both. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
    __uint(type, BPF_MAP_TYPE_CGROUP_STORAGE);
    __type(key, struct bpf_cgroup_storage_key);
    __type(value, __u64);
} cg_shared SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE);
    __type(key, struct bpf_cgroup_storage_key);
    __type(value, __u64);
} cg_percpu SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4096);
} rb SEC(".maps"); /* never written: the guest polls it to wait */

SEC("cgroup_skb/egress")
int count_egress(struct __sk_buff *skb)
{
    __u64 *shared = bpf_get_local_storage(&cg_shared, 0);
    __u64 *mine = bpf_get_local_storage(&cg_percpu, 0);

    __sync_fetch_and_add(shared, 1);
    *mine += 1; /* this CPU's slot: no other CPU writes it */
    return 1;
}
