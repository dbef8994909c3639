// SPDX-License-Identifier: GPL-2.0 OR MIT
/* A filter list in an array global, as tcplife's `target_sports[4]`: getppid() calls of
 * the listed processes (all when the list is empty), counted in .bss. */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

#define MAX_TGIDS 3

const volatile __s32 targ_tgids[MAX_TGIDS] = {};
const volatile _Bool filter_tgids = 0;

__u64 calls = 0;

SEC("tp/syscalls/sys_enter_getppid")
int count_listed(void *ctx)
{
	__s32 tgid = bpf_get_current_pid_tgid() >> 32;
	int i;

	if (filter_tgids) {
		for (i = 0; i < MAX_TGIDS; i++)
			if (targ_tgids[i] == tgid)
				break;
		if (i == MAX_TGIDS)
			return 0;
	}
	__sync_fetch_and_add(&calls, 1);
	return 0;
}
