/* SPDX-License-Identifier: MIT */
/* Event shared by execve.bpf.c (BPF) and execve.c (wasm32). */
#ifndef EXECVE_H
#define EXECVE_H

#ifndef __bpf__
#include <stdint.h>
#endif

#define TASK_COMM_LEN 16
#define MAX_ARGS 8      /* argv entries captured per exec */
#define ARG_LEN 64      /* bytes captured per argv entry, including the NUL */

struct event {
	int32_t pid;       /* process calling execve */
	int32_t ppid;
	uint32_t argc;     /* entries filled in args[] */
	uint32_t truncated; /* 1: argv had more than MAX_ARGS entries */
	char comm[TASK_COMM_LEN]; /* command name before the exec */
	char args[MAX_ARGS][ARG_LEN];
};

_Static_assert(sizeof(struct event) == 32 + MAX_ARGS * ARG_LEN,
	       "struct event must have the same layout on every target");

#endif /* EXECVE_H */
