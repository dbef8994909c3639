/* tcpcc: registers a TCP congestion control written in BPF (a struct_ops map) for as
 * long as it runs, and reports what the kernel asked of it. Attaching a struct_ops
 * program registers the map that holds it (the skeleton attaches them all; the
 * first registers, the others share that registration); destroying the object
 * unregisters it. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "tcpcc.h"
#include "tcpcc.skel.h"

static const char usage[] =
    "Usage: tcpcc [-d SECONDS]\n"
    "Registers the congestion control \"wasm_reno\" until Ctrl-C (or SECONDS), then\n"
    "prints how often each of its callbacks ran. Sockets use it with\n"
    "setsockopt(TCP_CONGESTION, \"wasm_reno\") or sysctl net.ipv4.tcp_congestion_control.\n";

static int on_tick(void *ctx, void *data, size_t size) { return 0; }

int main(int argc, char **argv)
{
    double seconds = -1;
    struct tcpcc_bpf *skel;
    struct bpf_buffer *ticks = NULL;
    int opt, err;

    while ((opt = getopt(argc, argv, "d:h")) != -1) {
        switch (opt) {
        case 'd': seconds = atof(optarg); break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    skel = tcpcc_bpf__open_and_load();
    if (!skel) {
        fprintf(stderr, "tcpcc: cannot load the BPF object: %s\n", strerror(errno));
        return 1;
    }
    err = tcpcc_bpf__attach(skel);
    ticks = err ? NULL : bpf_buffer__open(skel->maps.ticks, on_tick, NULL);
    if (!ticks) {
        err = err ? err : -errno;
        fprintf(stderr, "tcpcc: cannot register wasm_reno: %s\n", strerror(-err));
        goto out;
    }
    printf("wasm_reno registered; Ctrl-C to unregister\n");
    fflush(stdout);
    err = bpf_buffer__poll(ticks, seconds > 0 ? (int)(seconds * 1000) : -1);
    if (err < 0 && err != -EINTR)
        goto out;
    err = bpf_map__refresh(skel->maps.bss);
    if (!err)
        printf("init %llu, release %llu, cong_avoid %llu (segments acked %llu), ssthresh %llu\n",
               skel->bss->stats.inits, skel->bss->stats.releases, skel->bss->stats.cong_avoid,
               skel->bss->stats.acked, skel->bss->stats.ssthresh);
out:
    bpf_buffer__free(ticks);
    tcpcc_bpf__destroy(skel);
    return err ? 1 : 0;
}
