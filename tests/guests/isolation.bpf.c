// SPDX-License-Identifier: GPL-2.0
/* An object that loads, and about which libbpf logs at info level (the level -v
 * shows) that it skips the unrecognized data section .odd: for the libbpf log tests
 * of tests/test_isolation.py. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

int odd_data SEC(".odd") = 1;

SEC("tp/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
    return 0;
}
