// SPDX-License-Identifier: GPL-2.0
/* fentry, fexit and LSM programs for tests/test_attach_matrix.py, in an object of
 * their own: kernels that refuse BPF trampolines refuse the whole object at load.
 * The link guest built with -DTRAMP drives it like the matrix object. */
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "matrix_common.h"

char LICENSE[] SEC("license") = "GPL";

struct matrix_ctl ctl;

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 4096);
} rb SEC(".maps");

static __always_inline int mine(void)
{
    return ctl.target_pid && (bpf_get_current_pid_tgid() >> 32) == ctl.target_pid;
}

SEC("fentry/do_unlinkat")
int on_fentry(unsigned long long *ctx) { if (mine()) __sync_fetch_and_add(&ctl.fentry, 1); return 0; }

SEC("fexit/do_unlinkat")
int on_fexit(unsigned long long *ctx) { if (mine()) __sync_fetch_and_add(&ctl.fexit, 1); return 0; }

SEC("lsm/file_open")
int on_lsm(unsigned long long *ctx) { if (mine()) __sync_fetch_and_add(&ctl.lsm, 1); return 0; }
