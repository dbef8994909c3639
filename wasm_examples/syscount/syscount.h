/* syscount: one record per system call, shared by syscount.bpf.c and syscount.c. */
#ifndef SYSCOUNT_H
#define SYSCOUNT_H

#define TASK_COMM_LEN 16

struct syscall_event {
    unsigned int pid;
    int nr;                    /* system call number */
    char comm[TASK_COMM_LEN];
};
_Static_assert(sizeof(struct syscall_event) == 24, "same layout on BPF and wasm32");

#endif
