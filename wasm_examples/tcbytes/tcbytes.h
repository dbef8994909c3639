/* tcbytes: packets and bytes through an interface, ingress and egress (tc). */
#ifndef TCBYTES_H
#define TCBYTES_H

struct dir_count {
    unsigned long long packets;
    unsigned long long bytes;
};

#endif
