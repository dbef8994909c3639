/* Attach-target guest: attach PROG [TARGET|-] [PID]
 * Loads attach.bpf.o, arms .bss with PID, attaches PROG with TARGET ("-" = NULL),
 * prints attach=N, then polls the ring buffer until -EINTR and prints what came:
 * records=, entries=, returns=, probe_hits=, egress_packets=, close=. */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wasm_bpf_imports.h"
#include "attach_bpf_obj.h"
#include "attach_common.h"

static int records, entries, returns;

static int on_record(void *ctx, void *data, int size)
{
    const struct attach_rec *r = data;
    records++;
    entries += r->kind == ATTACH_KIND_ENTRY;
    returns += r->kind == ATTACH_KIND_RETURN;
    return 0;
}

int main(int argc, char **argv)
{
    static char buf[64];
    struct attach_ctl ctl = {0};
    uint32_t zero = 0;
    int err;

    if (argc < 3) {
        fprintf(stderr, "usage: %s PROG TARGET|- [PID]\n", argv[0]);
        return 2;
    }
    uint64_t h = wasm_load_bpf_object(attach_bpf_obj, sizeof(attach_bpf_obj));
    if (!h)
        return 3;
    int bss = wasm_bpf_map_fd_by_name(h, "attach.bss");
    ctl.target_pid = argc > 3 ? (unsigned)atoi(argv[3]) : 0;
    printf("arm=%d\n", wasm_bpf_map_operate(bss, 2, &zero, &ctl, 0, 0));
    printf("attach=%d\n", wasm_attach_bpf_program(h, argv[1], strcmp(argv[2], "-") ? argv[2] : 0));
    fflush(stdout);

    int rb = wasm_bpf_map_fd_by_name(h, "rb");
    while ((err = wasm_bpf_buffer_poll(h, rb, (int32_t)on_record, 0, buf, sizeof(buf), 100)) >= 0)
        ;
    printf("poll_end=%d\n", err == -EINTR ? 0 : err);
    printf("lookup=%d\n", wasm_bpf_map_operate(bss, 1, &zero, &ctl, 0, 0));
    printf("records=%d\nentries=%d\nreturns=%d\n", records, entries, returns);
    printf("probe_hits=%llu\negress_packets=%llu\n", ctl.probe_hits, ctl.egress_packets);
    printf("close=%d\n", wasm_close_bpf_object(h));
    return 0;
}
