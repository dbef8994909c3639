/* SPDX-License-Identifier: MIT */
/* Event shared by bootstrap.bpf.c (BPF) and bootstrap.c (wasm32).
 * Only fixed-width fields, ordered so that both targets lay it out the same. */
#ifndef BOOTSTRAP_H
#define BOOTSTRAP_H

#ifndef __bpf__
#include <stdint.h>
#endif

#define TASK_COMM_LEN 16
#define MAX_FILENAME_LEN 128

enum bootstrap_event_kind {
	EVENT_EXEC = 1,
	EVENT_EXIT = 2,
};

struct event {
	uint64_t duration_ns;      /* EXIT: time since exec (0 if the exec was not seen) */
	int32_t pid;
	int32_t ppid;
	uint32_t exit_code;        /* EXIT: the status byte passed to exit() */
	uint32_t kind;             /* enum bootstrap_event_kind */
	char comm[TASK_COMM_LEN];
	char filename[MAX_FILENAME_LEN]; /* EXEC: path of the new program */
};

_Static_assert(sizeof(struct event) == 168, "struct event must be 168 bytes on every target");

#endif /* BOOTSTRAP_H */
