// SPDX-License-Identifier: GPL-2.0
/* A socket filter (SEC("socket")): runs on every packet reaching the socket it is
 * attached to - here a raw packet socket on an interface, so every packet of the
 * interface. It reports IPv4 packets and returns 0, so the socket itself queues
 * nothing. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "sockfilter.h"

char LICENSE[] SEC("license") = "GPL";

#define ETH_HLEN 14
#define PACKET_OUTGOING 4

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 256 * 1024);
} events SEC(".maps");

SEC("socket")
int filter(struct __sk_buff *skb)
{
    struct pkt_event *e;
    __u16 proto;
    __u8 ihl;

    if (bpf_skb_load_bytes(skb, 12, &proto, 2) < 0 || proto != bpf_htons(0x0800))
        return 0;
    e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e)
        return 0;
    __builtin_memset(e, 0, sizeof(*e));
    bpf_skb_load_bytes(skb, ETH_HLEN + 9, &e->proto, 1);
    bpf_skb_load_bytes(skb, ETH_HLEN + 12, &e->saddr, 4);
    bpf_skb_load_bytes(skb, ETH_HLEN + 16, &e->daddr, 4);
    bpf_skb_load_bytes(skb, ETH_HLEN, &ihl, 1);
    if (e->proto == 6 || e->proto == 17) {
        __u16 ports[2];
        if (bpf_skb_load_bytes(skb, ETH_HLEN + (ihl & 0xf) * 4, ports, 4) == 0) {
            e->sport = bpf_ntohs(ports[0]);
            e->dport = bpf_ntohs(ports[1]);
        }
    }
    e->len = skb->len;
    e->outgoing = skb->pkt_type == PACKET_OUTGOING;
    bpf_ringbuf_submit(e, 0);
    return 0;
}
