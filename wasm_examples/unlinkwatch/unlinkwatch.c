/* unlinkwatch: prints every file removal (fexit on do_unlinkat) and refuses to remove
 * directories with a protected name (an LSM hook on path_rmdir). Needs a kernel that
 * loads fentry/fexit and BPF LSM programs (`wasm-bpf probe` tells). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unlinkwatch.h"
#include "unlinkwatch.skel.h"

static const char usage[] =
    "Usage: unlinkwatch [-k NAME]\n"
    "Prints file removals; refuses rmdir of directories named NAME (default keep-me).\n";

static int handle_event(void *ctx, void *data, size_t size)
{
    const struct unlink_event *e = data;
    if (e->kind == UNLINK_DONE)
        printf("%-7d %-16s unlink %-32s = %lld\n", e->pid, e->comm, e->name, e->ret);
    else
        printf("%-7d %-16s rmdir  %-32s DENIED\n", e->pid, e->comm, e->name);
    return 0;
}

int main(int argc, char **argv)
{
    const char *keep = NULL;
    struct unlinkwatch_bpf *skel;
    struct bpf_buffer *buf = NULL;
    int opt, err;

    while ((opt = getopt(argc, argv, "k:h")) != -1) {
        switch (opt) {
        case 'k': keep = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    skel = unlinkwatch_bpf__open();
    if (!skel)
        return 1;
    if (keep) {
        memset((void *)skel->rodata->protected_name, 0, NAME_LEN);
        strncpy((char *)skel->rodata->protected_name, keep, NAME_LEN - 1);
    }
    err = unlinkwatch_bpf__load(skel);
    if (err) {
        fprintf(stderr, "unlinkwatch: the kernel refused the fexit/LSM programs (wasm-bpf probe --kind fexit)\n");
        goto out;
    }
    err = unlinkwatch_bpf__attach(skel);
    buf = err ? NULL : bpf_buffer__open(skel->maps.events, handle_event, NULL);
    if (!buf) {
        err = err ? err : -errno;
        fprintf(stderr, "unlinkwatch: cannot attach: %s\n", strerror(-err));
        goto out;
    }
    printf("%-7s %-16s %-6s %-32s %s\n", "PID", "COMM", "OP", "NAME", "RESULT");
    fflush(stdout);
    for (;;) {
        err = bpf_buffer__poll(buf, 100);
        fflush(stdout);
        if (err == -EINTR) {
            err = 0;
            break;
        }
        if (err < 0)
            break;
    }
out:
    bpf_buffer__free(buf);
    unlinkwatch_bpf__destroy(skel);
    return err ? 1 : 0;
}
