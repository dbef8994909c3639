// SPDX-License-Identifier: GPL-2.0
/* A perf_event program run by a software CPU clock on every CPU: counts samples per
 * (pid, comm, kernel stack, user stack); the stacks themselves go to a stack map. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "profile.h"

char LICENSE[] SEC("license") = "GPL";

const volatile int target_pid = 0;   /* 0: every process */
const volatile bool kernel_only = false;

struct {
    __uint(type, BPF_MAP_TYPE_STACK_TRACE);
    __uint(max_entries, 4096);
    __uint(key_size, sizeof(__u32));
    __uint(value_size, MAX_STACK_DEPTH * sizeof(__u64));
} stacks SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 8192);
    __type(key, struct sample_key);
    __type(value, __u64);
} samples SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4096);
} ticks SEC(".maps"); /* never written: the user side waits on it */

SEC("perf_event")
int do_sample(struct bpf_perf_event_data *ctx)
{
    struct sample_key key = {};
    __u64 one = 1, *count;
    int pid = bpf_get_current_pid_tgid() >> 32;

    if (pid == 0 || (target_pid && pid != target_pid))
        return 0;   /* idle, or not the process asked for */
    key.pid = pid;
    bpf_get_current_comm(key.comm, sizeof(key.comm));
    key.kstack = bpf_get_stackid(ctx, &stacks, 0);
    key.ustack = kernel_only ? -1 : bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
    count = bpf_map_lookup_elem(&samples, &key);
    if (count)
        __sync_fetch_and_add(count, 1);
    else
        bpf_map_update_elem(&samples, &key, &one, BPF_NOEXIST);
    return 0;
}
