/* ufunc: calls of one user-space function with its first argument, return value and
 * duration. Attaches a uprobe and a uretprobe with the target "BINARY:FUNC[,pid=PID]"
 * (BINARY: a path, or a shared library by name such as libc.so.6). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ufunc.h"
#include "ufunc.skel.h"

static const char usage[] =
    "Usage: ufunc -b BINARY -f FUNCTION [-p PID] [-c COUNT]\n"
    "Prints each call of FUNCTION in BINARY: first argument, return value, duration.\n"
    "  -b BINARY    executable or library (a path, or a name like libc.so.6)\n"
    "  -f FUNCTION  function symbol\n"
    "  -p PID       only this process\n"
    "  -c COUNT     stop after COUNT calls\n";

static int remaining = -1;

static int handle_event(void *ctx, void *data, size_t size)
{
    const struct call_event *e = data;
    printf("%-7d %-7d %-16s %12lld %12lld %10.3f\n", e->pid, e->tid, e->comm, e->arg0, e->ret,
           e->ns / 1000.0);
    if (remaining > 0 && --remaining == 0)
        return -1;   /* stop polling */
    return 0;
}

int main(int argc, char **argv)
{
    const char *binary = NULL, *func = NULL;
    int pid = -1, opt, err;
    struct ufunc_bpf *skel;
    struct bpf_link *entry = NULL, *ret = NULL;
    struct bpf_buffer *buf = NULL;
    char target[4200];

    while ((opt = getopt(argc, argv, "b:f:p:c:h")) != -1) {
        switch (opt) {
        case 'b': binary = optarg; break;
        case 'f': func = optarg; break;
        case 'p': pid = atoi(optarg); break;
        case 'c': remaining = atoi(optarg); break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (!binary || !func) {
        fputs(usage, stderr);
        return 2;
    }
    if (pid > 0)
        snprintf(target, sizeof(target), "%s:%s,pid=%d", binary, func, pid);
    else
        snprintf(target, sizeof(target), "%s:%s", binary, func);

    skel = ufunc_bpf__open_and_load();
    if (!skel) {
        fprintf(stderr, "ufunc: cannot load the BPF object: %s\n", strerror(errno));
        return 1;
    }
    entry = bpf_program__attach_target(skel->progs.on_entry, target);
    ret = entry ? bpf_program__attach_target(skel->progs.on_return, target) : NULL;
    if (!entry || !ret) {
        err = -errno;
        fprintf(stderr, "ufunc: cannot attach to %s: %s\n", target, strerror(errno));
        goto out;
    }
    buf = bpf_buffer__open(skel->maps.events, handle_event, NULL);
    if (!buf) {
        err = -errno;
        goto out;
    }
    printf("Tracing %s\n", target);
    printf("%-7s %-7s %-16s %12s %12s %10s\n", "PID", "TID", "COMM", "ARG0", "RET", "USECS");
    fflush(stdout);
    for (;;) {
        err = bpf_buffer__poll(buf, 100);
        fflush(stdout);
        if (err == -EINTR || err == -1) {   /* Ctrl-C, or -c COUNT calls seen */
            err = 0;
            break;
        }
        if (err < 0)
            break;
    }
out:
    bpf_buffer__free(buf);
    bpf_link__destroy(entry);
    bpf_link__destroy(ret);
    ufunc_bpf__destroy(skel);
    return err ? 1 : 0;
}
