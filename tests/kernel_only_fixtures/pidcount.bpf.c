// SPDX-License-Identifier: GPL-2.0 OR MIT
/* getppid() calls per process: a @cmdarg flag (long and short names, help) filters
 * by pid, and @sample prints the map every 200 ms and clears it after each print. */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

/// @description Counts getppid() calls by process.
char LICENSE[] SEC("license") = "GPL";

/// @cmdarg {"default": 0, "long": "pid", "short": "p", "help": "count this PID only"}
const volatile __u32 targ_pid = 0;

/// @sample {"interval": 200, "type": "default_kv", "clear_map": true}
struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 1024);
	__type(key, __u32);
	__type(value, __u64);
} calls SEC(".maps");

SEC("tp/syscalls/sys_enter_getppid")
int count_getppid(void *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;
	__u64 one = 1, *n;

	if (targ_pid && tgid != targ_pid)
		return 0;
	n = bpf_map_lookup_elem(&calls, &tgid);
	if (n)
		__sync_fetch_and_add(n, 1);
	else
		bpf_map_update_elem(&calls, &tgid, &one, BPF_NOEXIST);
	return 0;
}
