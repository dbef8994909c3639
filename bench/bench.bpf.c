// SPDX-License-Identifier: GPL-2.0
/* The benchmark's producer: on every getppid() of the driver process (matched by
 * comm), emit RECORDS_PER_TRIGGER records of 56 bytes into the ring buffer, or with
 * PERF_BUFFER into a perf event array (the soak's second buffer).
 * RING_SIZE and RECORDS_PER_TRIGGER are set at compile time (the drain and streaming figures use different
 * sizes); every consumer of one figure uses the same object. The driver's comm is in
 * .rodata, so a consumer can choose another one (the soak does, to ignore other runs). */
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

#ifdef PERF_BUFFER
struct {
    __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
    __uint(key_size, sizeof(__u32));
    __uint(value_size, sizeof(__u32));
} rb SEC(".maps");
#else
struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, RING_SIZE);
} rb SEC(".maps");
#endif

struct bench_counters counters; /* .bss */
const volatile char driver_comm[16] = BENCH_DRIVER_COMM; /* .rodata */

static __always_inline int is_driver(void)
{
    char comm[16];

    bpf_get_current_comm(comm, sizeof(comm));
    for (int i = 0; i < sizeof(comm); i++) {
        if (comm[i] != driver_comm[i])
            return 0;
        if (!comm[i])
            break;
    }
    return 1;
}

static __always_inline void fill(struct bench_event *e, __u64 seq, __u32 pid)
{
    e->seq = seq;
    e->pid = pid;
    e->cpu = bpf_get_smp_processor_id();
    for (int j = 0; j < 5; j++)
        e->payload[j] = seq * 31 + j;
}

SEC("tp/syscalls/sys_enter_getppid")
int produce(void *ctx)
{
    __u32 pid = bpf_get_current_pid_tgid() >> 32;

    if (!is_driver())
        return 0;
    for (__u32 i = 0; i < RECORDS_PER_TRIGGER; i++) {
#ifdef PERF_BUFFER
        struct bench_event e;
        /* One driver thread: calls do not overlap, so reading then counting is exact. */
        fill(&e, counters.emitted, pid);
        if (bpf_perf_event_output(ctx, &rb, BPF_F_CURRENT_CPU, &e, sizeof(e)))
            __sync_fetch_and_add(&counters.drops, 1);
        else
            __sync_fetch_and_add(&counters.emitted, 1);
#else
        struct bench_event *e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
        if (!e) {
            __sync_fetch_and_add(&counters.drops, 1);
            continue;
        }
        fill(e, __sync_fetch_and_add(&counters.emitted, 1), pid);
        bpf_ringbuf_submit(e, 0);
#endif
    }
    return 0;
}
