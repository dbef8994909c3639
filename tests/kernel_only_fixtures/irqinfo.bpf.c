// SPDX-License-Identifier: GPL-2.0 OR MIT
/* hardirqs' shape: one hash map whose value holds a count beside a histogram's slots,
 * keyed by a name; `targ_dist` fills the slots, else only the count. The value also has
 * members named like the printed row's own columns (`map`, `key`). */
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

const volatile __s32 targ_tgid = 0;
const volatile _Bool targ_dist = 0;

struct name_key {
	char comm[16];
};

struct info {
	__u64 count;
	__u32 map;
	__u32 key;
	__u32 slots[20];
};

struct {
	__uint(type, BPF_MAP_TYPE_HASH);
	__uint(max_entries, 64);
	__type(key, struct name_key);
	__type(value, struct info);
} infos SEC(".maps");

static struct info zero_info;

SEC("tp/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
	struct name_key key = {};
	struct info *info;

	if (targ_tgid && (bpf_get_current_pid_tgid() >> 32) != targ_tgid)
		return 0;
	bpf_get_current_comm(key.comm, sizeof(key.comm));
	info = bpf_map_lookup_elem(&infos, &key);
	if (!info) {
		bpf_map_update_elem(&infos, &key, &zero_info, BPF_NOEXIST);
		info = bpf_map_lookup_elem(&infos, &key);
		if (!info)
			return 0;
	}
	info->map = 7;
	info->key = 9;
	if (targ_dist)
		__sync_fetch_and_add(&info->slots[2], 1);
	else
		__sync_fetch_and_add(&info->count, 1);
	return 0;
}
