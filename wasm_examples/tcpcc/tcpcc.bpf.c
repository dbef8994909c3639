// SPDX-License-Identifier: GPL-2.0
/* A TCP congestion control ("wasm_reno") as a struct_ops map: Reno through the
 * kernel's tcp_reno_* kfuncs, counting each callback in .bss. Sockets choose it
 * with setsockopt(TCP_CONGESTION, "wasm_reno") once the guest has registered it. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "tcpcc.h"

char LICENSE[] SEC("license") = "GPL";

extern __u32 tcp_reno_ssthresh(struct sock *sk) __ksym;
extern void tcp_reno_cong_avoid(struct sock *sk, __u32 ack, __u32 acked) __ksym;
extern __u32 tcp_reno_undo_cwnd(struct sock *sk) __ksym;

struct cc_stats stats; /* .bss */

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4096);
} ticks SEC(".maps"); /* never written: the user side waits on it */

SEC("struct_ops/wasm_reno_init")
void BPF_PROG(wasm_reno_init, struct sock *sk)
{
    __sync_fetch_and_add(&stats.inits, 1);
}

SEC("struct_ops/wasm_reno_release")
void BPF_PROG(wasm_reno_release, struct sock *sk)
{
    __sync_fetch_and_add(&stats.releases, 1);
}

SEC("struct_ops/wasm_reno_ssthresh")
__u32 BPF_PROG(wasm_reno_ssthresh, struct sock *sk)
{
    __sync_fetch_and_add(&stats.ssthresh, 1);
    return tcp_reno_ssthresh(sk);
}

SEC("struct_ops/wasm_reno_cong_avoid")
void BPF_PROG(wasm_reno_cong_avoid, struct sock *sk, __u32 ack, __u32 acked)
{
    __sync_fetch_and_add(&stats.cong_avoid, 1);
    __sync_fetch_and_add(&stats.acked, acked);
    tcp_reno_cong_avoid(sk, ack, acked);
}

SEC("struct_ops/wasm_reno_undo_cwnd")
__u32 BPF_PROG(wasm_reno_undo_cwnd, struct sock *sk)
{
    return tcp_reno_undo_cwnd(sk);
}

SEC(".struct_ops")
struct tcp_congestion_ops wasm_reno = {
    .init = (void *)wasm_reno_init,
    .release = (void *)wasm_reno_release,
    .ssthresh = (void *)wasm_reno_ssthresh,
    .cong_avoid = (void *)wasm_reno_cong_avoid,
    .undo_cwnd = (void *)wasm_reno_undo_cwnd,
    .name = "wasm_reno",
};
