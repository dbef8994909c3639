/* sysclass: what the guest and the BPF side share. */
#ifndef SYSCLASS_H
#define SYSCLASS_H

/* System call classes: the index of each class's handler in the prog array. */
enum sys_class { CLASS_OTHER, CLASS_FILE, CLASS_NET, CLASS_MEM, CLASS_PROC, NCLASSES };

#define MAX_SYSCALL 512

/* A command the guest sends through the user ring buffer. */
struct watch_cmd {
    unsigned int pid;
    unsigned int watch; /* 1: count this process's system calls, 0: stop */
};
_Static_assert(sizeof(struct watch_cmd) == 8, "same layout in BPF and wasm32");

#endif
