/* cgroupskb: traffic of the processes in one cgroup v2 (cgroup_skb programs), with an
 * optional egress port block. The attach target is the cgroup's path: absolute, or
 * relative to the cgroup v2 mount. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "cgroupskb.h"
#include "cgroupskb.skel.h"

static const char usage[] =
    "Usage: cgroupskb -g CGROUP [-b PORT] [-d SECONDS] [-c COUNT]\n"
    "Packets and bytes in and out of CGROUP's sockets since start, every SECONDS.\n"
    "  -g CGROUP   cgroup v2 directory (e.g. /sys/fs/cgroup/unified/app, or app)\n"
    "  -b PORT     drop outgoing TCP/UDP packets to PORT\n"
    "  -d SECONDS  report interval (default 1)\n"
    "  -c COUNT    stop after COUNT reports\n";

static int on_tick(void *ctx, void *data, size_t size) { return 0; }

int main(int argc, char **argv)
{
    const char *cgroup = NULL;
    int port = 0, count = -1, opt, err;
    double interval = 1;
    struct cgroupskb_bpf *skel;
    struct bpf_buffer *ticks = NULL;

    while ((opt = getopt(argc, argv, "g:b:d:c:h")) != -1) {
        switch (opt) {
        case 'g': cgroup = optarg; break;
        case 'b': port = atoi(optarg); break;
        case 'd': interval = atof(optarg); break;
        case 'c': count = atoi(optarg); break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (!cgroup || interval <= 0) {
        fputs(usage, stderr);
        return 2;
    }
    skel = cgroupskb_bpf__open();
    if (!skel)
        return 1;
    skel->rodata->block_port = (unsigned short)port;
    /* both programs take the same target: the skeleton attaches them */
    bpf_set_prog_attach_target(skel->progs.count_ingress, cgroup);
    bpf_set_prog_attach_target(skel->progs.count_egress, cgroup);
    err = cgroupskb_bpf__load(skel);
    if (!err)
        err = cgroupskb_bpf__attach(skel);
    if (err) {
        fprintf(stderr, "cgroupskb: cannot load or attach to %s: %s\n", cgroup, strerror(-err));
        goto out;
    }
    ticks = bpf_buffer__open(skel->maps.ticks, on_tick, NULL);
    if (!ticks) {
        err = -errno;
        goto out;
    }
    printf("%-8s %10s %12s %10s %12s %8s\n", "TIME", "IN_PKTS", "IN_BYTES", "OUT_PKTS", "OUT_BYTES", "BLOCKED");
    fflush(stdout);
    while (count != 0) {
        char when[16];
        time_t now;

        err = bpf_buffer__poll(ticks, (int)(interval * 1000));
        if (err == -EINTR) {
            err = 0;
            break;
        }
        if (err < 0 || (err = bpf_map__refresh(skel->maps.bss)))
            break;
        now = time(NULL);
        strftime(when, sizeof(when), "%H:%M:%S", localtime(&now));
        printf("%-8s %10llu %12llu %10llu %12llu %8llu\n", when, skel->bss->in.packets, skel->bss->in.bytes,
               skel->bss->out.packets, skel->bss->out.bytes, skel->bss->blocked);
        fflush(stdout);
        if (count > 0)
            count--;
    }
out:
    bpf_buffer__free(ticks);
    cgroupskb_bpf__destroy(skel);
    return err ? 1 : 0;
}
