// SPDX-License-Identifier: GPL-2.0
/* Maps of every kind the Rust SDK has a typed view for, and globals in each data
 * section, for tests/test_rust_sdk.py. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct kv {
    u32 a;
    u64 b;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 64);
    __type(key, u32);
    __type(value, struct kv);
} hash SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, 4);
    __type(key, u32);
    __type(value, u64);
} arr SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 2);
    __type(key, u32);
    __type(value, u32);
} pca SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_HASH);
    __uint(max_entries, 8);
    __type(key, u64);
    __type(value, u64);
} pch SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4096);
} ring SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
    __uint(key_size, sizeof(u32));
    __uint(value_size, sizeof(u32));
} perf SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_USER_RINGBUF);
    __uint(max_entries, 4096);
} commands SEC(".maps");

u64 commands_sum = 0; /* .bss: the sum of the u64 records drained from commands */

struct host_write {
    u32 pid;
    char comm[16];
};

u64 counter = 0;              /* .bss */
u32 seed = 7;                 /* .data */
const volatile u32 limit = 3; /* .rodata */

SEC("tp/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
    if (counter < limit * 1000)
        __sync_fetch_and_add(&counter, seed);
    return 0;
}

SEC("tp/syscalls/sys_enter_getpgid")
int never_loaded(void *ctx)
{
    return 0;
}

static long add_command(struct bpf_dynptr *record, void *unused)
{
    u64 value;

    if (!bpf_dynptr_read(&value, sizeof(value), record, 0, 0))
        __sync_fetch_and_add(&commands_sum, value);
    return 0;
}

/* Every write of the host process (comm "wasm-bpf"), e.g. the guest's println!,
 * to both the ring buffer and the perf event array. */
SEC("tp/syscalls/sys_enter_write")
int on_write(void *ctx)
{
    struct host_write w = { .pid = bpf_get_current_pid_tgid() >> 32 };
    const char host[] = "wasm-bpf";

    bpf_get_current_comm(w.comm, sizeof(w.comm));
    for (int i = 0; i < sizeof(host); i++)
        if (w.comm[i] != host[i])
            return 0;
    bpf_user_ringbuf_drain(&commands, add_command, NULL, 0);
    bpf_ringbuf_output(&ring, &w, sizeof(w), 0);
    bpf_perf_event_output(ctx, &perf, BPF_F_CURRENT_CPU, &w, sizeof(w));
    return 0;
}
