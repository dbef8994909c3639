/* sockfilter: IPv4 packets of an interface, seen by a socket filter. The target
 * IFNAME makes the host open a raw packet socket on the interface and attach the
 * filter to it (PID:FD would attach it to a socket of a running process instead). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sockfilter.h"
#include "sockfilter.skel.h"

static const char usage[] =
    "Usage: sockfilter -i IFNAME | -s PID:FD [-c COUNT]\n"
    "Prints the IPv4 packets a socket filter sees.\n"
    "  -i IFNAME   every packet of an interface (raw socket)\n"
    "  -s PID:FD   the packets of socket FD of process PID\n"
    "  -c COUNT    stop after COUNT packets\n";

static int remaining = -1;

static const char *proto_name(int p)
{
    return p == 1 ? "ICMP" : p == 6 ? "TCP" : p == 17 ? "UDP" : "IP";
}

static void addr(char *out, unsigned a, unsigned port)
{
    const unsigned char *b = (const unsigned char *)&a;
    if (port)
        sprintf(out, "%u.%u.%u.%u:%u", b[0], b[1], b[2], b[3], port);
    else
        sprintf(out, "%u.%u.%u.%u", b[0], b[1], b[2], b[3]);
}

static int handle_event(void *ctx, void *data, size_t size)
{
    const struct pkt_event *e = data;
    char src[32], dst[32];
    addr(src, e->saddr, e->sport);
    addr(dst, e->daddr, e->dport);
    printf("%-4s %-5s %-21s -> %-21s %5u\n", e->outgoing ? "out" : "in", proto_name(e->proto), src, dst,
           e->len);
    if (remaining > 0 && --remaining == 0)
        return -1;
    return 0;
}

int main(int argc, char **argv)
{
    const char *target = NULL;
    int opt, err;
    struct sockfilter_bpf *skel;
    struct bpf_link *link = NULL;
    struct bpf_buffer *buf = NULL;

    while ((opt = getopt(argc, argv, "i:s:c:h")) != -1) {
        switch (opt) {
        case 'i': case 's': target = optarg; break;
        case 'c': remaining = atoi(optarg); break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (!target) {
        fputs(usage, stderr);
        return 2;
    }
    skel = sockfilter_bpf__open_and_load();
    if (!skel) {
        fprintf(stderr, "sockfilter: cannot load the BPF object: %s\n", strerror(errno));
        return 1;
    }
    link = bpf_program__attach_target(skel->progs.filter, target);
    buf = link ? bpf_buffer__open(skel->maps.events, handle_event, NULL) : NULL;
    if (!buf) {
        err = -errno;
        fprintf(stderr, "sockfilter: cannot attach to %s: %s\n", target, strerror(errno));
        goto out;
    }
    printf("%-4s %-5s %-21s    %-21s %5s\n", "DIR", "PROTO", "SOURCE", "DESTINATION", "LEN");
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
    sockfilter_bpf__destroy(skel);
    return err ? 1 : 0;
}
