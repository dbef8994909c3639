/* unlinkwatch: file removals seen by fentry/fexit, and rmdir vetoed by an LSM hook. */
#ifndef UNLINKWATCH_H
#define UNLINKWATCH_H

#define TASK_COMM_LEN 16
#define NAME_LEN 64

enum unlink_kind { UNLINK_DONE = 1, RMDIR_DENIED = 2 };

struct unlink_event {
    int pid;
    int kind;     /* enum unlink_kind */
    long long ret;
    char comm[TASK_COMM_LEN];
    char name[NAME_LEN];
};

#endif
