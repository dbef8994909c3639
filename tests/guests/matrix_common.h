/* Layouts shared by matrix.bpf.c and link_guest.c. */
#ifndef MATRIX_COMMON_H
#define MATRIX_COMMON_H

/* The object's whole .bss: the pid the tracing programs count, and one counter per
 * program (the guest prints them by name). */
struct matrix_ctl {
    unsigned int target_pid;
    unsigned int pad;
    unsigned long long tp, raw_tp, tp_btf, uprobe, uretprobe, usdt, kprobe, perf_event;
    unsigned long long xdp, tc, socket, sock_create, connect4, sysctl, device, sockops, sk_msg, sk_skb;
    unsigned long long fentry, fexit, fmod_ret, lsm; /* tramp.bpf.c */
};
#define MATRIX_COUNTERS "tp raw_tp tp_btf uprobe uretprobe usdt kprobe perf_event xdp tc socket " \
    "sock_create connect4 sysctl device sockops sk_msg sk_skb fentry fexit fmod_ret lsm"
#define MATRIX_NCOUNTERS 22

#endif
