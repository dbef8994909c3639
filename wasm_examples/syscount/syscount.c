/* syscount: system calls per process name, counted in Wasm from batches of records.
 *
 * Uses the batch extension of wasm-bpf (bpf_buffer__open_batch/poll_batch): the
 * host packs as many records as fit into one buffer and calls handle_batch once,
 * instead of calling the guest once per record. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "syscount.h"
#include "syscount.skel.h"

#define MAX_NAMES 1024

struct name_count {
    char comm[TASK_COMM_LEN];
    unsigned long long count;
};

static struct name_count counts[MAX_NAMES];
static int used;
static unsigned long long total, batches;

static void count(const char *comm)
{
    for (int i = 0; i < used; i++)
        if (!strncmp(counts[i].comm, comm, TASK_COMM_LEN)) {
            counts[i].count++;
            return;
        }
    if (used < MAX_NAMES) {
        memcpy(counts[used].comm, comm, TASK_COMM_LEN);
        counts[used].comm[TASK_COMM_LEN - 1] = '\0';
        counts[used++].count = 1;
    }
}

static int handle_batch(void *ctx, void *data, size_t size, size_t n)
{
    struct bpf_buffer_record *rec = data;

    for (size_t i = 0; i < n; i++, rec = bpf_buffer_record__next(rec)) {
        const struct syscall_event *e = (const void *)rec->data;
        count(e->comm);
    }
    total += n;
    batches++;
    return 0;
}

static int by_count(const void *a, const void *b)
{
    const struct name_count *x = a, *y = b;
    return x->count < y->count ? 1 : x->count > y->count ? -1 : strcmp(x->comm, y->comm);
}

static void print_interval(int top, unsigned long long dropped)
{
    char when[16];
    time_t now = time(NULL);

    strftime(when, sizeof(when), "%H:%M:%S", localtime(&now));
    qsort(counts, used, sizeof(counts[0]), by_count);
    printf("[%s] %llu syscalls in %llu batches, %llu dropped\n", when, total, batches, dropped);
    printf("%-16s %10s\n", "COMM", "COUNT");
    for (int i = 0; i < used && i < top; i++)
        printf("%-16s %10llu\n", counts[i].comm, counts[i].count);
    printf("\n");
    used = 0;
    total = batches = 0;
}

static double seconds(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static void usage(const char *prog)
{
    printf("Usage: %s [-p PID] [-i SECONDS] [-c COUNT] [-t TOP]\n"
           "Count system calls per process name, every interval.\n\n"
           "  -p PID      only this process\n"
           "  -i SECONDS  interval (default 1)\n"
           "  -c COUNT    stop after COUNT intervals (default: until Ctrl-C)\n"
           "  -t TOP      show the TOP busiest names (default 10)\n",
           prog);
}

int main(int argc, char **argv)
{
    int interval = 1, intervals = 0, top = 10, opt, err = 0, printed = 0;
    unsigned pid = 0;
    struct syscount_bpf *skel;
    struct bpf_buffer *buf = NULL;

    setvbuf(stdout, NULL, _IOLBF, 0);
    while ((opt = getopt(argc, argv, "p:i:c:t:h")) != -1) {
        switch (opt) {
        case 'p': pid = (unsigned)strtoul(optarg, NULL, 10); break;
        case 'i': interval = atoi(optarg); break;
        case 'c': intervals = atoi(optarg); break;
        case 't': top = atoi(optarg); break;
        case 'h': usage(argv[0]); return 0;
        default: usage(argv[0]); return 1;
        }
    }
    if (interval <= 0 || top <= 0 || intervals < 0) {
        usage(argv[0]);
        return 1;
    }

    skel = syscount_bpf__open();
    if (!skel) {
        fprintf(stderr, "syscount: failed to open the BPF object\n");
        return 1;
    }
    skel->rodata->targ_pid = pid;
    err = syscount_bpf__load(skel);
    if (!err)
        err = syscount_bpf__attach(skel);
    if (err) {
        fprintf(stderr, "syscount: failed to load and attach: %d\n", err);
        goto cleanup;
    }
    buf = bpf_buffer__open_batch(skel->maps.events, handle_batch, NULL);
    if (!buf) {
        err = -errno;
        fprintf(stderr, "syscount: failed to open the ring buffer: %d\n", err);
        goto cleanup;
    }
    printf("Counting syscalls%s... Hit Ctrl-C to end.\n", pid ? " of one process" : "");

    /* Drain the ring ten times a second rather than waiting for each record: a
     * reader woken per record would also be counting the system calls its own
     * wake-ups cause. */
    double next = seconds() + interval;
    for (;; usleep(100 * 1000)) {
        err = bpf_buffer__poll_batch(buf, 0);
        if (err == -EINTR) {
            err = 0;
            break;
        }
        if (err < 0) {
            fprintf(stderr, "syscount: polling failed: %d\n", err);
            break;
        }
        if (seconds() >= next) {
            bpf_map__refresh(skel->maps.bss);
            print_interval(top, skel->bss->dropped);
            next += interval;
            if (intervals && ++printed >= intervals)
                break;
        }
    }
    if (!intervals || printed < intervals) {
        bpf_map__refresh(skel->maps.bss);
        print_interval(top, skel->bss->dropped);
    }
cleanup:
    bpf_buffer__free(buf);
    syscount_bpf__destroy(skel);
    return err < 0 ? 1 : 0;
}
