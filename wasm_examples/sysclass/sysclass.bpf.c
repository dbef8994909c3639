// SPDX-License-Identifier: GPL-2.0
/* Counts the system calls of watched processes by class. One dispatcher runs on
 * every system call entry; for a watched process it tail-calls the handler of the
 * call's class (prog array `handlers`, filled by the guest with its own programs).
 * The guest says which processes to watch through a user ring buffer, which the
 * dispatcher drains. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "sysclass.h"

char LICENSE[] SEC("license") = "GPL";

struct {
    __uint(type, BPF_MAP_TYPE_USER_RINGBUF);
    __uint(max_entries, 4096);
} commands SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 256);
    __type(key, __u32);
    __type(value, __u8);
} watched SEC(".maps");

/* system call number -> class (the guest fills it; unlisted calls are CLASS_OTHER) */
struct {
    __uint(type, BPF_MAP_TYPE_ARRAY);
    __uint(max_entries, MAX_SYSCALL);
    __type(key, __u32);
    __type(value, __u32);
} class_of SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_PROG_ARRAY);
    __uint(max_entries, NCLASSES);
    __type(key, __u32);
    __type(value, __u32);
} handlers SEC(".maps");

/* Ticks the guest waits on (never written: its polls return on time or on stop). */
struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4096);
} ticks SEC(".maps");

__u64 counts[NCLASSES];
__u64 commands_applied;
__u64 no_handler; /* watched calls whose class had no program in `handlers` */

static long apply(struct bpf_dynptr *record, void *unused)
{
    struct watch_cmd cmd;
    __u8 yes = 1;

    if (bpf_dynptr_read(&cmd, sizeof(cmd), record, 0, 0))
        return 0; /* a record of another size: skip it */
    if (cmd.watch)
        bpf_map_update_elem(&watched, &cmd.pid, &yes, BPF_ANY);
    else
        bpf_map_delete_elem(&watched, &cmd.pid);
    return 0;
}

SEC("tp/raw_syscalls/sys_enter")
int dispatch(struct trace_event_raw_sys_enter *ctx)
{
    __u32 pid = bpf_get_current_pid_tgid() >> 32, nr = (__u32)ctx->id, *cls;
    long applied = bpf_user_ringbuf_drain(&commands, apply, NULL, 0);

    if (applied > 0)
        __sync_fetch_and_add(&commands_applied, applied);
    if (!bpf_map_lookup_elem(&watched, &pid))
        return 0;
    cls = bpf_map_lookup_elem(&class_of, &nr);
    bpf_tail_call(ctx, &handlers, cls ? *cls : CLASS_OTHER);
    __sync_fetch_and_add(&no_handler, 1); /* reached only when the tail call failed */
    return 0;
}

/* The handlers: reached only by tail call (the guest turns their auto-attach off).
 * Each counts here; a real tool would do its class's own work (decode paths,
 * addresses, sizes...). */
#define HANDLER(name, cls)                          \
    SEC("tp/raw_syscalls/sys_enter")                \
    int name(void *ctx)                             \
    {                                               \
        __sync_fetch_and_add(&counts[cls], 1);      \
        return 0;                                   \
    }

HANDLER(on_other, CLASS_OTHER)
HANDLER(on_file, CLASS_FILE)
HANDLER(on_net, CLASS_NET)
HANDLER(on_mem, CLASS_MEM)
HANDLER(on_proc, CLASS_PROC)
