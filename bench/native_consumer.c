/* The native reference consumer: plain libbpf, the same object as the Wasm one.
 *   native_consumer drain|stream|load OBJECT.bpf.o [COMM]
 * Same protocol as wasm_consumer.c (drain: rounds, see there). `load` loads, attaches and closes, prints the
 * time that took (the kernel's own cost of a hot load) and exits. */
#include <errno.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <time.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "bench.h"

struct tally {
    unsigned long long records, next_seq, out_of_order;
};

static volatile sig_atomic_t stopping;

static void on_signal(int sig)
{
    stopping = 1;
}

static int on_record(void *ctx, void *data, size_t size)
{
    struct tally *t = ctx;
    const struct bench_event *e = data;

    if (e->seq != t->next_seq || e->payload[4] != e->seq * 31 + 4)
        t->out_of_order++;
    t->next_seq = e->seq + 1;
    t->records++;
    return 0;
}

static double now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec + ts.tv_nsec / 1e9;
}

static int silent(enum libbpf_print_level level, const char *fmt, va_list ap)
{
    return level == LIBBPF_WARN ? vfprintf(stderr, fmt, ap) : 0;
}

int main(int argc, char **argv)
{
    struct tally tally = {0};
    struct bpf_object *obj;
    struct bpf_program *prog;
    struct bpf_link *link;
    struct ring_buffer *rb;
    char line[16];
    int err = 0;

    if (argc != 3 && argc != 4) {
        fprintf(stderr, "usage: %s drain|stream|load OBJECT.bpf.o [COMM]\n", argv[0]);
        return 2;
    }
    libbpf_set_print(silent);
    double t0 = now();
    obj = bpf_object__open_file(argv[2], NULL);
    if (!obj)
        return 1;
    if (argc == 4) { /* the driver's name the program waits for, as the Wasm consumers' COMM */
        char comm[16] = {0}; /* driver_comm, .rodata's only variable */
        strncpy(comm, argv[3], sizeof(comm) - 1);
        if (bpf_map__set_initial_value(bpf_object__find_map_by_name(obj, ".rodata"), comm, sizeof(comm)))
            return 1;
    }
    if (bpf_object__load(obj))
        return 1;
    prog = bpf_object__find_program_by_name(obj, "produce");
    link = bpf_program__attach(prog);
    if (!link)
        return 1;
    if (!strcmp(argv[1], "load")) {
        double attached = now();
        bpf_link__destroy(link);
        bpf_object__close(obj);
        printf("{\"load_attach_seconds\": %.6f, \"load_attach_close_seconds\": %.6f}\n",
               attached - t0, now() - t0);
        return 0;
    }
    rb = ring_buffer__new(bpf_map__fd(bpf_object__find_map_by_name(obj, "rb")), on_record, &tally, NULL);
    if (!rb)
        return 1;
    signal(SIGINT, on_signal);
    signal(SIGTERM, on_signal);
    printf("ready\n");
    fflush(stdout);

    int stream = !strcmp(argv[1], "stream");
    double start = 0, end;
    double drain_seconds = 0;
    if (!stream) {
        /* One round per line: consume until the ring is empty; the time counted is
         * the consume calls' alone. */
        while (err >= 0 && fgets(line, sizeof(line), stdin)) {
            double t = now();
            while ((err = ring_buffer__consume(rb)) > 0)
                ;
            drain_seconds += now() - t;
            printf("drained %llu\n", tally.records);
            fflush(stdout);
        }
    } else {
        while (!stopping) {
            err = ring_buffer__poll(rb, 100);
            if (err == -EINTR) {
                err = 0;
                break;
            }
            if (err < 0)
                break;
        }
    }
    end = stream ? now() : drain_seconds;
    while (stream && ring_buffer__consume(rb) > 0)
        ;
    struct bench_counters counters = {0};
    unsigned int zero = 0;
    bpf_map_lookup_elem(bpf_map__fd(bpf_object__find_map_by_name(obj, ".bss")), &zero, &counters);
    printf("{\"records\": %llu, \"seconds\": %.6f, \"out_of_order\": %llu, \"emitted\": %llu, "
           "\"drops\": %llu, \"error\": %d}\n",
           tally.records, end - start, tally.out_of_order, counters.emitted, counters.drops,
           err < 0 ? err : 0);
    ring_buffer__free(rb);
    bpf_link__destroy(link);
    bpf_object__close(obj);
    return err < 0 ? 1 : 0;
}
