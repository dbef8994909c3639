/* Layouts shared by attach.bpf.c and attach_guest.c. */
#ifndef ATTACH_COMMON_H
#define ATTACH_COMMON_H

struct attach_rec {
    unsigned int pid;
    unsigned int kind; /* ATTACH_KIND_* */
};
#define ATTACH_KIND_ENTRY 1
#define ATTACH_KIND_RETURN 2

/* The object's whole .bss. */
struct attach_ctl {
    unsigned int target_pid;          /* the probes only count this tgid */
    unsigned int pad;
    unsigned long long probe_hits;
    unsigned long long egress_packets;
};

#endif
