// SPDX-License-Identifier: GPL-2.0
/* The BPF object the import fuzzer loads: one map of each kind the imports treat
 * differently, and programs of several attach kinds. Every program lets everything
 * through (XDP_PASS, TC_ACT_OK, accept the whole packet, allow), so attaching one
 * anywhere a fuzzed target points does no harm. No vmlinux.h: it builds anywhere. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct event { __u32 pid; __u32 n; };

struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 16);
         __type(key, __u32); __type(value, __u64); } fz_hash SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 4);
         __type(key, __u32); __type(value, __u64); } fz_array SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY); __uint(max_entries, 2);
         __type(key, __u32); __type(value, __u32); } fz_percpu SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_QUEUE); __uint(max_entries, 8);
         __type(value, __u32); } fz_queue SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096); } fz_ring SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
         __uint(key_size, sizeof(__u32)); __uint(value_size, sizeof(__u32)); } fz_perf SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_USER_RINGBUF); __uint(max_entries, 4096); } fz_uring SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_PROG_ARRAY); __uint(max_entries, 2);
         __type(key, __u32); __type(value, __u32); } fz_progs SEC(".maps");

struct inner { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1);
               __type(key, __u32); __type(value, __u32); } fz_inner SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_ARRAY_OF_MAPS); __uint(max_entries, 2);
         __type(key, __u32); __array(values, struct inner); } fz_outer SEC(".maps");

__u64 fz_counter = 0;          /* .bss: a one-entry array the mirror import accepts */
__u32 fz_data = 7;             /* .data */
const volatile __u32 fz_rodata = 3;

static long drain_one(struct bpf_dynptr *dynptr, void *ctx) { return 0; }

SEC("tp/syscalls/sys_enter_getppid")
int fz_tp(void *ctx)
{
    struct event *e = bpf_ringbuf_reserve(&fz_ring, sizeof(*e), 0);
    struct event pe = { .pid = bpf_get_current_pid_tgid() >> 32, .n = fz_rodata };

    fz_counter++;
    if (e) {
        *e = pe;
        bpf_ringbuf_submit(e, 0);
    }
    bpf_perf_event_output(ctx, &fz_perf, BPF_F_CURRENT_CPU, &pe, sizeof(pe));
    bpf_user_ringbuf_drain(&fz_uring, drain_one, NULL, 0);
    return 0;
}

SEC("xdp") int fz_xdp(struct xdp_md *ctx) { return XDP_PASS; }
SEC("tc") int fz_tc(struct __sk_buff *skb) { return 0; /* TC_ACT_OK */ }
SEC("socket") int fz_socket(struct __sk_buff *skb) { return skb->len; }
SEC("cgroup_skb/ingress") int fz_cgroup(struct __sk_buff *skb) { return 1; }
SEC("perf_event") int fz_perf_prog(void *ctx) { return 0; }
SEC("kprobe") int fz_kprobe(void *ctx) { return 0; }
SEC("uprobe") int fz_uprobe(void *ctx) { return 0; }
