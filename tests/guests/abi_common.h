/* Layouts shared by the test BPF object (abi.bpf.c) and the Wasm guests. */
#ifndef ABI_COMMON_H
#define ABI_COMMON_H

/* One record, written to the ring buffer and to the perf event array. */
struct abi_rec {
    unsigned int seq;     /* 0, 1, 2 ... per buffer */
    unsigned int pid;     /* tgid that called getppid */
    unsigned int kind;    /* 1 ring, 2 perf */
    unsigned int magic;   /* ABI_REC_MAGIC */
    unsigned char payload[48]; /* payload[i] = seq + i */
};
#define ABI_REC_MAGIC 0x5eedbeefu
#define ABI_KIND_RING 1
#define ABI_KIND_PERF 2

/* The object's whole .bss section: the guest writes it through map_operate(key 0)
 * to arm the program; nothing is emitted while target_pid is 0. */
struct abi_ctl {
    unsigned int target_pid; /* only getppid() calls of this tgid count */
    unsigned int nrec;       /* records per getppid() call and buffer, at most 8 */
    unsigned int ring_limit; /* stop emitting after this many ring records */
    unsigned int perf_limit; /* ... perf records */
    unsigned int ring_sent;
    unsigned int perf_sent;
    unsigned long long hits; /* matching getppid() calls */
};

/* Value of the per-CPU array: 12 bytes, so the per-CPU stride is 16. */
struct abi_pcpu {
    unsigned int a, b, c;
};

#define ABI_DATA_MAGIC 0x1122334455667788ull  /* initial value of .data */
#define ABI_RODATA_MAGIC 0xc0ffee11u          /* value of .rodata */

#endif
