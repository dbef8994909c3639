// SPDX-License-Identifier: GPL-2.0 OR MIT
/* execve: report every execve(2) with the first MAX_ARGS arguments. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "execve.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

SEC("tp/syscalls/sys_enter_execve")
int handle_execve(struct trace_event_raw_sys_enter *ctx)
{
	const char *const *argv = (const char *const *)ctx->args[1];
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	const char *arg;
	struct event *e;
	int i;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;

	e->pid = bpf_get_current_pid_tgid() >> 32;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->argc = 0;
	e->truncated = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));

	for (i = 0; i < MAX_ARGS; i++) {
		arg = NULL;
		if (bpf_probe_read_user(&arg, sizeof(arg), &argv[i]) || !arg)
			break;
		if (bpf_probe_read_user_str(e->args[i], ARG_LEN, arg) < 0)
			e->args[i][0] = '\0';
		e->argc++;
	}
	if (i == MAX_ARGS) {
		arg = NULL;
		bpf_probe_read_user(&arg, sizeof(arg), &argv[MAX_ARGS]);
		e->truncated = arg != NULL;
	}

	bpf_ringbuf_submit(e, 0);
	return 0;
}
