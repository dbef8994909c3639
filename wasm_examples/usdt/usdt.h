/* usdt: one event per hit of a USDT probe, with its arguments. */
#ifndef USDT_H
#define USDT_H

#define TASK_COMM_LEN 16
#define USDT_MAX_ARGS 6

struct probe_event {
    int pid;
    int nargs;
    long long args[USDT_MAX_ARGS];
    char comm[TASK_COMM_LEN];
};

#endif
