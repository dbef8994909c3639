/* The stopping guest (tests/test_stop.py): stop MODE [PID | N IFNAME]
 * Loads abi.bpf.o and attaches its tracepoint (armed for PID, when given), prints
 * "ready=1", then waits in MODE; when the wait ends it prints "MODE=RESULT errno=E"
 * and returns 0. The *_again modes go back to waiting whatever happened: only the
 * forced interrupt ends them.
 *   sleep, sleep_again   sleep(3600)
 *   read                 read(0) until end of input or an error ("read=LAST total=BYTES")
 *   echo                 copy stdin to stdout (nothing loaded, nothing else printed)
 *   clocks               the host's poll_oneoff without a stop (nothing loaded): an
 *                        absolute sleep of 200 ms on the monotonic and the realtime
 *                        clock, usleep(100 ms) (each "*_ms=" the time it took), poll()
 *                        of stdout for writing and of a closed fd ("*_revents=")
 *   poll, poll_again     poll() on stdin with timeout -1 (revents in the result)
 *   bufpoll, bufpoll_again  wasm_bpf_buffer_poll(-1) on the ring buffer
 *   busy                 compute forever without calling the host
 *   callback             poll with a callback that computes forever (PID's getppid)
 *   nested               a ring buffer callback that polls the perf buffer (its own
 *                        callbacks run) again and again, computing between polls
 *   tc N IFNAME          load cleanup.bpf.o, attach its tc program N times to IFNAME
 *                        ingress ("attached=N"), then bufpoll; prints "leaving=1"
 *                        before it returns */
#include <errno.h>
#include <poll.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "abi_bpf_obj.h"
#include "abi_common.h"
#include "cleanup_bpf_obj.h"
#include "wasm_bpf_imports.h"

static volatile uint64_t sink;
static uint64_t obj;
static int perf_fd;
static char buf[256], inner_buf[256];

static void compute(uint64_t n)
{
    for (uint64_t i = 0; i < n; i++)
        sink = i;
}

static int spin_callback(void *ctx, void *data, int size)
{
    printf("in_callback=1\n");
    fflush(stdout);
    compute(UINT64_MAX);
    return 0;
}

static int inner_callback(void *ctx, void *data, int size) { return 0; }

static int nested_callback(void *ctx, void *data, int size)
{
    printf("in_callback=1\n");
    fflush(stdout);
    for (;;) { /* each poll runs inner callbacks: they must not restart this one's budget */
        wasm_bpf_buffer_poll(obj, perf_fd, (int32_t)(uintptr_t)inner_callback, 0, inner_buf,
                             sizeof(inner_buf), 0);
        compute(100000);
    }
    return 0;
}

static long long now_ns(clockid_t clock)
{
    struct timespec ts;
    clock_gettime(clock, &ts);
    return ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

static void sleep_until(clockid_t clock, const char *name)
{
    long long start = now_ns(CLOCK_MONOTONIC), until = now_ns(clock) + 200000000LL;
    struct timespec ts = {.tv_sec = until / 1000000000LL, .tv_nsec = until % 1000000000LL};
    int err = clock_nanosleep(clock, TIMER_ABSTIME, &ts, 0);
    printf("%s_err=%d\n%s_ms=%lld\n", name, err, name, (now_ns(CLOCK_MONOTONIC) - start) / 1000000);
}

static int clocks(void)
{
    long long start = now_ns(CLOCK_MONOTONIC);
    struct pollfd out = {.fd = 1, .events = POLLOUT}, closed = {.fd = 42, .events = POLLIN};

    sleep_until(CLOCK_MONOTONIC, "monotonic");
    sleep_until(CLOCK_REALTIME, "realtime");
    usleep(100000);
    printf("usleep_ms=%lld\n", (now_ns(CLOCK_MONOTONIC) - start) / 1000000 - 400);
    printf("stdout_poll=%d\nstdout_revents=%d\n", poll(&out, 1, -1), out.revents);
    printf("closed_poll=%d\nclosed_revents=%d\n", poll(&closed, 1, -1), closed.revents);
    return 0;
}

static int arm(unsigned pid, unsigned perf)
{
    struct abi_ctl ctl = {0};
    uint32_t zero = 0;

    ctl.target_pid = pid;
    ctl.nrec = 1;
    ctl.ring_limit = 1000000;
    ctl.perf_limit = perf;
    return wasm_bpf_map_operate(wasm_bpf_map_fd_by_name(obj, "abi.bss"), WB_UPDATE, &zero, &ctl, 0, 0);
}

static int tc_attach_many(int n, const char *ifname)
{
    char target[64];
    uint64_t h = wasm_load_bpf_object(cleanup_bpf_obj, sizeof(cleanup_bpf_obj));
    int attached = 0;

    snprintf(target, sizeof(target), "%s:ingress", ifname);
    while (h && attached < n && wasm_attach_bpf_program(h, "cleanup_tc", target) == 0)
        attached++;
    printf("attached=%d\n", attached);
    fflush(stdout);
    int rb = wasm_bpf_map_fd_by_name(h, "rb"), err;
    while ((err = wasm_bpf_buffer_poll(h, rb, (int32_t)(uintptr_t)inner_callback, 0, buf, sizeof(buf), -1)) >= 0)
        ;
    printf("leaving=1\n");
    fflush(stdout);
    return 0;
}

int main(int argc, char **argv)
{
    const char *mode = argc > 1 ? argv[1] : "";
    unsigned pid = argc > 2 ? (unsigned)atoi(argv[2]) : 0;
    int again = strstr(mode, "_again") != NULL;
    long result = 0;

    if (!strcmp(mode, "echo")) {
        while ((result = read(0, buf, sizeof(buf))) > 0)
            fwrite(buf, 1, (size_t)result, stdout);
        return 0;
    }
    if (!strcmp(mode, "clocks"))
        return clocks();
    if (!strcmp(mode, "tc"))
        return argc > 3 ? tc_attach_many(atoi(argv[2]), argv[3]) : 2;
    obj = wasm_load_bpf_object(abi_bpf_obj, (int)sizeof(abi_bpf_obj));
    if (!obj || arm(pid, !strcmp(mode, "nested") ? 1000000 : 0) || wasm_attach_bpf_program(obj, "on_getppid", 0))
        return 3;
    int rb = wasm_bpf_map_fd_by_name(obj, "rb");
    perf_fd = wasm_bpf_map_fd_by_name(obj, "perf");
    printf("ready=1\n");
    fflush(stdout);

    if (!strncmp(mode, "sleep", 5)) {
        do
            result = sleep(3600);
        while (again);
    } else if (!strcmp(mode, "read")) {
        long total = 0;
        while ((result = read(0, buf, sizeof(buf))) > 0)
            total += result;
        printf("total=%ld\n", total);
    } else if (!strncmp(mode, "poll", 4)) {
        struct pollfd pfd = {.fd = 0, .events = POLLIN};
        do
            result = poll(&pfd, 1, -1);
        while (again);
        printf("revents=%d\n", pfd.revents);
    } else if (!strncmp(mode, "bufpoll", 7)) {
        do
            result = wasm_bpf_buffer_poll(obj, rb, (int32_t)(uintptr_t)spin_callback, 0, buf, sizeof(buf), -1);
        while (again || result >= 0);
    } else if (!strcmp(mode, "busy")) {
        compute(UINT64_MAX);
    } else if (!strcmp(mode, "callback") || !strcmp(mode, "nested")) {
        int32_t cb = (int32_t)(uintptr_t)(!strcmp(mode, "callback") ? spin_callback : nested_callback);
        for (;;)
            wasm_bpf_buffer_poll(obj, rb, cb, 0, buf, sizeof(buf), 100);
    } else {
        printf("unknown mode %s\n", mode);
        return 2;
    }
    printf("%s=%ld\nerrno=%d\n", mode, result, result < 0 ? errno : 0);
    return 0;
}
