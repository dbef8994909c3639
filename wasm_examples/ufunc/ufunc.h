/* ufunc: one event per return of a traced user-space function. */
#ifndef UFUNC_H
#define UFUNC_H

#define TASK_COMM_LEN 16

struct call_event {
    int pid;
    int tid;
    long long arg0;
    long long ret;
    unsigned long long ns;   /* entry to return */
    char comm[TASK_COMM_LEN];
};

#endif
