/* usdt: prints every hit of a USDT probe with its arguments. Attaches with the
 * target "BINARY:PROVIDER:NAME[,pid=PID]". */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "usdt.h"
#include "usdt.skel.h"

static const char usage[] =
    "Usage: usdt -b BINARY -P PROVIDER -n NAME [-p PID] [-c COUNT]\n"
    "Prints each hit of USDT probe PROVIDER:NAME in BINARY with its arguments.\n"
    "  -p PID    only this process\n"
    "  -c COUNT  stop after COUNT hits\n";

static int remaining = -1;

static int handle_event(void *ctx, void *data, size_t size)
{
    const struct probe_event *e = data;
    printf("%-7d %-16s %d:", e->pid, e->comm, e->nargs);
    for (int i = 0; i < e->nargs && i < USDT_MAX_ARGS; i++)
        printf(" %lld", e->args[i]);
    printf("\n");
    if (remaining > 0 && --remaining == 0)
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    const char *binary = NULL, *provider = NULL, *name = NULL;
    int pid = -1, opt, err;
    struct usdt_bpf *skel;
    struct bpf_link *link = NULL;
    struct bpf_buffer *buf = NULL;

    while ((opt = getopt(argc, argv, "b:P:n:p:c:h")) != -1) {
        switch (opt) {
        case 'b': binary = optarg; break;
        case 'P': provider = optarg; break;
        case 'n': name = optarg; break;
        case 'p': pid = atoi(optarg); break;
        case 'c': remaining = atoi(optarg); break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (!binary || !provider || !name) {
        fputs(usage, stderr);
        return 2;
    }
    skel = usdt_bpf__open_and_load();
    if (!skel) {
        fprintf(stderr, "usdt: cannot load the BPF object: %s\n", strerror(errno));
        return 1;
    }
    /* libbpf's own signature: the host turns it into "BINARY:PROVIDER:NAME,pid=PID" */
    link = bpf_program__attach_usdt(skel->progs.on_probe, pid, binary, provider, name, NULL);
    if (!link) {
        err = -errno;
        fprintf(stderr, "usdt: cannot attach to %s:%s:%s: %s\n", binary, provider, name, strerror(errno));
        goto out;
    }
    buf = bpf_buffer__open(skel->maps.events, handle_event, NULL);
    if (!buf) {
        err = -errno;
        goto out;
    }
    printf("Tracing %s:%s in %s\n%-7s %-16s %s\n", provider, name, binary, "PID", "COMM", "NARGS: ARGS");
    fflush(stdout);
    for (;;) {
        err = bpf_buffer__poll(buf, 100);
        fflush(stdout);
        if (err == -EINTR || err == -1) {
            err = 0;
            break;
        }
        if (err < 0)
            break;
    }
out:
    bpf_buffer__free(buf);
    bpf_link__destroy(link);
    usdt_bpf__destroy(skel);
    return err ? 1 : 0;
}
