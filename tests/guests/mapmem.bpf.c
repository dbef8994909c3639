// SPDX-License-Identifier: GPL-2.0
/* Maps whose kernel memory --max-map-memory must count (tests/test_limits.py):
 * perf event arrays, whose rings the host creates (pages x CPUs each), and, with
 * -DINNER, a map-in-map whose inner map template is a large hash map. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

#define PERF_ARRAY(name)                                   \
    struct {                                               \
        __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);       \
        __uint(key_size, sizeof(__u32));                   \
        __uint(value_size, sizeof(__u32));                 \
    } name SEC(".maps")
PERF_ARRAY(perf_a);
PERF_ARRAY(perf_b);
PERF_ARRAY(perf_c);

#ifdef INNER
struct big_inner {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 200000);
    __type(key, __u32);
    __type(value, char[64]);
};

struct {
    __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS);
    __uint(max_entries, 4);
    __type(key, __u32);
    __array(values, struct big_inner);
} outer SEC(".maps");
#endif

SEC("tp/syscalls/sys_enter_getppid")
int nothing(void *ctx)
{
    return 0;
}
