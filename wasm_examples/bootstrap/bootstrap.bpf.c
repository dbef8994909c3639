// SPDX-License-Identifier: GPL-2.0 OR MIT
/* bootstrap: report every exec and every process exit, with the lifetime
 * of the process measured from its exec. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "bootstrap.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

/* Set by the user side before load: only report exits of processes that
 * lived at least this long (and no exec events at all). */
const volatile uint64_t min_duration_ns = 0;

/* pid -> time of its last exec */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 8192);
	__type(key, pid_t);
	__type(value, u64);
} exec_start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 256 * 1024);
} events SEC(".maps");

SEC("tp/sched/sched_process_exec")
int handle_exec(struct trace_event_raw_sched_process_exec *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	pid_t pid = bpf_get_current_pid_tgid() >> 32;
	u64 now = bpf_ktime_get_ns();
	struct event *e;
	unsigned int name_off;

	bpf_map_update_elem(&exec_start, &pid, &now, BPF_ANY);

	/* With a minimum duration only long-lived exits are interesting. */
	if (min_duration_ns)
		return 0;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;

	e->kind = EVENT_EXEC;
	e->pid = pid;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->exit_code = 0;
	e->duration_ns = 0;
	bpf_get_current_comm(e->comm, sizeof(e->comm));
	/* __data_loc: low 16 bits are the offset of the string in the record */
	name_off = ctx->__data_loc_filename & 0xFFFF;
	bpf_probe_read_kernel_str(e->filename, sizeof(e->filename), (void *)ctx + name_off);

	bpf_ringbuf_submit(e, 0);
	return 0;
}

SEC("tp/sched/sched_process_exit")
int handle_exit(struct trace_event_raw_sched_process_template *ctx)
{
	struct task_struct *task = (struct task_struct *)bpf_get_current_task();
	u64 id = bpf_get_current_pid_tgid();
	pid_t pid = id >> 32;
	pid_t tid = (u32)id;
	u64 duration_ns = 0, *started;
	struct event *e;

	/* Only whole processes: ignore threads other than the leader. */
	if (pid != tid)
		return 0;

	started = bpf_map_lookup_elem(&exec_start, &pid);
	if (started) {
		duration_ns = bpf_ktime_get_ns() - *started;
		bpf_map_delete_elem(&exec_start, &pid);
	} else if (min_duration_ns) {
		return 0; /* unknown start time: cannot tell whether it qualifies */
	}
	if (min_duration_ns && duration_ns < min_duration_ns)
		return 0;

	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (!e)
		return 0;

	e->kind = EVENT_EXIT;
	e->pid = pid;
	e->ppid = BPF_CORE_READ(task, real_parent, tgid);
	e->exit_code = (BPF_CORE_READ(task, exit_code) >> 8) & 0xff;
	e->duration_ns = duration_ns;
	e->filename[0] = '\0';
	bpf_get_current_comm(e->comm, sizeof(e->comm));

	bpf_ringbuf_submit(e, 0);
	return 0;
}
