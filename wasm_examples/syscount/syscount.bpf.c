// SPDX-License-Identifier: GPL-2.0
/* syscount: every system call entry (optionally of one process) as a record in a
 * ring buffer. That can be hundreds of thousands per second, which is what batch
 * delivery is for: the Wasm side counts them. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "syscount.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 targ_pid = 0; /* 0: every process */

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 16 << 20);
} events SEC(".maps");

__u64 dropped = 0; /* records the ring had no room for */

SEC("tp/raw_syscalls/sys_enter")
int on_sys_enter(struct trace_event_raw_sys_enter *ctx)
{
    __u32 pid = bpf_get_current_pid_tgid() >> 32;
    struct syscall_event *e;

    if (targ_pid && pid != targ_pid)
        return 0;
    e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e) {
        __sync_fetch_and_add(&dropped, 1);
        return 0;
    }
    e->pid = pid;
    e->nr = (int)ctx->id;
    bpf_get_current_comm(e->comm, sizeof(e->comm));
    /* No wakeup per record: the reader drains the ring on its own schedule. */
    bpf_ringbuf_submit(e, BPF_RB_NO_WAKEUP);
    return 0;
}
