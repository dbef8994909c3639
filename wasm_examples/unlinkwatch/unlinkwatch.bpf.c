// SPDX-License-Identifier: GPL-2.0
/* fexit/do_unlinkat: every file removal with its result. lsm/path_rmdir: refuses to
 * remove directories named `protected_name` (-EPERM). Both use BPF trampolines;
 * kernels that refuse those (EPERM at load) cannot run this tool. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_tracing.h>
#include <bpf/bpf_core_read.h>
#include "unlinkwatch.h"

char LICENSE[] SEC("license") = "GPL";

const volatile char protected_name[NAME_LEN] = "keep-me";

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 256 * 1024);
} events SEC(".maps");

static void send(int kind, long ret, const unsigned char *name)
{
    struct unlink_event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (!e)
        return;
    e->pid = bpf_get_current_pid_tgid() >> 32;
    e->kind = kind;
    e->ret = ret;
    bpf_get_current_comm(e->comm, sizeof(e->comm));
    bpf_probe_read_kernel_str(e->name, sizeof(e->name), name);
    bpf_ringbuf_submit(e, 0);
}

SEC("fexit/do_unlinkat")
int BPF_PROG(unlink_exit, int dfd, struct filename *name, long ret)
{
    send(UNLINK_DONE, ret, (const unsigned char *)BPF_CORE_READ(name, name));
    return 0;
}

SEC("lsm/path_rmdir")
int BPF_PROG(rmdir_check, const struct path *dir, struct dentry *dentry, int ret)
{
    const unsigned char *name = BPF_CORE_READ(dentry, d_name.name);
    char buf[NAME_LEN];
    int i;

    if (ret)
        return ret;   /* an earlier LSM already refused */
    if (bpf_probe_read_kernel_str(buf, sizeof(buf), name) < 0)
        return 0;
    for (i = 0; i < NAME_LEN; i++) {
        if (buf[i] != protected_name[i])
            return 0;
        if (!buf[i])
            break;
    }
    send(RMDIR_DENIED, -1, name);
    return -1;   /* -EPERM */
}
