// SPDX-License-Identifier: GPL-2.0
/* A uprobe on the function's entry remembers its first argument and the time per
 * thread; a uretprobe on its return sends one event with the return value and the
 * time spent. The user side attaches both to the function it is given. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include "ufunc.h"

char LICENSE[] SEC("license") = "GPL";

struct entry {
    __u64 ts;
    __s64 arg0;
};

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 10240);
    __type(key, __u32);
    __type(value, struct entry);
} entries SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 256 * 1024);
} events SEC(".maps");

SEC("uprobe")
int BPF_KPROBE(on_entry, long arg0)
{
    __u32 tid = (__u32)bpf_get_current_pid_tgid();
    struct entry e = {.ts = bpf_ktime_get_ns(), .arg0 = arg0};

    bpf_map_update_elem(&entries, &tid, &e, BPF_ANY);
    return 0;
}

SEC("uretprobe")
int BPF_KRETPROBE(on_return, long ret)
{
    __u64 id = bpf_get_current_pid_tgid();
    __u32 tid = (__u32)id;
    struct entry *e = bpf_map_lookup_elem(&entries, &tid);
    struct call_event *ev;

    if (!e)
        return 0;   /* entered before we attached */
    ev = bpf_ringbuf_reserve(&events, sizeof(*ev), 0);
    if (ev) {
        ev->pid = id >> 32;
        ev->tid = tid;
        ev->arg0 = e->arg0;
        ev->ret = ret;
        ev->ns = bpf_ktime_get_ns() - e->ts;
        bpf_get_current_comm(ev->comm, sizeof(ev->comm));
        bpf_ringbuf_submit(ev, 0);
    }
    bpf_map_delete_elem(&entries, &tid);
    return 0;
}
