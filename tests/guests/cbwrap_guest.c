/* A guest in the TinyGo style: polls through callback-wrapper.wasm_bpf_buffer_poll
 * (i64, i32, i32, i32, i32, i32) -> i32 and receives records in its export
 * "go-callback" (i32, i32, i32) -> i32.  Build-time macros: CB_MODULE, CB_EXPORT
 * change the names; NO_EXPORT leaves the callback out, WRONG_EXPORT_TYPE exports it
 * as (i32) -> ().
 * argv: pid n */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "abi_bpf_obj.h"
#include "abi_common.h"
#include "wasm_bpf_imports.h"

#ifndef CB_MODULE
#define CB_MODULE "callback-wrapper"
#endif
#ifndef CB_EXPORT
#define CB_EXPORT "go-callback"
#endif

#define OUT(k, v) printf("%s=%lld\n", (k), (long long)(v))

__attribute__((import_module(CB_MODULE), import_name("wasm_bpf_buffer_poll")))
int wrapper_poll(uint64_t obj, int fd, uint32_t ctx, void *data, int max_size, int timeout_ms);

static int calls, bad, seqs;
static unsigned char buf[64];

#if defined(WRONG_EXPORT_TYPE)
__attribute__((export_name(CB_EXPORT)))
void go_callback(uint32_t ctx) { (void)ctx; calls++; }
#elif !defined(NO_EXPORT)
__attribute__((export_name(CB_EXPORT)))
int go_callback(uint32_t ctx, uint32_t data, uint32_t size)
{
    struct abi_rec r;
    calls++;
    if (ctx != 0x77 || data != OFF(buf) || size != sizeof(r))
        bad = 1;
    memcpy(&r, buf, sizeof(r));
    if (r.seq != (unsigned)seqs++ || r.kind != ABI_KIND_RING || r.magic != ABI_REC_MAGIC)
        bad = 1;
    return 0;
}
#endif

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

int main(int argc, char **argv)
{
    unsigned pid = argc > 1 ? (unsigned)atoi(argv[1]) : 0;
    int n = argc > 2 ? atoi(argv[2]) : 0, sum = 0, r;
    uint64_t h = wasm_load_bpf_object(abi_bpf_obj, (int)sizeof(abi_bpf_obj));
    int rb = wasm_bpf_map_fd_by_name(h, "rb"), bss = wasm_bpf_map_fd_by_name(h, "abi.bss");
    struct abi_ctl ctl = {0};
    uint32_t zero = 0;
    int64_t end;

    ctl.target_pid = pid;
    ctl.nrec = 5;
    ctl.ring_limit = n;
    OUT("arm", wasm_bpf_map_operate(bss, WB_UPDATE, &zero, &ctl, 0, 0));
    OUT("bad_fd", wrapper_poll(h, 9999, 0x77, buf, sizeof(buf), 0));
    OUT("bad_handle", wrapper_poll(~h, rb, 0x77, buf, sizeof(buf), 0));
    OUT("data_outside", wrapper_poll(h, rb, 0x77, PTR(mem_size() - 8), sizeof(buf), 0));
    OUT("attach", wasm_attach_bpf_program(h, "on_getppid", 0));
    end = now_ms() + 5000;
    while (calls < n && now_ms() < end) {
        r = wrapper_poll(h, rb, 0x77, buf, sizeof(buf), 100);
        if (r < 0) {
            OUT("poll_error", r);
            break;
        }
        sum += r;
    }
    OUT("calls", calls);
    OUT("sum", sum);
    OUT("bad", bad);
    OUT("close", wasm_close_bpf_object(h));
    return 0;
}
