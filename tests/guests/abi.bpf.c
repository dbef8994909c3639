// SPDX-License-Identifier: GPL-2.0
/* The tiny BPF object of the ABI tests.  A tracepoint program fires on getppid()
 * of one process (set through .bss) and writes records to a ring buffer and a perf
 * event array; a hash map, a per-CPU array, .data and .rodata give map_operate
 * something to work on; an XDP program tests interface attach targets. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "abi_common.h"

char LICENSE[] SEC("license") = "GPL";

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 64 * 1024);
} rb SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
    __uint(key_size, sizeof(__u32));
    __uint(value_size, sizeof(__u32));
} perf SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16);
    __type(key, __u32);
    __type(value, __u64);
} hmap SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, 4);
    __type(key, __u32);
    __type(value, struct abi_pcpu);
} pcpu SEC(".maps");

struct abi_ctl ctl;                                   /* .bss */
volatile __u64 data_magic = ABI_DATA_MAGIC;            /* .data */
const volatile __u32 rodata_magic = ABI_RODATA_MAGIC;  /* .rodata */

static __always_inline void fill(struct abi_rec *r, __u32 seq, __u32 pid, __u32 kind)
{
    r->seq = seq;
    r->pid = pid;
    r->kind = kind;
    r->magic = ABI_REC_MAGIC ^ rodata_magic ^ ABI_RODATA_MAGIC;
    for (int i = 0; i < sizeof(r->payload); i++)
        r->payload[i] = (__u8)(seq + i);
}

SEC("tp/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
    __u32 pid = bpf_get_current_pid_tgid() >> 32;
    struct abi_rec rec;

    if (!ctl.target_pid || pid != ctl.target_pid)
        return 0;
    __sync_fetch_and_add(&ctl.hits, 1);
    for (int i = 0; i < 8; i++) {
        if (i >= ctl.nrec)
            break;
        if (ctl.ring_sent < ctl.ring_limit) {
            struct abi_rec *r = bpf_ringbuf_reserve(&rb, sizeof(*r), 0);
            if (r) {
                fill(r, ctl.ring_sent++, pid, ABI_KIND_RING);
                bpf_ringbuf_submit(r, 0);
            }
        }
        if (ctl.perf_sent < ctl.perf_limit) {
            fill(&rec, ctl.perf_sent++, pid, ABI_KIND_PERF);
            bpf_perf_event_output(ctx, &perf, BPF_F_CURRENT_CPU, &rec, sizeof(rec));
        }
    }
    return 0;
}

SEC("xdp")
int xdp_pass(struct xdp_md *ctx)
{
    return XDP_PASS;
}
