// SPDX-License-Identifier: GPL-2.0 OR MIT
/* A program whose results are only globals and a hash map: no event buffer, no
 * histogram. The runner prints .bss and the map; the map's numeric keys in numeric
 * order (their little-endian bytes would put 256 before 2). A task storage map keeps
 * its max_entries 0. */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

const volatile __s32 targ_tgid = 0;

__u64 calls = 0;
__s32 last_tgid = 0;

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, __u64);
} by_key SEC(".maps");

/* max_entries 0 by design: the runner must not size it */
struct {
	__uint(type, BPF_MAP_TYPE_TASK_STORAGE);
	__uint(map_flags, BPF_F_NO_PREALLOC);
	__type(key, int);
	__type(value, __u64);
} per_task SEC(".maps");

static void add(__u32 key)
{
	__u64 one = 1, *n = bpf_map_lookup_elem(&by_key, &key);

	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&by_key, &key, &one, BPF_NOEXIST);
}

SEC("tp/syscalls/sys_enter_getppid")
int count_getppid(void *ctx)
{
	__s32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (targ_tgid && tgid != targ_tgid)
		return 0;
	__sync_fetch_and_add(&calls, 1);
	last_tgid = tgid;
	add(256);
	add(2);
	add(10);
	add(1);
	return 0;
}
