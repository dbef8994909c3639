// SPDX-License-Identifier: GPL-2.0
/* One program per row of the attach table (host_abi/ABI.md), each counting its
 * events in .bss; tests/test_attach_matrix.py attaches them one by one. */
#include <stdbool.h>
#include <linux/bpf.h>
#include <linux/ptrace.h>
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_endian.h>
#include <bpf/usdt.bpf.h>
#include "matrix_common.h"

char LICENSE[] SEC("license") = "GPL";

struct matrix_ctl ctl;

static __always_inline int mine(void)
{
    return ctl.target_pid && (bpf_get_current_pid_tgid() >> 32) == ctl.target_pid;
}

#define COUNT(field) __sync_fetch_and_add(&ctl.field, 1)

SEC("tp/syscalls/sys_enter_getppid")
int on_tp(void *ctx) { if (mine()) COUNT(tp); return 0; }

SEC("raw_tp/sys_enter")
int on_raw_tp(struct bpf_raw_tracepoint_args *ctx)
{
    if (mine() && ctx->args[1] == 110 /* __NR_getppid */)
        COUNT(raw_tp);
    return 0;
}

SEC("tp_btf/sys_enter")
int on_tp_btf(unsigned long long *ctx)
{
    if (mine() && ctx[1] == 110)
        COUNT(tp_btf);
    return 0;
}

SEC("uprobe")
int on_uprobe(void *ctx) { if (mine()) COUNT(uprobe); return 0; }

SEC("uretprobe")
int on_uretprobe(void *ctx) { if (mine()) COUNT(uretprobe); return 0; }

SEC("usdt")
int BPF_USDT(on_usdt, long a, long b)
{
    if (mine() && a + b == 6)
        COUNT(usdt);
    return 0;
}

SEC("kprobe")
int on_kprobe(void *ctx) { if (mine()) COUNT(kprobe); return 0; }

SEC("perf_event")
int on_perf_event(void *ctx) { if (mine()) COUNT(perf_event); return 0; }

SEC("xdp")
int on_xdp(struct xdp_md *ctx) { COUNT(xdp); return XDP_PASS; }

SEC("tc")
int on_tc(struct __sk_buff *skb) { COUNT(tc); return 0; /* TC_ACT_OK */ }

SEC("socket")
int on_socket(struct __sk_buff *skb) { COUNT(socket); return skb->len; }

SEC("cgroup/sock_create")
int on_sock_create(struct bpf_sock *sk) { COUNT(sock_create); return 1; }

SEC("cgroup/connect4")
int on_connect4(struct bpf_sock_addr *ctx) { COUNT(connect4); return 1; }

SEC("cgroup/sysctl")
int on_sysctl(struct bpf_sysctl *ctx) { COUNT(sysctl); return 1; }

SEC("cgroup/dev")
int on_device(struct bpf_cgroup_dev_ctx *ctx) { COUNT(device); return 1; }

/* sockops puts every established TCP socket of the cgroup into `socks`, where the
 * sk_msg and sk_skb programs see their traffic. */
struct {
    __uint(type, BPF_MAP_TYPE_SOCKHASH);
    __uint(max_entries, 64);
    __type(key, __u64);
    __type(value, __u64);
} socks SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_SOCKHASH);
    __uint(max_entries, 64);
    __type(key, __u64);
    __type(value, __u64);
} socks_rx SEC(".maps");

SEC("sockops")
int on_sockops(struct bpf_sock_ops *ops)
{
    __u64 key;

    COUNT(sockops);
    if (ops->op == BPF_SOCK_OPS_ACTIVE_ESTABLISHED_CB || ops->op == BPF_SOCK_OPS_PASSIVE_ESTABLISHED_CB) {
        key = ((__u64)ops->local_port << 32) | bpf_ntohl(ops->remote_port);
        bpf_sock_hash_update(ops, &socks, &key, BPF_ANY);
        bpf_sock_hash_update(ops, &socks_rx, &key, BPF_ANY);
    }
    return 1;
}

SEC("sk_msg")
int on_sk_msg(struct sk_msg_md *msg) { COUNT(sk_msg); return SK_PASS; }

SEC("sk_skb/stream_verdict")
int on_sk_skb(struct __sk_buff *skb) { COUNT(sk_skb); return SK_PASS; }

/* iter/task: one line per task, "pid comm". */
struct bpf_iter_meta {
    struct seq_file *seq;
} __attribute__((preserve_access_index));
struct task_struct {
    int pid;
    char comm[16];
} __attribute__((preserve_access_index));
struct bpf_iter__task {
    struct bpf_iter_meta *meta;
    struct task_struct *task;
} __attribute__((preserve_access_index));

SEC("iter/task")
int on_iter_task(struct bpf_iter__task *ctx)
{
    struct task_struct *task = ctx->task;
    static const char fmt[] = "%d %s\n";
    __u64 args[2];

    if (!task)
        return 0;
    args[0] = task->pid;
    args[1] = (__u64)task->comm;
    bpf_seq_printf(ctx->meta->seq, fmt, sizeof(fmt), args, sizeof(args));
    return 0;
}

/* Never written: the guest polls it to learn when the host stops it. */
struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4096);
} rb SEC(".maps");
