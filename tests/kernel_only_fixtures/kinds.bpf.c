// SPDX-License-Identifier: GPL-2.0 OR MIT
/* Every kind of field the kernel-only decoder handles, in one record; rodata globals
 * of every flag kind. Needs no vmlinux.h: the decoding tests compile it without a
 * kernel. */
#include <linux/bpf.h>
#include <linux/types.h>
#include <stdbool.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "Dual MIT/GPL";

enum mode { MODE_OFF = 0, MODE_ON = 1, MODE_AUTO = 7 };

struct inner {
	__u16 a;
	__s8 b;
};

union either {
	__u32 word;
	__u8 bytes[4];
};

struct record {
	__s32 pid;            /* int */
	__u64 ts;             /* u64 */
	enum mode mode;       /* enum, by name */
	char comm[16];        /* string */
	__u16 counts[3];      /* array */
	struct inner in;      /* nested struct */
	union either u;       /* union */
	__u32 flag_a : 1,     /* bitfields */
	      level : 3,
	      neg : 4;
	__s32 sbits : 5;
	bool ok;              /* bool */
	__s32 err;            /* errno name */
	__s32 sig;            /* signal name */
	__u32 saddr;          /* IPv4 */
	__u8 daddr_v6[16];    /* IPv6 */
	__u16 dport;          /* port */
	__s64 ret;            /* -errno */
};

const volatile __u64 min_duration_ns = 1000000;
const volatile __s32 targ_pid = 0;
const volatile bool verbose_mode = true;
const volatile bool failed_only = false;
const volatile enum mode targ_mode = MODE_AUTO;
const volatile char targ_comm[16] = "";
const volatile __u8 small = 200;

struct {
	__uint(type, BPF_MAP_TYPE_RINGBUF);
	__uint(max_entries, 4096);
} events SEC(".maps");

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 16);
	__type(key, __u32);
	__type(value, struct record);
} last SEC(".maps");

SEC("tp/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
	struct record *r;
	__u32 zero = 0;

	if (targ_pid && (bpf_get_current_pid_tgid() >> 32) != targ_pid)
		return 0;
	r = bpf_ringbuf_reserve(&events, sizeof(*r), 0);
	if (!r)
		return 0;
	__builtin_memset(r, 0, sizeof(*r));
	r->pid = bpf_get_current_pid_tgid() >> 32;
	r->ts = min_duration_ns;
	r->mode = targ_mode;
	r->ok = verbose_mode;
	r->flag_a = 1;
	r->level = 5;
	r->sbits = -3;
	r->err = 2;
	r->sig = 10;
	r->saddr = 0x0100007f;
	r->dport = 8080;
	r->ret = -1;
	bpf_get_current_comm(r->comm, sizeof(r->comm));
	bpf_map_update_elem(&last, &zero, r, BPF_ANY);
	bpf_ringbuf_submit(r, 0);
	return 0;
}

/* A histogram the runner prints on its own: slot = log2(pid) */
struct hist {
	__u64 slots[32];
};

struct {
	__uint(type, BPF_MAP_TYPE_ARRAY);
	__uint(max_entries, 1);
	__type(key, __u32);
	__type(value, struct hist);
} pid_hist SEC(".maps");

SEC("tp/syscalls/sys_enter_getppid")
int hist_getppid(void *ctx)
{
	__u32 zero = 0, pid = bpf_get_current_pid_tgid() >> 32, slot = 0;
	struct hist *h = bpf_map_lookup_elem(&pid_hist, &zero);

	if (!h)
		return 0;
	if (targ_pid && pid != targ_pid)
		return 0;
	while (pid > 1 && slot < 31) {
		pid >>= 1;
		slot++;
	}
	__sync_fetch_and_add(&h->slots[slot & 31], 1);
	return 0;
}
