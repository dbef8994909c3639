// SPDX-License-Identifier: GPL-2.0
/* iter/task visits every thread; for each thread-group leader it writes one binary
 * record (struct task_rec) into the iterator's output with bpf_seq_write. */
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include <bpf/bpf_core_read.h>
#include "taskiter.h"

char LICENSE[] SEC("license") = "GPL";

SEC("iter/task")
int dump_task(struct bpf_iter__task *ctx)
{
    struct task_struct *task = ctx->task;
    struct task_rec rec = {};
    struct mm_struct *mm;

    if (!task || task->pid != task->tgid)   /* threads: only their leader */
        return 0;
    rec.pid = task->tgid;
    rec.ppid = BPF_CORE_READ(task, real_parent, tgid);
    rec.threads = BPF_CORE_READ(task, signal, nr_threads);
    rec.state = task->__state;
    mm = task->mm;
    if (mm)
        rec.rss_pages = BPF_CORE_READ(mm, rss_stat[0].count) + BPF_CORE_READ(mm, rss_stat[1].count);
    __builtin_memcpy(rec.comm, task->comm, sizeof(rec.comm));
    bpf_seq_write(ctx->meta->seq, &rec, sizeof(rec));
    return 0;
}
