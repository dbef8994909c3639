// SPDX-License-Identifier: GPL-2.0
/* Two tc programs (attached as clsact filters or as tcx links, the user side
 * chooses) counting packets and bytes into .bss; both let every packet through. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "tcbytes.h"

char LICENSE[] SEC("license") = "GPL";

#define TC_ACT_OK 0

struct dir_count ingress, egress; /* .bss, read by the user side */

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4096);
} ticks SEC(".maps"); /* never written: the user side waits on it */

SEC("tc")
int tc_ingress(struct __sk_buff *skb)
{
    __sync_fetch_and_add(&ingress.packets, 1);
    __sync_fetch_and_add(&ingress.bytes, skb->len);
    return TC_ACT_OK;
}

SEC("tc")
int tc_egress(struct __sk_buff *skb)
{
    __sync_fetch_and_add(&egress.packets, 1);
    __sync_fetch_and_add(&egress.bytes, skb->len);
    return TC_ACT_OK;
}
