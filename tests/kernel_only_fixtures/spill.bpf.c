// SPDX-License-Identifier: GPL-2.0 OR MIT
/* A record built in a per-CPU heap by a subprogram that keeps more values alive across
 * helper calls than BPF has callee-saved registers (r6-r9), as mountsnoop's exit
 * handler does: clang spills the heap pointer to the stack and fills it back before
 * the output call, which spans lines. The record type is still read from the code.
 * The `volatile` slot makes that spill and fill certain, whatever clang's register
 * allocator would choose for this smaller function. */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

const volatile __s32 targ_tgid = 0;

struct staged {
	__u64 ts;
	__u64 a;
	__u64 b;
	__u64 c;
};

struct spilled_event {
	__s32 pid;
	__u32 tid;
	__u64 delta;
	__u64 sum;
	__u64 a;
	__u64 b;
	char comm[16];
	char pad[256];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, struct staged);
} staging SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct spilled_event);
} heap SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

static __noinline int emit(void *ctx, __u64 extra)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	__s32 tgid = pid_tgid >> 32;
	struct spilled_event *e;
	struct spilled_event *volatile spilled;
	struct staged *s;
	__u32 zero = 0;

	s = bpf_map_lookup_elem(&staging, &tid);
	if (!s)
		return 0;
	e = bpf_map_lookup_elem(&heap, &zero);
	if (!e)
		goto out;
	spilled = e;
	e->delta = bpf_ktime_get_ns() - s->ts;
	e->pid = tgid;
	e->tid = tid;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	e->a = s->a + bpf_get_prandom_u32() % 2 + extra;
	e->b = s->b + bpf_get_smp_processor_id() * 0;
	e->sum = s->a + s->b + s->c + bpf_ktime_get_ns() % 2 + tid + tgid + extra;
	bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU,
			      spilled,
			      sizeof(*e));
out:
	bpf_map_delete_elem(&staging, &tid);
	return 0;
}

SEC("tp/syscalls/sys_enter_getppid")
int on_enter(void *ctx)
{
	__u64 pid_tgid = bpf_get_current_pid_tgid();
	__u32 tid = (__u32)pid_tgid;
	struct staged s = {.ts = bpf_ktime_get_ns(), .a = 1, .b = 2, .c = 3};

	if (targ_tgid && (pid_tgid >> 32) != targ_tgid)
		return 0;
	bpf_map_update_elem(&staging, &tid, &s, BPF_ANY);
	return 0;
}

SEC("tp/syscalls/sys_exit_getppid")
int on_exit(void *ctx)
{
	return emit(ctx, 7);
}
