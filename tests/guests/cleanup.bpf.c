// SPDX-License-Identifier: GPL-2.0
/* Programs for tests/test_cleanup.py: one of each kind of attachment whose release
 * the cleanup matrix checks. Only the tracepoint does work (a record per getppid()
 * of the armed pid, so a test decides when the guest's callback first runs); the
 * others just have to be attached. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 64 * 1024);
} rb SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_SOCKMAP);
    __uint(max_entries, 2);
    __type(key, __u32);
    __type(value, __u32);
} socks SEC(".maps");

__u32 target_pid; /* .bss, set by the guest */

SEC("tp/syscalls/sys_enter_getppid")
int cleanup_tp(void *ctx)
{
    __u32 pid = bpf_get_current_pid_tgid() >> 32, *r;

    if (!target_pid || pid != target_pid)
        return 0;
    r = bpf_ringbuf_reserve(&rb, sizeof(*r), 0);
    if (r) {
        *r = pid;
        bpf_ringbuf_submit(r, 0);
    }
    return 0;
}

SEC("uprobe")
int cleanup_uprobe(void *ctx) { return 0; }

SEC("cgroup_skb/egress")
int cleanup_cgroup(struct __sk_buff *skb) { return 1; }

SEC("tc")
int cleanup_tc(struct __sk_buff *skb) { return 0; /* TC_ACT_OK */ }

SEC("tc")
int cleanup_tcx(struct __sk_buff *skb) { return -1; /* TCX_NEXT */ }

SEC("socket")
int cleanup_socket(struct __sk_buff *skb) { return 0; }

SEC("sk_msg")
int cleanup_sk_msg(struct sk_msg_md *msg) { return 1; /* SK_PASS */ }
