/* taskiter: one fixed-size record per process, written by a task iterator. */
#ifndef TASKITER_H
#define TASKITER_H

#define TASK_COMM_LEN 16

struct task_rec {
    int pid;
    int ppid;
    unsigned int threads;
    unsigned int state;
    unsigned long long rss_pages;
    char comm[TASK_COMM_LEN];
};

#endif
