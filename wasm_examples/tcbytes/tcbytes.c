/* tcbytes: packets and bytes in and out of an interface, counted by two tc programs.
 *
 * Attaches each program with bpf_program__attach_target(), which returns a link:
 * "IF:ingress" / "IF:egress" make clsact filters, "tcx:IF:ingress" / "tcx:IF:egress"
 * tcx links. The counters live in .bss: bpf_map__set_live() has the host keep
 * skel->bss a live copy (refreshed at the end of every host call, so after each
 * poll), and the reports just read skel->bss. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "tcbytes.h"
#include "tcbytes.skel.h"

static const char usage[] =
    "Usage: tcbytes -i IFNAME [-x] [-d SECONDS] [-c COUNT]\n"
    "Packets and bytes in and out of IFNAME since start, every SECONDS (default 1).\n"
    "  -x          attach as tcx links instead of clsact filters\n"
    "  -d SECONDS  report interval\n"
    "  -c COUNT    stop after COUNT reports\n";

static int on_tick(void *ctx, void *data, size_t size) { return 0; }

int main(int argc, char **argv)
{
    const char *ifname = NULL;
    int tcx = 0, count = -1, opt, err = 0;
    double interval = 1;
    struct tcbytes_bpf *skel;
    struct bpf_link *in = NULL, *out = NULL;
    struct bpf_buffer *ticks = NULL;
    char target[128];

    while ((opt = getopt(argc, argv, "i:xd:c:h")) != -1) {
        switch (opt) {
        case 'i': ifname = optarg; break;
        case 'x': tcx = 1; break;
        case 'd': interval = atof(optarg); break;
        case 'c': count = atoi(optarg); break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (!ifname || interval <= 0) {
        fputs(usage, stderr);
        return 2;
    }
    skel = tcbytes_bpf__open_and_load();
    if (!skel) {
        fprintf(stderr, "tcbytes: cannot load the BPF object: %s\n", strerror(errno));
        return 1;
    }
    snprintf(target, sizeof(target), "%s%s:ingress", tcx ? "tcx:" : "", ifname);
    in = bpf_program__attach_target(skel->progs.tc_ingress, target);
    if (in) {
        snprintf(target, sizeof(target), "%s%s:egress", tcx ? "tcx:" : "", ifname);
        out = bpf_program__attach_target(skel->progs.tc_egress, target);
    }
    if (!in || !out) {
        err = -errno;
        fprintf(stderr, "tcbytes: cannot attach to %s: %s\n", target, strerror(errno));
        goto cleanup;
    }
    ticks = bpf_buffer__open(skel->maps.ticks, on_tick, NULL);
    if (!ticks || (err = bpf_map__set_live(skel->maps.bss, true))) {
        err = err ? err : -errno;
        goto cleanup;
    }
    printf("%-8s %10s %12s %10s %12s   (%s)\n", "TIME", "IN_PKTS", "IN_BYTES", "OUT_PKTS", "OUT_BYTES",
           tcx ? "tcx links" : "clsact filters");
    fflush(stdout);
    while (count != 0) {
        char when[16];
        time_t now;

        err = bpf_buffer__poll(ticks, (int)(interval * 1000));
        if (err == -EINTR) {
            err = 0;
            break;
        }
        if (err < 0)
            break;
        err = 0;
        now = time(NULL);
        strftime(when, sizeof(when), "%H:%M:%S", localtime(&now));
        printf("%-8s %10llu %12llu %10llu %12llu\n", when, skel->bss->ingress.packets,
               skel->bss->ingress.bytes, skel->bss->egress.packets, skel->bss->egress.bytes);
        fflush(stdout);
        if (count > 0)
            count--;
    }
cleanup:
    bpf_link__destroy(in);   /* detach: removes the filters (and the clsact qdisc made for them) */
    bpf_link__destroy(out);
    bpf_buffer__free(ticks);
    tcbytes_bpf__destroy(skel);
    return err ? 1 : 0;
}
