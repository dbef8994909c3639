/* SPDX-License-Identifier: MIT */
/* Histogram shared by runqlat.bpf.c (BPF) and runqlat.c (wasm32). */
#ifndef RUNQLAT_H
#define RUNQLAT_H

#ifndef __bpf__
#include <stdint.h>
#endif

/* slot i counts latencies in [2^i, 2^(i+1)), slot 0 also counts 0;
 * the last slot collects everything larger */
#define MAX_SLOTS 27

struct hist {
	uint64_t slots[MAX_SLOTS];
};

_Static_assert(sizeof(struct hist) == 8 * MAX_SLOTS,
	       "struct hist must have the same layout on every target");

#endif /* RUNQLAT_H */
