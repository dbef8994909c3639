// SPDX-License-Identifier: GPL-2.0 OR MIT
/* A uprobe with no fixed target: `--attach on_call=BINARY:FUNCTION` names it. */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

struct call {
	__u32 pid;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} calls SEC(".maps");

SEC("uprobe")
int on_call(void *ctx)
{
	struct call *c = bpf_ringbuf_reserve(&calls, sizeof(*c), 0);

	if (!c)
		return 0;
	c->pid = bpf_get_current_pid_tgid() >> 32;
	bpf_get_current_comm(c->comm, sizeof(c->comm));
	bpf_ringbuf_submit(c, 0);
	return 0;
}
