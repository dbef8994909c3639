// SPDX-License-Identifier: GPL-2.0 OR MIT
/* opensnoop: files opened with open(2) and openat(2), with the result.
 * Events go through a perf event array (one buffer per CPU). */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "opensnoop.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* Filters, set by the user side before load (0/false = no filter). */
const volatile int32_t filter_pid = 0;   /* only this process (tgid) */
const volatile bool failed_only = false; /* only failed opens */

struct open_args {
	u64 path;   /* user pointer to the path */
	s32 flags;
	s32 __pad;
};

/* thread id -> arguments of the open in flight */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, struct open_args);
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(u32));
	__uint(value_size, sizeof(u32));
} events SEC(".maps");

static __always_inline int remember_open(u64 path, s32 flags)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	struct open_args args = { .path = path, .flags = flags };

	if (filter_pid && (s32)(id >> 32) != filter_pid)
		return 0;
	bpf_map_update_elem(&start, &tid, &args, BPF_ANY);
	return 0;
}

static __always_inline int report_open(void *ctx, long ret)
{
	u64 id = bpf_get_current_pid_tgid();
	u32 tid = (u32)id;
	struct open_args *args;
	struct event e = {};

	args = bpf_map_lookup_elem(&start, &tid);
	if (!args)
		return 0;
	if (failed_only && ret >= 0)
		goto out;

	e.pid = id >> 32;
	e.fd = ret >= 0 ? (s32)ret : -1;
	e.err = ret >= 0 ? 0 : (s32)-ret;
	e.flags = args->flags;
	bpf_get_current_comm(e.comm, sizeof(e.comm));
	/* read the path after the call: the kernel has faulted it in by now */
	bpf_probe_read_user_str(e.path, sizeof(e.path), (const void *)args->path);

	bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU, &e, sizeof(e));
out:
	bpf_map_delete_elem(&start, &tid);
	return 0;
}

#if defined(__TARGET_ARCH_x86)
/* open(2) only exists on older architectures; arm64 and riscv have openat only. */
SEC("tracepoint/syscalls/sys_enter_open")
int open_enter(struct trace_event_raw_sys_enter *ctx)
{
	return remember_open(ctx->args[0], (s32)ctx->args[1]);
}

SEC("tracepoint/syscalls/sys_exit_open")
int open_exit(struct trace_event_raw_sys_exit *ctx)
{
	return report_open(ctx, ctx->ret);
}
#endif

/* openat(dfd, path, flags, mode) */
SEC("tracepoint/syscalls/sys_enter_openat")
int openat_enter(struct trace_event_raw_sys_enter *ctx)
{
	return remember_open(ctx->args[1], (s32)ctx->args[2]);
}

SEC("tracepoint/syscalls/sys_exit_openat")
int openat_exit(struct trace_event_raw_sys_exit *ctx)
{
	return report_open(ctx, ctx->ret);
}
