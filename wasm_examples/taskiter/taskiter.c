/* taskiter: list processes from a BPF task iterator (ps without /proc).
 *
 * bpf_program__iter_read() runs the iterator in the kernel and returns its output
 * to the guest: here fixed-size binary records (struct task_rec), one per process. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "taskiter.h"
#include "taskiter.skel.h"

#define MAX_TASKS 65536

static const char usage[] =
    "Usage: taskiter [-m] [-n N] [-c COMM]\n"
    "Lists processes as a BPF task iterator sees them.\n"
    "  -m       sort by resident memory, largest first (default: by pid)\n"
    "  -n N     print at most N processes\n"
    "  -c COMM  only processes whose name starts with COMM\n";

static struct task_rec tasks[MAX_TASKS];

static int by_rss(const void *a, const void *b)
{
    const struct task_rec *x = a, *y = b;
    return x->rss_pages < y->rss_pages ? 1 : x->rss_pages > y->rss_pages ? -1 : x->pid - y->pid;
}

static int by_pid(const void *a, const void *b)
{
    return ((const struct task_rec *)a)->pid - ((const struct task_rec *)b)->pid;
}

static char state_letter(unsigned state)
{
    if (state == 0) return 'R';
    if (state & 1) return 'S';      /* TASK_INTERRUPTIBLE */
    if (state & 2) return 'D';      /* TASK_UNINTERRUPTIBLE */
    if (state & 4) return 'T';      /* __TASK_STOPPED */
    if (state & 8) return 't';      /* __TASK_TRACED */
    if (state & 0x402) return 'I';  /* TASK_IDLE */
    return '?';
}

int main(int argc, char **argv)
{
    const char *comm = NULL;
    int by_memory = 0, limit = -1, opt, err = 0;
    size_t used = 0, n = 0;
    struct taskiter_bpf *skel;

    while ((opt = getopt(argc, argv, "mn:c:h")) != -1) {
        switch (opt) {
        case 'm': by_memory = 1; break;
        case 'n': limit = atoi(optarg); break;
        case 'c': comm = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    skel = taskiter_bpf__open_and_load();
    if (!skel) {
        fprintf(stderr, "taskiter: cannot load the BPF object: %s\n", strerror(errno));
        return 1;
    }
    /* Read the whole iteration: the host returns what one read() of the iterator
     * gives, 0 at its end. */
    for (;;) {
        int got = bpf_program__iter_read(skel->progs.dump_task, (char *)tasks + used,
                                         sizeof(tasks) - used);
        if (got < 0) {
            err = got;
            fprintf(stderr, "taskiter: reading the iterator: %s\n", strerror(-got));
            goto out;
        }
        if (got == 0 || used + got >= sizeof(tasks))
            break;
        used += got;
    }
    n = used / sizeof(tasks[0]);
    qsort(tasks, n, sizeof(tasks[0]), by_memory ? by_rss : by_pid);
    printf("%7s %7s %7s %2s %10s %s\n", "PID", "PPID", "THREADS", "S", "RSS_KB", "COMM");
    for (size_t i = 0, shown = 0; i < n && (limit < 0 || (int)shown < limit); i++) {
        const struct task_rec *t = &tasks[i];
        if (comm && strncmp(t->comm, comm, strlen(comm)))
            continue;
        printf("%7d %7d %7u %2c %10llu %.*s\n", t->pid, t->ppid, t->threads, state_letter(t->state),
               t->rss_pages * 4, TASK_COMM_LEN, t->comm);
        shown++;
    }
    printf("%zu processes\n", n);
out:
    taskiter_bpf__destroy(skel);
    return err ? 1 : 0;
}
