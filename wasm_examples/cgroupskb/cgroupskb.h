/* cgroupskb: packets and bytes in and out of the sockets of one cgroup. */
#ifndef CGROUPSKB_H
#define CGROUPSKB_H

struct traffic {
    unsigned long long packets;
    unsigned long long bytes;
};

#endif
