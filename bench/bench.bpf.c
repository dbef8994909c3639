// SPDX-License-Identifier: GPL-2.0
/* The benchmark's producer: on every getppid() of the driver process (matched by
 * comm), emit RECORDS_PER_TRIGGER records of 56 bytes into the ring buffer.
 * RING_SIZE and RECORDS_PER_TRIGGER are set at compile time (the drain and streaming figures use different
 * sizes); every consumer of one figure uses the same object. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "bench.h"

#ifndef RING_SIZE
#define RING_SIZE (16 << 20)
#endif
#ifndef RECORDS_PER_TRIGGER
#define RECORDS_PER_TRIGGER 8
#endif

char LICENSE[] SEC("license") = "GPL";

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, RING_SIZE);
} rb SEC(".maps");

struct bench_counters counters; /* .bss */

static __always_inline int is_driver(void)
{
    static const char want[] = BENCH_DRIVER_COMM;
    char comm[16];

    bpf_get_current_comm(comm, sizeof(comm));
    for (int i = 0; i < sizeof(want); i++)
        if (comm[i] != want[i])
            return 0;
    return 1;
}

SEC("tp/syscalls/sys_enter_getppid")
int produce(void *ctx)
{
    __u32 pid = bpf_get_current_pid_tgid() >> 32;

    if (!is_driver())
        return 0;
    for (__u32 i = 0; i < RECORDS_PER_TRIGGER; i++) {
        struct bench_event *e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
        if (!e) {
            __sync_fetch_and_add(&counters.drops, 1);
            continue;
        }
        e->seq = __sync_fetch_and_add(&counters.emitted, 1);
        e->pid = pid;
        e->cpu = bpf_get_smp_processor_id();
        for (int j = 0; j < 5; j++)
            e->payload[j] = e->seq * 31 + j;
        bpf_ringbuf_submit(e, 0);
    }
    return 0;
}
