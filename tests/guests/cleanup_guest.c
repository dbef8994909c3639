/* Cleanup-matrix guest (tests/test_cleanup.py):
 *   cleanup PID ACTION IFNAME CGROUP
 * Loads cleanup.bpf.o, arms its tracepoint for PID, attaches one program of each kind
 * (tracepoint, uprobe on libc's getpid, cgroup_skb link on CGROUP, classic tc filter
 * on IFNAME ingress, tcx link on IFNAME egress, socket filter on IFNAME, sk_msg on
 * the object's sockmap), prints "attached=N" and polls the ring buffer. ACTION says
 * how the run ends once the first record has arrived (or a stop came):
 *   return   leave the loop and return 0, the object still open
 *   close    close the object, then return 0
 *   exit     exit(5) from _start         exit_cb  exit(7) in the record callback
 *   trap     trap in _start              trap_cb  trap in the record callback
 *   wait     poll until -EINTR (a stop), then return 0, the object still open
 *   spin     ignore -EINTR: poll forever (only an interrupt ends it)
 *   badattach  attach a program that does not exist (the host reports it), then wait
 *   busy     compute forever in _start (a CPU limit ends it)
 *   busy_cb  compute forever in the record callback (the callback CPU limit ends it)
 * Exit statuses 20+ mean an attach failed (its errno is printed). */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wasm_bpf_imports.h"
#include "cleanup_bpf_obj.h"

static const char *action;
static int records;
static volatile unsigned sink;

static void compute_forever(void)
{
    for (unsigned i = 0;; i++)
        sink = i;
}

static int on_record(void *ctx, void *data, int size)
{
    records++;
    if (!strcmp(action, "exit_cb"))
        exit(7);
    if (!strcmp(action, "trap_cb"))
        __builtin_trap();
    if (!strcmp(action, "busy_cb"))
        compute_forever();
    return 0;
}

int main(int argc, char **argv)
{
    static char buf[64];
    uint32_t zero = 0, pid;
    int attached = 0, reported = 0, err;

    if (argc != 5) {
        fprintf(stderr, "usage: %s PID ACTION IFNAME CGROUP\n", argv[0]);
        return 2;
    }
    action = argv[2];
    const char *ifname = argv[3];
    char tc_target[64], tcx_target[64];
    snprintf(tc_target, sizeof(tc_target), "%s:ingress", ifname);
    snprintf(tcx_target, sizeof(tcx_target), "tcx:%s:egress", ifname);
    const char *progs[][2] = {
        {"cleanup_tp", 0}, {"cleanup_uprobe", "libc.so.6:getpid"}, {"cleanup_cgroup", argv[4]},
        {"cleanup_tc", tc_target}, {"cleanup_tcx", tcx_target}, {"cleanup_socket", ifname},
        {"cleanup_sk_msg", "socks"},
    };

    uint64_t h = wasm_load_bpf_object(cleanup_bpf_obj, sizeof(cleanup_bpf_obj));
    if (!h)
        return 3;
    pid = (uint32_t)atoi(argv[1]);
    if (wasm_bpf_map_operate(wasm_bpf_map_fd_by_name(h, "cleanup.bss"), WB_UPDATE, &zero, &pid, 0, 0))
        return 4;
    for (unsigned i = 0; i < sizeof(progs) / sizeof(progs[0]); i++) {
        err = wasm_attach_bpf_program(h, progs[i][0], progs[i][1]);
        if (err) {
            printf("attach_%s=%d\n", progs[i][0], err);
            return 20 + i; /* distinct from the statuses the actions give */
        }
        attached++;
    }
    int rb = wasm_bpf_map_fd_by_name(h, "rb");
    printf("attached=%d\n", attached);
    fflush(stdout);
    if (!strcmp(action, "busy"))
        compute_forever();
    while ((err = wasm_bpf_buffer_poll(h, rb, (int32_t)on_record, 0, buf, sizeof(buf), 50)) >= 0 ||
           !strcmp(action, "spin")) {
        if (records && !strcmp(action, "badattach") && !reported++)
            wasm_attach_bpf_program(h, "no_such_program", 0); /* once */
        if (!records || !strcmp(action, "wait") || !strcmp(action, "spin") || !strcmp(action, "badattach"))
            continue;
        if (!strcmp(action, "exit"))
            exit(5);
        if (!strcmp(action, "trap"))
            __builtin_trap();
        break; /* return, close */
    }
    if (!strcmp(action, "close"))
        printf("close=%d\n", wasm_close_bpf_object(h));
    printf("records=%d\npoll=%d\n", records, err);
    return 0;
}
