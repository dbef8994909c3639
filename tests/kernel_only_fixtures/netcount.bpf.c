// SPDX-License-Identifier: GPL-2.0 OR MIT
/* Counts UDP datagrams to one port where XDP and tc see them. Where each program
 * attaches comes only from ecc's annotations (or --ifname / --ifindex): slot 0 counts
 * XDP, slot 1 tc ingress, slot 2 tc egress. */
#include <linux/bpf.h>
#include <linux/if_ether.h>
#include <linux/in.h>
#include <linux/ip.h>
#include <linux/pkt_cls.h>
#include <linux/udp.h>
#include <bpf/bpf_endian.h>
#include <bpf/bpf_helpers.h>

/// @description Counts UDP datagrams to one port at XDP, tc ingress and tc egress.
char LICENSE[] SEC("license") = "GPL";

/// UDP destination port to count (0: every UDP datagram)
/// @cmdarg {"default": 0, "long": "port", "short": "P"}
const volatile __u16 targ_port = 0;

/// @sample {"interval": 300, "type": "default_kv"}
struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 3);
	__type(key, __u32);
	__type(value, __u64);
} packets SEC(".maps");

static __always_inline void count_if_ours(void *data, void *data_end, __u32 slot)
{
	struct ethhdr *eth = data;
	struct iphdr *ip = (void *)(eth + 1);
	struct udphdr *udp = (void *)(ip + 1);
	__u64 *n;

	if ((void *)(udp + 1) > data_end || eth->h_proto != bpf_htons(ETH_P_IP) ||
	    ip->ihl != 5 || ip->protocol != IPPROTO_UDP)
		return;
	if (targ_port && udp->dest != bpf_htons(targ_port))
		return;
	n = bpf_map_lookup_elem(&packets, &slot);
	if (n)
		__sync_fetch_and_add(n, 1);
}

/// @ifindex 1
/// @flags 2
/// @xdpopts {"old_prog_fd": 0}
SEC("xdp")
int count_xdp(struct xdp_md *ctx)
{
	count_if_ours((void *)(long)ctx->data, (void *)(long)ctx->data_end, 0);
	return XDP_PASS;
}

/// @tchook {"ifindex": 1, "attach_point": "BPF_TC_INGRESS"}
/// @tcopts {"handle": 7, "priority": 7}
SEC("tc")
int count_ingress(struct __sk_buff *skb)
{
	count_if_ours((void *)(long)skb->data, (void *)(long)skb->data_end, 1);
	return TC_ACT_OK;
}

/// @tchook {"ifindex": 1, "attach_point": "BPF_TC_EGRESS"}
/// @tcopts {"handle": 8, "priority": 8}
SEC("tc")
int count_egress(struct __sk_buff *skb)
{
	count_if_ours((void *)(long)skb->data, (void *)(long)skb->data_end, 2);
	return TC_ACT_OK;
}
