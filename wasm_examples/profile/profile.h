/* profile: CPU samples per (process, kernel stack, user stack). */
#ifndef PROFILE_H
#define PROFILE_H

#define TASK_COMM_LEN 16
#define MAX_STACK_DEPTH 32

struct sample_key {
    int pid;
    int kstack; /* stack id in `stacks`, < 0: none */
    int ustack;
    char comm[TASK_COMM_LEN];
};

#endif
