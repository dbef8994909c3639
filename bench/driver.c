/* The benchmark's trigger: calls getppid() in a loop, either N times or for S
 * seconds, and prints how many calls it made. Its comm is BENCH_DRIVER_COMM, which
 * is what the BPF program filters on, or COMM when given (the soak's own name).
 *   wbpf-bench-drv count N [COMM] | wbpf-bench-drv seconds S [COMM]
 *   wbpf-bench-drv rounds N CALLS FD [COMM]
 * rounds (the drain figure): N times, make CALLS calls (a ring's worth of records),
 * write "go" to FD (the consumer's stdin) and wait for the consumer's line on
 * stdin ("drained RECORDS", its running count), so that the two alternate on one
 * CPU. Then close FD, copy the consumer's remaining lines (its result) to stdout
 * and print its own line, with the fewest and most records one round delivered. */
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

static int rounds(long n, long calls_per_round, int fd)
{
    FILE *go = fdopen(fd, "w");
    char line[256];
    unsigned long long last = 0, got, min = ~0ULL, max = 0;
    long done = 0;
    double start = now();

    if (!go) {
        perror("rounds: FD");
        return 2;
    }
    for (; done < n; done++) {
        for (long i = 0; i < calls_per_round; i++)
            syscall(SYS_getppid);
        fputs("go\n", go);
        fflush(go);
        if (!fgets(line, sizeof(line), stdin) || sscanf(line, "drained %llu", &got) != 1) {
            fprintf(stderr, "round %ld: the consumer answered %s", done, feof(stdin) ? "nothing\n" : line);
            return 1;
        }
        min = got - last < min ? got - last : min;
        max = got - last > max ? got - last : max;
        last = got;
    }
    double seconds = now() - start;
    fclose(go);
    while (fgets(line, sizeof(line), stdin))
        fputs(line, stdout);
    printf("{\"calls\": %ld, \"rounds\": %ld, \"round_min\": %llu, \"round_max\": %llu, \"seconds\": %.6f}\n",
           n * calls_per_round, done, n ? min : 0, max, seconds);
    return 0;
}

int main(int argc, char **argv)
{
    int is_rounds = (argc == 5 || argc == 6) && !strcmp(argv[1], "rounds");
    if (!is_rounds && (argc < 3 || argc > 4 || (strcmp(argv[1], "count") && strcmp(argv[1], "seconds")))) {
        fprintf(stderr, "usage: %s count N [COMM] | seconds S [COMM] | rounds N CALLS FD [COMM]\n", argv[0]);
        return 2;
    }
    const char *comm = is_rounds ? (argc == 6 ? argv[5] : NULL) : (argc == 4 ? argv[3] : NULL);
    prctl(PR_SET_NAME, comm ? comm : BENCH_DRIVER_COMM);
    if (is_rounds)
        return rounds(atol(argv[2]), atol(argv[3]), atoi(argv[4]));
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
