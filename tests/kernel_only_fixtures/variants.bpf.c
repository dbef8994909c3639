// SPDX-License-Identifier: GPL-2.0 OR MIT
/* One event probed by several variants, the way tools ship them for kernels of
 * different ages: the runner must run one variant per event, so each event is
 * counted once. Slot 0: task renames (tp_btf, raw_tp, tp); slot 1: calls of
 * __set_task_comm (fentry, kprobe); slots 2 and 3: probes of events this kernel
 * lacks (skipped, so never counted). Slot 4: a perf event sampling the CPUs; slot 5:
 * the samples whose kernel stack was stored in a stack map user space sizes. */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 targ_tgid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 6);
	__type(key, __u32);
	__type(value, __u64);
} counts SEC(".maps");

/* left to user space, as libbpf-tools do: the runner sizes it */
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 0);
	__type(key, __u32);
	__type(value, __u64);
} sized_by_runner SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_STACK_TRACE);
	__uint(key_size, sizeof(__u32));
} stacks SEC(".maps");

static int bump(__u32 slot)
{
	__u64 *n;

	if (targ_tgid && (bpf_get_current_pid_tgid() >> 32) != targ_tgid)
		return 0;
	n = bpf_map_lookup_elem(&counts, &slot);
	if (n)
		__sync_fetch_and_add(n, 1);
	return 0;
}

SEC("tp_btf/task_rename")
int rename_btf(void *ctx) { return bump(0); }

SEC("raw_tp/task_rename")
int rename_raw(void *ctx) { return bump(0); }

SEC("tp/task/task_rename")
int rename_tp(void *ctx) { return bump(0); }

SEC("fentry/__set_task_comm")
int comm_fentry(void *ctx) { return bump(1); }

SEC("kprobe/__set_task_comm")
int comm_kprobe(void *ctx) { return bump(1); }

SEC("tp/wasm_bpf_test/no_such_tracepoint")
int absent_tp(void *ctx) { return bump(2); }

SEC("fentry/wasm_bpf_no_such_function")
int absent_fentry(void *ctx) { return bump(3); }

SEC("perf_event")
int sample(void *ctx)
{
	__u32 slot = 4;
	__u64 *n = bpf_map_lookup_elem(&counts, &slot);

	if (n)
		__sync_fetch_and_add(n, 1);
	if (bpf_get_stackid(ctx, &stacks, 0) >= 0) {
		slot = 5;
		n = bpf_map_lookup_elem(&counts, &slot);
		if (n)
			__sync_fetch_and_add(n, 1);
	}
	return 0;
}
