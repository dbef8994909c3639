// SPDX-License-Identifier: GPL-2.0 OR MIT
/* The Python API's test object: every kind of map the API decodes (a hash with a
 * struct key, a per-CPU array, a histogram, a ring buffer) and .rodata/.data/.bss
 * variables, driven by the test's own getpgid()/getsid() calls. Needs no vmlinux.h. */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

const volatile __u32 targ_tgid = 0; /* only this process's calls count */

struct key {
	__u32 pid;
	__u32 kind;
};

struct hist {
	__u32 slots[16];
	char comm[16];
};

struct event {
	__u32 pid;
	__u64 seq;
	char comm[16];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 128);
	__type(key, struct key);
	__type(value, __u64);
} calls SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_PERCPU_ARRAY);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, __u64);
} percpu SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 4);
	__type(key, __u32);
	__type(value, struct hist);
} hists SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 1 << 22);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 200000);
	__type(key, __u32);
	__type(value, __u64);
} big SEC(".maps");

__u64 hits = 0;   /* .bss */
__u64 sids = 0;   /* .bss */
__u32 step = 1;   /* .data */

static __always_inline int mine(void)
{
	return (__u32)(bpf_get_current_pid_tgid() >> 32) == targ_tgid;
}

SEC("tp/syscalls/sys_enter_getpgid")
int on_getpgid(void *ctx)
{
	struct key k = {};
	__u64 one = 1, *v, *c, seq;
	__u32 zero = 0, slot;
	struct hist *h;
	struct event *e;

	if (!mine())
		return 0;
	seq = __sync_fetch_and_add(&hits, step);
	k.pid = targ_tgid;
	k.kind = 1;
	v = bpf_map_lookup_elem(&calls, &k);
	if (v)
		__sync_fetch_and_add(v, 1);
	else
		bpf_map_update_elem(&calls, &k, &one, BPF_NOEXIST);
	c = bpf_map_lookup_elem(&percpu, &zero);
	if (c)
		*c += 1;
	h = bpf_map_lookup_elem(&hists, &zero);
	if (!h) {
		struct hist init = {};
		bpf_map_update_elem(&hists, &zero, &init, BPF_NOEXIST);
		h = bpf_map_lookup_elem(&hists, &zero);
	}
	if (h) {
		slot = seq & 7;
		__sync_fetch_and_add(&h->slots[slot], 1);
		bpf_get_current_comm(h->comm, sizeof(h->comm));
	}
	e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
	if (e) {
		e->pid = targ_tgid;
		e->seq = seq;
		bpf_get_current_comm(e->comm, sizeof(e->comm));
		bpf_ringbuf_submit(e, 0);
	}
	return 0;
}

SEC("tp/syscalls/sys_enter_getsid")
int on_getsid(void *ctx)
{
	if (mine())
		__sync_fetch_and_add(&sids, 1);
	return 0;
}
