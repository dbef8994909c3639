/* xdpcount: packets and bytes per IP protocol seen by XDP on one interface. */
#ifndef XDPCOUNT_H
#define XDPCOUNT_H

#define XDPCOUNT_PROTOS 256 /* index: IP protocol number; 255: not IPv4/IPv6 */

struct proto_count {
    unsigned long long packets;
    unsigned long long bytes;
};

#endif
