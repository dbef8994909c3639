// SPDX-License-Identifier: GPL-2.0 OR MIT
/* syscount's and offcputime's shape: a staging map (`start`, entries the exit handler
 * deletes) beside the result map (`calls`), and no event buffer or histogram. */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

const volatile __s32 targ_tgid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} start SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} calls SEC(".maps");

SEC("tp/syscalls/sys_enter_getppid")
int on_enter(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid(), ts = bpf_ktime_get_ns();
	__u32 tid = (__u32)id;

	if (targ_tgid && (id >> 32) != targ_tgid)
		return 0;
	bpf_map_update_elem(&start, &tid, &ts, BPF_ANY);
	return 0;
}

SEC("tp/syscalls/sys_exit_getppid")
int on_exit(void *ctx)
{
	__u64 id = bpf_get_current_pid_tgid(), one = 1, *n;
	__u32 tid = (__u32)id, tgid = id >> 32;

	if (!bpf_map_lookup_elem(&start, &tid))
		return 0;
	bpf_map_delete_elem(&start, &tid);
	n = bpf_map_lookup_elem(&calls, &tgid);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&calls, &tgid, &one, BPF_NOEXIST);
	return 0;
}
