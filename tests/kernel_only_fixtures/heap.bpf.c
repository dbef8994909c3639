// SPDX-License-Identifier: GPL-2.0 OR MIT
/* Records built in a per-CPU array (a "heap", for records too big for the stack) and
 * output with a call that spans lines: the source lines do not show the record's
 * type, the code does (the output's data pointer is a value of `heap`). */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

const volatile __s32 targ_tgid = 0;

struct big_event {
	__s32 pid;
	__u32 calls;
	char comm[16];
	char pad[200];
};

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct big_event);
} heap SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERF_EVENT_ARRAY);
	__uint(key_size, sizeof(__u32));
	__uint(value_size, sizeof(__u32));
} events SEC(".maps");

SEC("tp/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
	__u32 zero = 0;
	struct big_event *e;
	__s32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (targ_tgid && tgid != targ_tgid)
		return 0;
	e = bpf_map_lookup_elem(&heap, &zero);
	if (!e)
		return 0;
	e->pid = tgid;
	e->calls++;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	bpf_perf_event_output(ctx, &events, BPF_F_CURRENT_CPU,
			      e,
			      sizeof(*e));
	return 0;
}
