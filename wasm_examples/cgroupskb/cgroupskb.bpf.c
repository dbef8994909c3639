// SPDX-License-Identifier: GPL-2.0
/* cgroup_skb programs see every packet sent or received by a socket of the cgroup
 * (and its descendants). They count them into .bss and let them pass; with
 * block_port set before load, egress to that TCP/UDP port is dropped. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_endian.h>
#include "cgroupskb.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u16 block_port = 0;

struct traffic in, out;      /* .bss */
unsigned long long blocked;

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4096);
} ticks SEC(".maps"); /* never written: the user side waits on it */

SEC("cgroup_skb/ingress")
int count_ingress(struct __sk_buff *skb)
{
    __sync_fetch_and_add(&in.packets, 1);
    __sync_fetch_and_add(&in.bytes, skb->len);
    return 1;
}

SEC("cgroup_skb/egress")
int count_egress(struct __sk_buff *skb)
{
    struct iphdr ip;
    __u16 ports[2];

    __sync_fetch_and_add(&out.packets, 1);
    __sync_fetch_and_add(&out.bytes, skb->len);
    if (block_port && skb->protocol == bpf_htons(0x0800) && !bpf_skb_load_bytes(skb, 0, &ip, sizeof(ip)) &&
        (ip.protocol == 6 || ip.protocol == 17) &&
        !bpf_skb_load_bytes(skb, ip.ihl * 4, ports, sizeof(ports)) && ports[1] == bpf_htons(block_port)) {
        __sync_fetch_and_add(&blocked, 1);
        return 0;   /* drop */
    }
    return 1;
}
