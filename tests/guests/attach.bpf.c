// SPDX-License-Identifier: GPL-2.0
/* Programs for the attach-target tests: uprobe/uretprobe ("binary:function"),
 * cgroup_skb and sockops (a cgroup path). The probes count calls of one process
 * (set through .bss) and send one record each to the ring buffer. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "attach_common.h"

char LICENSE[] SEC("license") = "GPL";

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 64 * 1024);
} rb SEC(".maps");

struct attach_ctl ctl; /* .bss */

static __always_inline int record(__u32 kind)
{
    __u32 pid = bpf_get_current_pid_tgid() >> 32;
    struct attach_rec *r;

    if (!ctl.target_pid || pid != ctl.target_pid)
        return 0;
    __sync_fetch_and_add(&ctl.probe_hits, 1);
    r = bpf_ringbuf_reserve(&rb, sizeof(*r), 0);
    if (r) {
        r->pid = pid;
        r->kind = kind;
        bpf_ringbuf_submit(r, 0);
    }
    return 0;
}

SEC("uprobe")
int on_uprobe(void *ctx)
{
    return record(ATTACH_KIND_ENTRY);
}

/* The binary in the SEC name is a host path too: tests/test_preopen_paths.py */
SEC("uprobe//usr/bin/true:main")
int on_sec_uprobe(void *ctx)
{
    return record(ATTACH_KIND_ENTRY);
}

SEC("uretprobe")
int on_uretprobe(void *ctx)
{
    return record(ATTACH_KIND_RETURN);
}

SEC("cgroup_skb/egress")
int on_egress(struct __sk_buff *skb)
{
    __sync_fetch_and_add(&ctl.egress_packets, 1);
    return 1; /* let it pass */
}

SEC("sockops")
int on_sockops(struct bpf_sock_ops *ops)
{
    return 1;
}
