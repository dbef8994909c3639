// SPDX-License-Identifier: GPL-2.0 OR MIT
/* runqlat: run queue latency, the time a runnable task waits for a CPU,
 * summarised as a log2 histogram in a hash map that user space reads. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "runqlat.h"

char LICENSE[] SEC("license") = "Dual MIT/GPL";

#define TASK_RUNNING 0

const volatile bool targ_ms = false; /* histogram in milliseconds, not microseconds */

/* thread id -> time it became runnable */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 10240);
	__type(key, u32);
	__type(value, u64);
} start SEC(".maps");

/* histogram key (always 0: one histogram for the whole system) -> counts */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, u32);
	__type(value, struct hist);
} hists SEC(".maps");

/* Never written. Polling it gives the user side an interval wait that
 * the host interrupts on Ctrl-C (wasm-bpf returns -EINTR from the poll). */
struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} ticks SEC(".maps");

/* task_struct::state was renamed __state in Linux 5.14 */
struct task_struct___pre_5_14 {
	long state;
} __attribute__((preserve_access_index));

static __always_inline long task_state(struct task_struct *t)
{
	if (bpf_core_field_exists(t->__state))
		return BPF_CORE_READ(t, __state);
	return BPF_CORE_READ((struct task_struct___pre_5_14 *)t, state);
}

static __always_inline u32 log2_u64(u64 v)
{
	u32 r = 0, shift;

	shift = (v > 0xFFFFFFFFULL) << 5; v >>= shift; r |= shift;
	shift = (v > 0xFFFF) << 4; v >>= shift; r |= shift;
	shift = (v > 0xFF) << 3; v >>= shift; r |= shift;
	shift = (v > 0xF) << 2; v >>= shift; r |= shift;
	shift = (v > 0x3) << 1; v >>= shift; r |= shift;
	r |= (v >> 1);
	return r;
}

static __always_inline void mark_runnable(u32 tid)
{
	u64 now;

	if (!tid) /* the idle task never waits */
		return;
	now = bpf_ktime_get_ns();
	bpf_map_update_elem(&start, &tid, &now, BPF_ANY);
}

SEC("tp_btf/sched_wakeup")
int BPF_PROG(sched_wakeup, struct task_struct *p)
{
	mark_runnable(BPF_CORE_READ(p, pid));
	return 0;
}

SEC("tp_btf/sched_wakeup_new")
int BPF_PROG(sched_wakeup_new, struct task_struct *p)
{
	mark_runnable(BPF_CORE_READ(p, pid));
	return 0;
}

SEC("tp_btf/sched_switch")
int BPF_PROG(sched_switch, bool preempt, struct task_struct *prev, struct task_struct *next)
{
	u32 tid, key = 0, slot;
	u64 *since, delta;
	struct hist *h;

	/* a preempted task is still runnable: it starts waiting now */
	if (task_state(prev) == TASK_RUNNING)
		mark_runnable(BPF_CORE_READ(prev, pid));

	tid = BPF_CORE_READ(next, pid);
	since = bpf_map_lookup_elem(&start, &tid);
	if (!since)
		return 0;
	delta = bpf_ktime_get_ns() - *since;
	bpf_map_delete_elem(&start, &tid);

	delta /= targ_ms ? 1000000 : 1000;
	slot = log2_u64(delta);
	if (slot >= MAX_SLOTS)
		slot = MAX_SLOTS - 1;

	h = bpf_map_lookup_elem(&hists, &key);
	if (!h) {
		struct hist zero = {};

		bpf_map_update_elem(&hists, &key, &zero, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&hists, &key);
		if (!h)
			return 0;
	}
	__sync_fetch_and_add(&h->slots[slot], 1);
	return 0;
}
