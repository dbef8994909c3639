// SPDX-License-Identifier: GPL-2.0 OR MIT
/* A program whose only output is bpf_printk(): trace_pipe. */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

const volatile __s32 targ_tgid = 0;

SEC("tp/syscalls/sys_enter_getppid")
int say(void *ctx)
{
	__s32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (targ_tgid && tgid != targ_tgid)
		return 0;
	bpf_printk("ko-printk-test tgid=%d", tgid);
	return 0;
}
