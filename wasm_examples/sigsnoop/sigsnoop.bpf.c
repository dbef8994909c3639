// SPDX-License-Identifier: GPL-2.0 OR MIT
/* sigsnoop: signals sent with kill(2), tkill(2) and tgkill(2).
 * The enter tracepoint remembers the arguments per thread, the exit
 * tracepoint adds the result and emits one event. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "sigsnoop.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* Filters, set by the user side before load (0/false = no filter). */
const volatile int32_t filter_pid = 0;    /* only signals sent by this process */
const volatile int32_t filter_sig = 0;    /* only this signal number */
const volatile bool failed_only = false;  /* only calls that returned an error */

struct pending {
	int32_t tpid;
	int32_t sig;
};

/* thread id -> arguments of its signal syscall in flight */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, struct pending);
} inflight SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

static __always_inline int remember_args(int32_t tpid, int32_t sig)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	struct pending p = { .tpid = tpid, .sig = sig };

	if (filter_pid && (int32_t)(id >> 32) != filter_pid)
		return 0;
	if (filter_sig && sig != filter_sig)
		return 0;

	bpf_map_update_elem(&inflight, &tid, &p, BPF_ANY);
	return 0;
}

static __always_inline int report_result(long ret)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	struct pending *p;
	struct event *e;

	p = bpf_map_lookup_elem(&inflight, &tid);
	if (!p)
		return 0;

	if (failed_only && ret >= 0)
		goto out;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		goto out;
	e->pid = id >> 32;
	e->tpid = p->tpid;
	e->sig = p->sig;
	e->ret = (int32_t)ret;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_ringbuf_submit(e, 0);
out:
	bpf_map_delete_elem(&inflight, &tid);
	return 0;
}

/* kill(pid, sig) */
SEC("tp/syscalls/sys_enter_kill")
int kill_enter(struct trace_event_raw_sys_enter *ctx)
{
	return remember_args((int32_t)ctx->args[0], (int32_t)ctx->args[1]);
}

SEC("tp/syscalls/sys_exit_kill")
int kill_exit(struct trace_event_raw_sys_exit *ctx)
{
	return report_result(ctx->ret);
}

/* tkill(tid, sig) */
SEC("tp/syscalls/sys_enter_tkill")
int tkill_enter(struct trace_event_raw_sys_enter *ctx)
{
	return remember_args((int32_t)ctx->args[0], (int32_t)ctx->args[1]);
}

SEC("tp/syscalls/sys_exit_tkill")
int tkill_exit(struct trace_event_raw_sys_exit *ctx)
{
	return report_result(ctx->ret);
}

/* tgkill(tgid, tid, sig): the target reported is the thread */
SEC("tp/syscalls/sys_enter_tgkill")
int tgkill_enter(struct trace_event_raw_sys_enter *ctx)
{
	return remember_args((int32_t)ctx->args[1], (int32_t)ctx->args[2]);
}

SEC("tp/syscalls/sys_exit_tgkill")
int tgkill_exit(struct trace_event_raw_sys_exit *ctx)
{
	return report_result(ctx->ret);
}
