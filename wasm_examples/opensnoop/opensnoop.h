/* SPDX-License-Identifier: MIT */
/* Event shared by opensnoop.bpf.c (BPF) and opensnoop.c (wasm32). */
#ifndef OPENSNOOP_H
#define OPENSNOOP_H

#ifndef __bpf__
#include <stdint.h>
#endif

#define TASK_COMM_LEN 16
#define MAX_PATH_LEN 256

struct event {
	int32_t pid;    /* thread group id of the caller */
	int32_t fd;     /* the new file descriptor, -1 on failure */
	int32_t err;    /* errno of a failed open, 0 on success */
	int32_t flags;  /* open flags (O_RDONLY, O_CREAT, ...) */
	char comm[TASK_COMM_LEN];
	char path[MAX_PATH_LEN]; /* as passed by the caller (may be relative) */
};

_Static_assert(sizeof(struct event) == 16 + TASK_COMM_LEN + MAX_PATH_LEN,
	       "struct event must have the same layout on every target");

#endif /* OPENSNOOP_H */
