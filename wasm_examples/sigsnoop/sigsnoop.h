/* SPDX-License-Identifier: MIT */
/* Event shared by sigsnoop.bpf.c (BPF) and sigsnoop.c (wasm32). */
#ifndef SIGSNOOP_H
#define SIGSNOOP_H

#ifndef __bpf__
#include <stdint.h>
#endif

#define TASK_COMM_LEN 16

struct event {
	int32_t pid;    /* sender (thread group id) */
	int32_t tpid;   /* target pid (kill) or thread id (tkill, tgkill) */
	int32_t sig;    /* signal number, 0 = existence check */
	int32_t ret;    /* syscall result: 0 or -errno */
	char comm[TASK_COMM_LEN]; /* sender's command name */
};

_Static_assert(sizeof(struct event) == 32, "struct event must be 32 bytes on every target");

#endif /* SIGSNOOP_H */
