// SPDX-License-Identifier: GPL-2.0
/* A map pinned by name, for the pinning tests of tests/test_limits.py. Its name is
 * as long as "../../pinesc", so a test can craft an object whose map name climbs
 * out of the pin root by replacing the bytes. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>

char LICENSE[] SEC("license") = "GPL";

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 16);
    __type(key, __u32);
    __type(value, __u64);
    __uint(pinning, LIBBPF_PIN_BY_NAME);
} wbpf_pin_map SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4096);
} rb SEC(".maps"); /* never written: the guest polls it to wait */

SEC("tp/syscalls/sys_enter_getppid")
int count_getppid(void *ctx)
{
    __u32 key = 0;
    __u64 *value = bpf_map_lookup_elem(&wbpf_pin_map, &key);

    if (value)
        __sync_fetch_and_add(value, 1);
    return 0;
}
