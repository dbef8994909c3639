// SPDX-License-Identifier: GPL-2.0
/* The programs that need a BPF trampoline, for tests/test_attach_matrix.py: built
 * once per kind (TRAMP_FENTRY, TRAMP_FEXIT, TRAMP_FMOD_RET, TRAMP_LSM; see build.py)
 * into objects of one program each, because a kernel refuses the whole object when
 * it refuses one program: a kernel taking fentry but not LSM passes the fentry row.
 * The link guest built with OBJ_HEADER drives each like the matrix object. */
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

#if defined(TRAMP_FENTRY)
SEC("fentry/do_unlinkat")
int on_fentry(unsigned long long *ctx) { if (mine()) __sync_fetch_and_add(&ctl.fentry, 1); return 0; }
#elif defined(TRAMP_FEXIT)
SEC("fexit/do_unlinkat")
int on_fexit(unsigned long long *ctx) { if (mine()) __sync_fetch_and_add(&ctl.fexit, 1); return 0; }
#elif defined(TRAMP_FMOD_RET)
/* returns 0: security_file_open's own result stands */
SEC("fmod_ret/security_file_open")
int on_fmod_ret(unsigned long long *ctx) { if (mine()) __sync_fetch_and_add(&ctl.fmod_ret, 1); return 0; }
#elif defined(TRAMP_LSM)
SEC("lsm/file_open")
int on_lsm(unsigned long long *ctx) { if (mine()) __sync_fetch_and_add(&ctl.lsm, 1); return 0; }
#else
#error "build with one of -DTRAMP_FENTRY, -DTRAMP_FEXIT, -DTRAMP_FMOD_RET, -DTRAMP_LSM"
#endif
