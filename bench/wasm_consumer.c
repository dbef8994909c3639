/* The wasm-bpf consumer of the benchmark, per-record callback or batch extension.
 *   wasm_consumer drain|stream record|batch [COMM [DONE]]
 * COMM replaces the driver's name the BPF program waits for (BENCH_DRIVER_COMM).
 * Prints "ready" once attached. drain: rounds; for every line on stdin (the driver's
 * "go": it has filled the ring), consumes until the ring is empty and answers
 * "drained RECORDS" (the running count); at the end of stdin prints the result, whose
 * seconds are the drain loops' alone; stream: polls until stopped
 * (-EINTR), or with DONE (a file the soak creates once its driver has ended) until
 * that file exists and every record the program emitted has arrived, and prints
 * the result. Results are one JSON line. */
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "bench.h"
#include "bench.skel.h"

struct tally {
    unsigned long long records, next_seq, out_of_order;
};

static void check(struct tally *t, const struct bench_event *e)
{
    if (e->seq != t->next_seq || e->payload[4] != e->seq * 31 + 4)
        t->out_of_order++;
    t->next_seq = e->seq + 1;
    t->records++;
}

static int on_record(void *ctx, void *data, size_t size)
{
    check(ctx, data);
    return 0;
}

static int on_batch(void *ctx, void *data, size_t size, size_t count)
{
    struct bpf_buffer_record *rec = data;
    for (size_t i = 0; i < count; i++, rec = bpf_buffer_record__next(rec))
        check(ctx, (const struct bench_event *)rec->data);
    return 0;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

int main(int argc, char **argv)
{
    struct tally tally = {0};
    struct bench_bpf *skel;
    struct bpf_buffer *buf;
    int batch, stream, err = 0;
    char line[16];

    if (argc < 3 || argc > 5) {
        fprintf(stderr, "usage: %s drain|stream record|batch [COMM [DONE]]\n", argv[0]);
        return 2;
    }
    const char *done = argc == 5 ? argv[4] : NULL;
    stream = !strcmp(argv[1], "stream");
    batch = !strcmp(argv[2], "batch");
    skel = bench_bpf__open();
    if (skel && argc >= 4)
        strncpy((char *)skel->rodata->driver_comm, argv[3], sizeof(skel->rodata->driver_comm) - 1);
    if (!skel || bench_bpf__load(skel) || bench_bpf__attach(skel)) {
        fprintf(stderr, "cannot load or attach the benchmark object\n");
        return 1;
    }
    buf = batch ? bpf_buffer__open_batch(skel->maps.rb, on_batch, &tally)
                : bpf_buffer__open(skel->maps.rb, on_record, &tally);
    if (!buf)
        return 1;
    printf("ready\n");
    fflush(stdout);

    double start = 0, end, drain_seconds = 0;
    if (!stream) {
        while (!err && fgets(line, sizeof(line), stdin)) {
            double t = now();
            int n;
            while ((n = batch ? bpf_buffer__poll_batch(buf, 0) : bpf_buffer__poll(buf, 0)) > 0)
                ;
            drain_seconds += now() - t;
            err = n < 0 ? n : 0;
            printf("drained %llu\n", tally.records);
            fflush(stdout);
        }
    }
    while (stream) {
        int n = batch ? bpf_buffer__poll_batch(buf, 100) : bpf_buffer__poll(buf, 100);
        if (n == -EINTR)
            break;
        if (n < 0) {
            err = n;
            break;
        }
        /* Idle: if the producer has finished, stop once all it emitted has arrived. */
        if (done && n == 0 && access(done, F_OK) == 0) {
            bpf_map__refresh(skel->maps.bss);
            if (tally.records == skel->bss->counters.emitted)
                break;
        }
    }
    end = stream ? now() : drain_seconds;
    /* After a stop, collect what is still in the ring. */
    while (stream && (batch ? bpf_buffer__poll_batch(buf, 0) : bpf_buffer__poll(buf, 0)) > 0)
        ;
    bpf_map__refresh(skel->maps.bss);
    printf("{\"records\": %llu, \"seconds\": %.6f, \"out_of_order\": %llu, \"emitted\": %llu, "
           "\"drops\": %llu, \"error\": %d}\n",
           tally.records, end - start, tally.out_of_order, (unsigned long long)skel->bss->counters.emitted,
           (unsigned long long)skel->bss->counters.drops, err);
    bpf_buffer__free(buf);
    bench_bpf__destroy(skel);
    return err ? 1 : 0;
}
