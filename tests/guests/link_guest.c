/* Attach-matrix guest (tests/test_attach_matrix.py):
 *   link PID MODE PROG TARGET [PROG TARGET ...]    (TARGET "-" = NULL)
 * MODE run:    attach every PROG with wasm_bpf_attach_link, wait until stopped, print
 *              the counters, destroy the links.
 * MODE detach: attach, destroy the links at once, wait until stopped, print the counters.
 * MODE again:  attach, destroy, attach again, then as run.
 * MODE iter:   read iterator PROG's output twice with wasm_bpf_iter_read and print it.
 * Prints key=value lines: linkN=, destroyN=, destroy_again=, <counter>=, close=. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wasm_bpf_imports.h"
#ifdef OBJ_HEADER /* another object instead of the matrix (a tramp.bpf.c build) */
#include OBJ_HEADER
#define matrix_bpf_obj OBJ_ARRAY
#else
#include "matrix_bpf_obj.h"
#endif
#include "matrix_common.h"

#define EXT(name) __attribute__((import_module("wasm_bpf_ext"), import_name(name)))
EXT("wasm_bpf_attach_link") int64_t wasm_bpf_attach_link(uint64_t obj, const char *name, const char *target);
EXT("wasm_bpf_link_destroy") int wasm_bpf_link_destroy(int64_t link);
EXT("wasm_bpf_iter_read") int wasm_bpf_iter_read(uint64_t obj, const char *name, void *buf, int len);

static int on_record(void *ctx, void *data, int size) { return 0; }

static void wait_for_stop(uint64_t h)
{
    static char buf[16];
    int rb = wasm_bpf_map_fd_by_name(h, "rb"), err;
    printf("ready=1\n");
    fflush(stdout);
    while ((err = wasm_bpf_buffer_poll(h, rb, (int32_t)on_record, 0, buf, sizeof(buf), 50)) >= 0)
        ;
}

int main(int argc, char **argv)
{
    static char text[1 << 16];
    struct matrix_ctl ctl = {0};
    int64_t links[16];
    int nlinks = 0;
    uint32_t zero = 0;

    if (argc < 5 || (argc - 3) % 2) {
        fprintf(stderr, "usage: %s PID run|detach|iter PROG TARGET [PROG TARGET...]\n", argv[0]);
        return 2;
    }
    uint64_t h = wasm_load_bpf_object(matrix_bpf_obj, sizeof(matrix_bpf_obj));
    if (!h)
        return 3;
    int bss = wasm_bpf_map_fd_by_name(h, "obj.bss");
    ctl.target_pid = (unsigned)atoi(argv[1]);
    printf("arm=%d\n", wasm_bpf_map_operate(bss, 2, &zero, &ctl, 0, 0));

    if (!strcmp(argv[2], "iter")) {
        for (int round = 0; round < 2; round++) {
            int total = 0, n;
            while ((n = wasm_bpf_iter_read(h, argv[3], text + total, 4096)) > 0 && total < (int)sizeof(text) - 4096)
                total += n;
            printf("iter%d_bytes=%d\niter%d_end=%d\n", round, total, round, n);
            text[total] = 0;
            if (round == 0)
                fwrite(text, 1, total, stdout);
        }
        printf("close=%d\n", wasm_close_bpf_object(h));
        return 0;
    }
    for (int i = 3; i + 1 < argc && nlinks < 16; i += 2) {
        links[nlinks] = wasm_bpf_attach_link(h, argv[i], strcmp(argv[i + 1], "-") ? argv[i + 1] : 0);
        printf("link%d=%lld\n", nlinks, (long long)links[nlinks]);
        nlinks++;
    }
    if (!strcmp(argv[2], "detach") || !strcmp(argv[2], "again"))
        for (int i = 0; i < nlinks; i++)
            printf("destroy%d=%d\n", i, links[i] > 0 ? wasm_bpf_link_destroy(links[i]) : 0);
    if (!strcmp(argv[2], "again")) /* attach once more what was just detached */
        for (int i = 0, a = 3; i < nlinks; i++, a += 2) {
            links[i] = wasm_bpf_attach_link(h, argv[a], strcmp(argv[a + 1], "-") ? argv[a + 1] : 0);
            printf("again%d=%lld\n", i, (long long)links[i]);
        }
    fflush(stdout);
    wait_for_stop(h);
    printf("lookup=%d\n", wasm_bpf_map_operate(bss, 1, &zero, &ctl, 0, 0));
    {
        const char *names = MATRIX_COUNTERS;
        unsigned long long *c = &ctl.tp;
        for (int i = 0; i < MATRIX_NCOUNTERS; i++) {
            int len = strcspn(names, " ");
            printf("%.*s=%llu\n", len, names, c[i]);
            names += len + (names[len] == ' ');
        }
    }
    if (!strcmp(argv[2], "run") || !strcmp(argv[2], "again"))
        for (int i = 0; i < nlinks; i++)
            printf("destroy%d=%d\n", i, links[i] > 0 ? wasm_bpf_link_destroy(links[i]) : 0);
    printf("destroy_again=%d\n", nlinks && links[0] > 0 ? wasm_bpf_link_destroy(links[0]) : 0);
    printf("close=%d\n", wasm_close_bpf_object(h));
    return 0;
}
