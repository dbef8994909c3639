/* sysclass: system calls of the given processes, counted by class.
 *
 * Shows two ways for user space to drive the BPF side:
 *  - a prog array of tail-call targets, filled with the guest's own programs
 *    (bpf_program__fd());
 *  - a user ring buffer: the guest submits "watch PID" commands, the BPF
 *    dispatcher drains them (bpf_user_ringbuf_drain) on its next run. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "sysclass.h"
#include "sysclass.skel.h"

static const char usage[] =
    "Usage: sysclass [-i SECS] [-c COUNT] PID...\n"
    "Counts the system calls of the processes PID... by class (file, net, mem, process,\n"
    "other), through one tail-call handler per class.\n"
    "  -i SECS   print every SECS seconds (default 1)\n"
    "  -c COUNT  stop after COUNT intervals (default: until Ctrl-C)\n";


/* x86_64 system call numbers of each class; the rest count as "other". */
static const struct { unsigned nr, cls; } classes[] = {
    {0, CLASS_FILE}, {1, CLASS_FILE}, {2, CLASS_FILE}, {3, CLASS_FILE}, {4, CLASS_FILE},
    {5, CLASS_FILE}, {6, CLASS_FILE}, {8, CLASS_FILE}, {16, CLASS_FILE}, {17, CLASS_FILE},
    {18, CLASS_FILE}, {19, CLASS_FILE}, {20, CLASS_FILE}, {21, CLASS_FILE}, {72, CLASS_FILE},
    {217, CLASS_FILE}, {257, CLASS_FILE}, {262, CLASS_FILE}, {332, CLASS_FILE},
    {41, CLASS_NET}, {42, CLASS_NET}, {43, CLASS_NET}, {44, CLASS_NET}, {45, CLASS_NET},
    {46, CLASS_NET}, {47, CLASS_NET}, {48, CLASS_NET}, {49, CLASS_NET}, {50, CLASS_NET},
    {51, CLASS_NET}, {52, CLASS_NET}, {53, CLASS_NET}, {54, CLASS_NET}, {55, CLASS_NET},
    {288, CLASS_NET}, {299, CLASS_NET}, {307, CLASS_NET},
    {9, CLASS_MEM}, {10, CLASS_MEM}, {11, CLASS_MEM}, {12, CLASS_MEM}, {25, CLASS_MEM},
    {26, CLASS_MEM}, {27, CLASS_MEM}, {28, CLASS_MEM},
    {39, CLASS_PROC}, {56, CLASS_PROC}, {57, CLASS_PROC}, {58, CLASS_PROC}, {59, CLASS_PROC},
    {60, CLASS_PROC}, {61, CLASS_PROC}, {62, CLASS_PROC}, {110, CLASS_PROC}, {186, CLASS_PROC},
    {231, CLASS_PROC}, {322, CLASS_PROC}, {435, CLASS_PROC},
};

static long long now_ms(void)
{
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000 + t.tv_nsec / 1000000;
}

static int ignore_sample(void *ctx, void *data, size_t size) { return 0; }

/* Waits ms milliseconds in polls of a ring buffer nobody writes: a poll returns
 * -EINTR as soon as the run is stopped (Ctrl-C, --timeout). */
static int wait_ms(struct bpf_buffer *buf, long long ms)
{
    long long deadline = now_ms() + ms, left;
    int err;
    while ((left = deadline - now_ms()) > 0)
        if ((err = bpf_buffer__poll(buf, left < 100 ? (int)left : 100)) < 0)
            return err;
    return 0;
}

static int setup(struct sysclass_bpf *skel)
{
    struct bpf_program *progs[NCLASSES] = {
        skel->progs.on_other, skel->progs.on_file, skel->progs.on_net, skel->progs.on_mem, skel->progs.on_proc,
    };
    int err;

    for (size_t i = 0; i < sizeof(classes) / sizeof(classes[0]); i++)
        if ((err = bpf_map__update_elem(skel->maps.class_of, &classes[i].nr, sizeof(unsigned),
                                        &classes[i].cls, sizeof(unsigned), BPF_ANY)))
            return err;
    for (unsigned c = 0; c < NCLASSES; c++) {
        int fd = bpf_program__fd(progs[c]);
        if (fd < 0)
            return fd;
        if ((err = bpf_map__update_elem(skel->maps.handlers, &c, sizeof(c), &fd, sizeof(fd), BPF_ANY)))
            return err;
    }
    return 0;
}

int main(int argc, char **argv)
{
    struct user_ring_buffer *commands = NULL;
    struct bpf_buffer *ticks = NULL;
    struct sysclass_bpf *skel;
    unsigned long long last[NCLASSES] = {0};
    int interval = 1, count = 0, opt, err;

    while ((opt = getopt(argc, argv, "i:c:h")) != -1) {
        switch (opt) {
        case 'i': interval = atoi(optarg); break;
        case 'c': count = atoi(optarg); break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (optind >= argc || interval <= 0) {
        fputs(usage, stderr);
        return 2;
    }
    skel = sysclass_bpf__open();
    if (!skel)
        return 1;
    /* the handlers run by tail call only */
    bpf_program__set_autoattach(skel->progs.on_other, false);
    bpf_program__set_autoattach(skel->progs.on_file, false);
    bpf_program__set_autoattach(skel->progs.on_net, false);
    bpf_program__set_autoattach(skel->progs.on_mem, false);
    bpf_program__set_autoattach(skel->progs.on_proc, false);
    if ((err = sysclass_bpf__load(skel)) || (err = setup(skel)) || (err = sysclass_bpf__attach(skel))) {
        fprintf(stderr, "sysclass: cannot set up the BPF side: %s\n", strerror(-err));
        goto out;
    }
    commands = user_ring_buffer__new(bpf_map__fd(skel->maps.commands), NULL);
    ticks = bpf_buffer__open(skel->maps.ticks, ignore_sample, NULL);
    if (!commands || !ticks) {
        err = -errno;
        fprintf(stderr, "sysclass: %s\n", strerror(errno));
        goto out;
    }
    for (int i = optind; i < argc; i++) {
        struct watch_cmd *cmd = user_ring_buffer__reserve(commands, sizeof(*cmd));
        if (!cmd) {
            err = -errno;
            goto out;
        }
        cmd->pid = (unsigned)atoi(argv[i]);
        cmd->watch = 1;
        if ((err = user_ring_buffer__submit(commands, cmd))) {
            fprintf(stderr, "sysclass: cannot send the command for %s: %s\n", argv[i], strerror(-err));
            goto out;
        }
    }
    bpf_map__set_live(skel->maps.bss, true); /* skel->bss follows the kernel */
    printf("%-8s %10s %10s %10s %10s %10s\n", "TIME(s)", "file", "net", "mem", "process", "other");
    fflush(stdout);
    for (int n = 1; !count || n <= count; n++) {
        unsigned long long d[NCLASSES];
        if ((err = wait_ms(ticks, interval * 1000LL)) < 0)
            break;
        for (int c = 0; c < NCLASSES; c++) {
            d[c] = skel->bss->counts[c] - last[c];
            last[c] = skel->bss->counts[c];
        }
        printf("%-8d %10llu %10llu %10llu %10llu %10llu\n", n * interval, d[CLASS_FILE], d[CLASS_NET],
               d[CLASS_MEM], d[CLASS_PROC], d[CLASS_OTHER]);
        fflush(stdout);
    }
    printf("commands applied: %llu, calls without a handler: %llu\n", skel->bss->commands_applied,
           skel->bss->no_handler);
    err = err == -EINTR ? 0 : err;
out:
    bpf_buffer__free(ticks);
    user_ring_buffer__free(commands);
    sysclass_bpf__destroy(skel);
    return err ? 1 : 0;
}
