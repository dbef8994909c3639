/* xdpcount: packets and bytes per IP protocol arriving on an interface (XDP).
 *
 * The XDP program counts into a per-CPU array; every interval this side reads each
 * protocol's per-CPU values with bpf_map_lookup_elem (one slot per possible CPU)
 * and prints their sums. */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "xdpcount.h"
#include "xdpcount.skel.h"

#define MAX_CPUS 256

static const char usage[] =
    "Usage: xdpcount -i IFNAME [-m generic|native] [-d SECONDS] [-c COUNT]\n"
    "Packets and bytes per IP protocol arriving on IFNAME, every SECONDS (default 1).\n"
    "  -i IFNAME   the interface\n"
    "  -m MODE     XDP mode: generic (skb) or native (driver); default: the kernel's choice\n"
    "  -d SECONDS  report interval\n"
    "  -c COUNT    stop after COUNT reports\n";

static const char *proto_name(unsigned p)
{
    switch (p) {
    case 0: return "HOPOPT";
    case 1: return "ICMP";
    case 6: return "TCP";
    case 17: return "UDP";
    case 58: return "ICMPv6";
    case 255: return "non-IP";
    default: return "other";
    }
}

static int on_tick(void *ctx, void *data, size_t size) { return 0; }

/* CPUs of the per-CPU slots: the map's value size the host uses divided by ours. */
static int report(struct xdpcount_bpf *skel, int ncpus)
{
    static struct proto_count per_cpu[MAX_CPUS];
    char when[16];
    time_t now = time(NULL);
    int fd = bpf_map__fd(skel->maps.counts), printed = 0;

    strftime(when, sizeof(when), "%H:%M:%S", localtime(&now));
    for (unsigned proto = 0; proto < XDPCOUNT_PROTOS; proto++) {
        unsigned long long packets = 0, bytes = 0;
        int err = bpf_map_lookup_elem(fd, &proto, per_cpu);
        if (err)
            return err;
        for (int c = 0; c < ncpus; c++) {
            packets += per_cpu[c].packets;
            bytes += per_cpu[c].bytes;
        }
        if (!packets)
            continue;
        printf("%-8s %-6s %3u %10llu %12llu\n", when, proto_name(proto), proto, packets, bytes);
        printed++;
    }
    if (!printed)
        printf("%-8s (no packets)\n", when);
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    const char *ifname = NULL, *mode = NULL;
    double interval = 1;
    int count = -1, opt, err, ncpus;
    struct xdpcount_bpf *skel;
    struct bpf_buffer *ticks = NULL;
    char target[128];

    while ((opt = getopt(argc, argv, "i:m:d:c:h")) != -1) {
        switch (opt) {
        case 'i': ifname = optarg; break;
        case 'm': mode = optarg; break;
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
    snprintf(target, sizeof(target), mode ? "%s,mode=%s" : "%s", ifname, mode);

    skel = xdpcount_bpf__open_and_load();
    if (!skel) {
        fprintf(stderr, "xdpcount: cannot load the BPF object: %s\n", strerror(errno));
        return 1;
    }
    ncpus = libbpf_num_possible_cpus();
    if (ncpus <= 0 || ncpus > MAX_CPUS) {
        fprintf(stderr, "xdpcount: cannot tell the number of CPUs\n");
        err = -EINVAL;
        goto out;
    }
    bpf_set_prog_attach_target(skel->progs.xdp_count, target);
    err = xdpcount_bpf__attach(skel);
    if (err) {
        fprintf(stderr, "xdpcount: cannot attach to %s: %s\n", target, strerror(-err));
        goto out;
    }
    ticks = bpf_buffer__open(skel->maps.ticks, on_tick, NULL);
    if (!ticks) {
        err = -errno;
        goto out;
    }
    printf("%-8s %-6s %3s %10s %12s\n", "TIME", "PROTO", "NR", "PACKETS", "BYTES");
    fflush(stdout);
    while (count != 0) {
        err = bpf_buffer__poll(ticks, (int)(interval * 1000));   /* the interval, or Ctrl-C */
        if (err == -EINTR) {
            err = 0;
            break;
        }
        if (err < 0)
            break;
        if ((err = report(skel, ncpus)))
            break;
        if (count > 0)
            count--;
    }
out:
    bpf_buffer__free(ticks);
    xdpcount_bpf__destroy(skel);
    return err ? 1 : 0;
}
