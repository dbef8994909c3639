/* tcpcc: what a TCP congestion control written in BPF was asked to do. */
#ifndef TCPCC_H
#define TCPCC_H

struct cc_stats {
    unsigned long long inits;
    unsigned long long cong_avoid;
    unsigned long long acked;      /* segments acknowledged, summed over cong_avoid */
    unsigned long long ssthresh;
    unsigned long long releases;
};

#endif
