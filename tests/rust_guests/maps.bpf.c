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
