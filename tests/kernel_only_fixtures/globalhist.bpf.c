// SPDX-License-Identifier: GPL-2.0 OR MIT
/* Results kept only in globals, the way softirqs and runqlen keep them: an array of
 * histogram structs (one per event kind), a plain counter array beside it, and one
 * histogram struct alone. The runner prints each non-empty histogram as a histogram
 * and the other variables as a row. */
#include <linux/bpf.h>
#include <linux/types.h>
#include <stdbool.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

#define KINDS 4
#define MAX_SLOTS 20

struct hist {
	__u32 slots[MAX_SLOTS];
};

const volatile __s32 targ_tgid = 0;
const volatile bool targ_ns = false; /* softirqs' flag: the histograms' unit */

__u64 counts[KINDS] = {};
struct hist hists[KINDS] = {};
struct hist latency_usecs = {};

static int count(__u32 kind, __u32 slot)
{
	if ((__s32)(bpf_get_current_pid_tgid() >> 32) != targ_tgid)
		return 0;
	__sync_fetch_and_add(&counts[kind], 1);
	__sync_fetch_and_add(&hists[kind].slots[slot], 1);
	return 0;
}

SEC("tp/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
	return count(1, 3);
}

SEC("tp/syscalls/sys_enter_getpgid")
int on_getpgid(void *ctx)
{
	if ((__s32)(bpf_get_current_pid_tgid() >> 32) == targ_tgid)
		__sync_fetch_and_add(&latency_usecs.slots[5], 1);
	return count(3, 0);
}
