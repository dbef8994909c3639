// SPDX-License-Identifier: GPL-2.0
/* A USDT probe (DTRACE_PROBE*, STAP_PROBE* in the traced program): sends its
 * arguments, decoded by libbpf's USDT support, to user space. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/usdt.bpf.h>
#include "usdt.h"

char LICENSE[] SEC("license") = "GPL";

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 256 * 1024);
} events SEC(".maps");

SEC("usdt")
int on_probe(struct pt_regs *ctx)
{
    struct probe_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    long val;

    if (!e)
        return 0;
    e->pid = bpf_get_current_pid_tgid() >> 32;
    e->nargs = bpf_usdt_arg_cnt(ctx);
    for (int i = 0; i < USDT_MAX_ARGS; i++)
        e->args[i] = i < e->nargs && !bpf_usdt_arg(ctx, i, &val) ? val : 0;
    bpf_get_current_comm(e->comm, sizeof(e->comm));
    bpf_ringbuf_submit(e, 0);
    return 0;
}
