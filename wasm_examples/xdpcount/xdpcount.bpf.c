// SPDX-License-Identifier: GPL-2.0
/* Counts every packet arriving on the interface by IP protocol, in a per-CPU array
 * (no atomics on the fast path: the user side sums the CPUs), and passes it on. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "xdpcount.h"

char LICENSE[] SEC("license") = "GPL";

struct {
    __uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
    __uint(max_entries, XDPCOUNT_PROTOS);
    __type(key, __u32);
    __type(value, struct proto_count);
} counts SEC(".maps");

/* Never written: the user side waits on it between reports. */
struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4096);
} ticks SEC(".maps");

SEC("xdp")
int xdp_count(struct xdp_md *ctx)
{
    void *data = (void *)(long)ctx->data, *end = (void *)(long)ctx->data_end;
    struct ethhdr *eth = data;
    struct proto_count *c;
    __u32 proto = 255;

    if ((void *)(eth + 1) <= end) {
        if (eth->h_proto == bpf_htons(0x0800)) {          /* ETH_P_IP */
            struct iphdr *ip = (void *)(eth + 1);
            if ((void *)(ip + 1) <= end)
                proto = ip->protocol;
        } else if (eth->h_proto == bpf_htons(0x86DD)) {   /* ETH_P_IPV6 */
            struct ipv6hdr *ip6 = (void *)(eth + 1);
            if ((void *)(ip6 + 1) <= end)
                proto = ip6->nexthdr;
        }
    }
    c = bpf_map_lookup_elem(&counts, &proto);
    if (c) {
        c->packets++;
        c->bytes += end - data;
    }
    return XDP_PASS;
}
