/* profile: a sampling CPU profiler. A perf_event program runs at -F Hz on every CPU
 * (software cpu-clock, attached with the target "cpu-clock,freq=F"); after -d
 * seconds (or Ctrl-C) this side walks the sample map with bpf_map_get_next_key,
 * sorts it, and prints the hottest stacks. Kernel frames are named from a kallsyms
 * file when the guest can read one (wasm-bpf run --dir /proc ...). */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "profile.h"
#include "profile.skel.h"

#define MAX_SAMPLES 8192
#define MAX_ADDRS (MAX_SAMPLES * MAX_STACK_DEPTH)

static const char usage[] =
    "Usage: profile [-p PID] [-F HZ] [-d SECONDS] [-n TOP] [-K] [-k KALLSYMS]\n"
    "Samples on-CPU stacks and prints the hottest ones.\n"
    "  -p PID       only this process (default: all)\n"
    "  -F HZ        samples per second per CPU (default 99)\n"
    "  -d SECONDS   how long to sample (default: until Ctrl-C)\n"
    "  -n TOP       stacks to print (default 10)\n"
    "  -K           kernel stacks only\n"
    "  -k FILE      kallsyms for kernel symbols (default /proc/kallsyms; give the guest\n"
    "               the directory: wasm-bpf run --dir /proc profile.wasm ...)\n";

struct sample {
    struct sample_key key;
    unsigned long long count;
};

static struct sample samples[MAX_SAMPLES];
static unsigned long long addrs[MAX_ADDRS];   /* kernel addresses to name, sorted */
static char *names[MAX_ADDRS];
static int naddrs;

static int on_tick(void *ctx, void *data, size_t size) { return 0; }

static int by_count(const void *a, const void *b)
{
    const struct sample *x = a, *y = b;
    return x->count < y->count ? 1 : x->count > y->count ? -1 : 0;
}

static int by_addr(const void *a, const void *b)
{
    unsigned long long x = *(const unsigned long long *)a, y = *(const unsigned long long *)b;
    return x < y ? -1 : x > y;
}

static unsigned long long bases[MAX_ADDRS];  /* per address: its symbol's start */

static int lower_bound(const unsigned long long *v, int n, unsigned long long x)
{
    int lo = 0, hi = n;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (v[mid] < x)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo;
}

/* Two passes over kallsyms (which need not be sorted): first the start of the
 * closest symbol at or below each address, then the names of those starts. */
static void name_kernel_addrs(const char *path)
{
    char line[512], sym[256], type;
    unsigned long long a;
    FILE *f;

    if (naddrs == 0 || !(f = fopen(path, "r")))
        return;
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "%llx %c", &a, &type) != 2 || a == 0)
            continue;
        /* best(x) = max symbol <= x is nondecreasing in x: stop at the first kept */
        for (int j = lower_bound(addrs, naddrs, a); j < naddrs && bases[j] < a; j++)
            bases[j] = a;
    }
    rewind(f);
    while (fgets(line, sizeof(line), f)) {
        if (sscanf(line, "%llx %c %255s", &a, &type, sym) != 3 || a == 0)
            continue;
        for (int j = 0; j < naddrs; j++)
            if (bases[j] == a && !names[j])
                names[j] = strdup(sym);
    }
    fclose(f);
}

static const char *kernel_name(unsigned long long addr, char *buf, size_t size)
{
    int lo = 0, hi = naddrs;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (addrs[mid] < addr)
            lo = mid + 1;
        else
            hi = mid;
    }
    if (lo < naddrs && addrs[lo] == addr && names[lo]) {
        snprintf(buf, size, "%s+0x%llx", names[lo], addr - bases[lo]);
        return buf;
    }
    snprintf(buf, size, "0x%llx", addr);
    return buf;
}

int main(int argc, char **argv)
{
    const char *kallsyms = "/proc/kallsyms";
    int pid = 0, freq = 99, top = 10, kernel_only = 0, opt, err = 0, stacks_fd, samples_fd;
    double duration = 0;
    size_t n = 0;
    struct profile_bpf *skel;
    struct bpf_buffer *ticks = NULL;
    struct bpf_link *link = NULL;
    struct sample_key key, next;
    char target[96], buf[320];
    static unsigned long long ips[MAX_STACK_DEPTH];

    while ((opt = getopt(argc, argv, "p:F:d:n:Kk:h")) != -1) {
        switch (opt) {
        case 'p': pid = atoi(optarg); break;
        case 'F': freq = atoi(optarg); break;
        case 'd': duration = atof(optarg); break;
        case 'n': top = atoi(optarg); break;
        case 'K': kernel_only = 1; break;
        case 'k': kallsyms = optarg; break;
        case 'h': fputs(usage, stdout); return 0;
        default: fputs(usage, stderr); return 2;
        }
    }
    if (freq <= 0 || top <= 0) {
        fputs(usage, stderr);
        return 2;
    }
    skel = profile_bpf__open();
    if (!skel)
        return 1;
    skel->rodata->target_pid = pid;
    skel->rodata->kernel_only = kernel_only;
    if ((err = profile_bpf__load(skel))) {
        fprintf(stderr, "profile: cannot load the BPF object: %s\n", strerror(-err));
        goto out;
    }
    snprintf(target, sizeof(target), "cpu-clock,freq=%d", freq);   /* one perf event per CPU */
    link = bpf_program__attach_target(skel->progs.do_sample, target);
    ticks = bpf_buffer__open(skel->maps.ticks, on_tick, NULL);
    if (!link || !ticks) {
        err = -errno;
        fprintf(stderr, "profile: cannot attach (%s): %s\n", target, strerror(errno));
        goto out;
    }
    printf("Sampling at %d Hz%s... Hit Ctrl-C to end.\n", freq, duration > 0 ? " for a while" : "");
    fflush(stdout);
    err = bpf_buffer__poll(ticks, duration > 0 ? (int)(duration * 1000) : -1);
    if (err < 0 && err != -EINTR)
        goto out;
    err = 0;
    bpf_link__destroy(link);   /* stop sampling before reading */
    link = NULL;

    samples_fd = bpf_map__fd(skel->maps.samples);
    stacks_fd = bpf_map__fd(skel->maps.stacks);
    for (int e = bpf_map_get_next_key(samples_fd, NULL, &next); !e && n < MAX_SAMPLES;
         e = bpf_map_get_next_key(samples_fd, &key, &next)) {
        samples[n].key = next;
        if (!bpf_map_lookup_elem(samples_fd, &next, &samples[n].count))
            n++;
        key = next;
    }
    qsort(samples, n, sizeof(samples[0]), by_count);
    if ((size_t)top > n)
        top = (int)n;
    for (int i = 0; i < top; i++)   /* kernel addresses of the stacks to print */
        if (samples[i].key.kstack >= 0 &&
            !bpf_map_lookup_elem(stacks_fd, &samples[i].key.kstack, ips))
            for (int d = 0; d < MAX_STACK_DEPTH && ips[d] && naddrs < MAX_ADDRS; d++)
                addrs[naddrs++] = ips[d];
    qsort(addrs, naddrs, sizeof(addrs[0]), by_addr);
    name_kernel_addrs(kallsyms);

    unsigned long long total = 0;
    for (size_t i = 0; i < n; i++)
        total += samples[i].count;
    printf("%llu samples, %zu distinct stacks\n\n", total, n);
    for (int i = 0; i < top; i++) {
        const struct sample *s = &samples[i];
        if (s->key.kstack >= 0 && !bpf_map_lookup_elem(stacks_fd, &s->key.kstack, ips))
            for (int d = 0; d < MAX_STACK_DEPTH && ips[d]; d++)
                printf("    [k] %s\n", kernel_name(ips[d], buf, sizeof(buf)));
        if (s->key.ustack >= 0 && !bpf_map_lookup_elem(stacks_fd, &s->key.ustack, ips))
            for (int d = 0; d < MAX_STACK_DEPTH && ips[d]; d++)
                printf("    [u] 0x%llx\n", ips[d]);
        if (s->key.kstack < 0 && s->key.ustack < 0)
            printf("    (no stack)\n");
        printf("    -- %s (%d): %llu samples (%.1f%%)\n\n", s->key.comm, s->key.pid, s->count,
               total ? 100.0 * s->count / total : 0);
    }
out:
    bpf_link__destroy(link);
    bpf_buffer__free(ticks);
    profile_bpf__destroy(skel);
    return err ? 1 : 0;
}
