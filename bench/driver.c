/* The benchmark's trigger: calls getppid() in a loop, either N times or for S
 * seconds, and prints how many calls it made. Its comm is BENCH_DRIVER_COMM, which
 * is what the BPF program filters on, or COMM when given (the soak's own name).
 *   wbpf-bench-drv count N [COMM] | wbpf-bench-drv seconds S [COMM] */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>
#include "bench.h"

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    if (argc < 3 || argc > 4 || (strcmp(argv[1], "count") && strcmp(argv[1], "seconds"))) {
        fprintf(stderr, "usage: %s count N [COMM] | seconds S [COMM]\n", argv[0]);
        return 2;
    }
    prctl(PR_SET_NAME, argc == 4 ? argv[3] : BENCH_DRIVER_COMM);
    long calls = 0;
    double start = now();
    if (!strcmp(argv[1], "count")) {
        long n = atol(argv[2]);
        for (; calls < n; calls++)
            syscall(SYS_getppid);
    } else {
        double end = start + atof(argv[2]);
        while (now() < end) {
            for (int i = 0; i < 64; i++)
                syscall(SYS_getppid);
            calls += 64;
        }
    }
    printf("{\"calls\": %ld, \"seconds\": %.6f}\n", calls, now() - start);
    return 0;
}
