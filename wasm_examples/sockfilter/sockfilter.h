/* sockfilter: one event per IPv4 packet a socket filter sees. */
#ifndef SOCKFILTER_H
#define SOCKFILTER_H

struct pkt_event {
    unsigned int saddr;      /* network byte order */
    unsigned int daddr;
    unsigned short sport;    /* host byte order; 0 for ICMP */
    unsigned short dport;
    unsigned int len;
    unsigned char proto;
    unsigned char outgoing;  /* pkt_type == PACKET_OUTGOING */
    unsigned char pad[2];
};

#endif
