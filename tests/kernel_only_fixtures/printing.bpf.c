// SPDX-License-Identifier: GPL-2.0 OR MIT
/* What the kernel-only printer makes readable (tests/test_kernel_only_print.py): a
 * union chosen by an enum field beside it, kernel and user stacks (ids from
 * bpf_get_stackid and an address array from bpf_get_stack), and syscall numbers. */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 targ_tgid = 0;

enum step { STEP_CALL = 1, STEP_RET = 2 };

struct event {
	__u32 pid;
	enum step step;
	union {
		struct {
			char comm[16];
			__s32 arg;
		} call;
		struct {
			__s64 value;
			__u32 extra;
		} ret;
	} detail;
	__s32 kstack_id;
	__s32 ustack_id;
	__u64 ustack[8];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 64 * 1024);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(max_entries, 256);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, 127 * sizeof(__u64));
} stacks SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 512);
	__type(key, __u32);
	__type(value, __u64);
} syscall_counts SEC(".maps");

static __always_inline int mine(void)
{
	return (bpf_get_current_pid_tgid() >> 32) == targ_tgid;
}

SEC("tp/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
	struct event *e;

	if (!mine())
		return 0;
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	__builtin_memset(e, 0, sizeof(*e));
	e->pid = targ_tgid;
	e->step = STEP_CALL;
	bpf_get_current_comm(e->detail.call.comm, sizeof(e->detail.call.comm));
	e->detail.call.arg = 7;
	e->kstack_id = bpf_get_stackid(ctx, &stacks, 0);
	e->ustack_id = -1;
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("uprobe")
int on_leaf(void *ctx)
{
	struct event *e;

	/* no tgid filter: the probed binary is the test's own */
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;
	__builtin_memset(e, 0, sizeof(*e));
	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->step = STEP_RET;
	e->detail.ret.value = 42;
	e->kstack_id = -1;
	e->ustack_id = bpf_get_stackid(ctx, &stacks, BPF_F_USER_STACK);
	bpf_get_stack(ctx, e->ustack, sizeof(e->ustack), BPF_F_USER_STACK);
	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp/raw_syscalls/sys_enter")
int count_syscalls(struct { __u64 unused; long id; } *ctx)
{
	__u32 id = ctx->id;
	__u64 one = 1, *count;

	if (!mine())
		return 0;
	count = bpf_map_lookup_elem(&syscall_counts, &id);
	if (count)
		__sync_fetch_and_add(count, 1);
	else
		bpf_map_update_elem(&syscall_counts, &id, &one, BPF_ANY);
	return 0;
}
