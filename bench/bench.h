/* Shared by the benchmark's BPF object and its consumers. */
#ifndef BENCH_H
#define BENCH_H

/* One record: 56 bytes, the same layout on BPF and wasm32. */
struct bench_event {
    unsigned long long seq;     /* 0, 1, 2 ... in emission order */
    unsigned int pid;
    unsigned int cpu;
    unsigned long long payload[5];
};
_Static_assert(sizeof(struct bench_event) == 56, "bench_event must be 56 bytes");

/* The object's .bss. */
struct bench_counters {
    unsigned long long emitted; /* records emitted, also the next sequence number */
    unsigned long long drops;   /* records the ring had no room for */
};

/* The driver's process name: the BPF program only fires for it. */
#define BENCH_DRIVER_COMM "wbpf-bench-drv"

#endif
