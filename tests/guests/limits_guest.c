/* The resource-limit guest (tests/test_limits.py): one scenario per run, argv[1].
 *
 *   memory          allocate 1 MiB blocks until malloc fails; print the count, exit 3
 *   spin            compute forever without calling the host
 *   objects N       load the ABI object N times; print each handle's validity
 *   links           attach the tracepoint and the XDP program (on lo), close the
 *                   object, then attach the tracepoint of a new one; print each result
 *   load            load once; print whether it worked
 *   callback PID    arm the tracepoint for PID and poll its ring buffer with a
 *                   callback that never returns
 *
 * It prints "key=value" lines, as the other test guests do. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "abi_bpf_obj.h"
#include "abi_common.h"
#include "wasm_bpf_imports.h"

static uint64_t load(void) { return wasm_load_bpf_object(abi_bpf_obj, (int)sizeof(abi_bpf_obj)); }

static volatile uint64_t sink;
static void *volatile kept; /* so the allocations below are not optimised away */

static void spin(void)
{
    for (uint64_t i = 0;; i++)
        sink = i;
}

static int spin_callback(void *ctx, void *data, int size)
{
    (void)ctx, (void)data, (void)size;
    printf("in_callback=1\n");
    fflush(stdout);
    spin();
    return 0;
}

static int arm(uint64_t h, unsigned pid)
{
    int fd = wasm_bpf_map_fd_by_name(h, "abi.bss");
    struct abi_ctl ctl = {0};
    uint32_t zero = 0;

    ctl.target_pid = pid;
    ctl.nrec = 1;
    ctl.ring_limit = 1000000;
    ctl.perf_limit = 0;
    return fd < 0 ? fd : wasm_bpf_map_operate(fd, WB_UPDATE, &zero, &ctl, 0, 0);
}

int main(int argc, char **argv)
{
    const char *what = argc > 1 ? argv[1] : "";
    int n = argc > 2 ? atoi(argv[2]) : 0;

    if (!strcmp(what, "memory")) {
        int blocks = 0;
        while ((kept = malloc(1 << 20)) != NULL)
            blocks++;
        printf("blocks=%d\n", blocks);
        return 3;
    }
    if (!strcmp(what, "spin"))
        spin();
    if (!strcmp(what, "objects")) {
        for (int i = 0; i < n; i++)
            printf("load%d=%d\n", i, load() != 0);
        return 0;
    }
    if (!strcmp(what, "load")) {
        printf("loaded=%d\n", load() != 0);
        return 0;
    }
    if (!strcmp(what, "links")) {
        uint64_t h = load();
        printf("attach_tp=%d\n", wasm_attach_bpf_program(h, "on_getppid", 0));
        printf("attach_xdp=%d\n", wasm_attach_bpf_program(h, "xdp_pass", "lo"));
        wasm_close_bpf_object(h);
        h = load();
        printf("attach_again=%d\n", wasm_attach_bpf_program(h, "on_getppid", 0));
        return 0;
    }
    if (!strcmp(what, "callback")) {
        static char buf[256];
        uint64_t h = load();
        int fd = wasm_bpf_map_fd_by_name(h, "rb");

        printf("arm=%d\n", arm(h, (unsigned)n));
        printf("attach=%d\n", wasm_attach_bpf_program(h, "on_getppid", 0));
        fflush(stdout);
        for (;;)
            wasm_bpf_buffer_poll(h, fd, (int32_t)(uintptr_t)spin_callback, 0, buf, sizeof(buf), 100);
    }
    printf("unknown scenario %s\n", what);
    return 2;
}
