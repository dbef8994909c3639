/* wasm-bpf host shim: the narrow C boundary between the Python host and libbpf.
 *
 * Everything that runs once per event lives here: polling a ring or perf buffer,
 * copying each record into guest memory and calling the guest's callback through
 * wasmtime's C API.  Python sets things up and handles the result of a poll; it
 * never runs per record.
 */
#ifndef WASM_BPF_SHIM_H
#define WASM_BPF_SHIM_H

#include <stddef.h>
#include <stdint.h>

#include <bpf/bpf.h>
#include <bpf/btf.h>
#include <bpf/libbpf.h>
#include <linux/btf.h>
#include <linux/if_ether.h>
#include <linux/if_link.h>
#include <linux/openat2.h>
#include <linux/perf_event.h>
#include <sys/socket.h>
#include <sys/syscall.h>

/* Kernel ABI values newer than the kernel headers wasm-bpf builds against (Debian
 * bookworm's are 6.1's): BPF_MAP_TYPE_CGRP_STORAGE (6.2), BPF_F_LINK and the
 * BPF_STRUCT_OPS attach type (6.4), BPF_TCX_INGRESS/EGRESS (6.6).  Released values
 * never change. */
#define WBPF_MAP_TYPE_CGRP_STORAGE 32
#define WBPF_F_LINK (1U << 13)
#define WBPF_STRUCT_OPS 44
#define WBPF_TCX_INGRESS 46
#define WBPF_TCX_EGRESS 47

/* ---- wasmtime C API entry points -------------------------------------------------
 * Resolved at run time from the libwasmtime that wasmtime-py already loaded, so the
 * shim never links against a second copy.  Only pointers to wasmtime objects cross
 * this boundary, plus wasmtime_val_raw_t, whose layout tests/test_wasmtime_abi.py
 * checks against the pinned wasmtime version. */
typedef union wbpf_val_raw {
    int32_t i32;
    int64_t i64;
    float f32;
    double f64;
    uint8_t v128[16];
    uint32_t anyref;
    uint32_t externref;
    uint32_t exnref;
    void *funcref;
} wbpf_val_raw;

int wbpf_set_wasmtime_api(uintptr_t func_call_unchecked, uintptr_t memory_data,
                          uintptr_t memory_data_size);

/* What a watchdog thread samples to see a guest callback that does not return:
 * `calls` counts the outermost calls started (a nested call, from a callback that
 * polls another buffer, belongs to its outer call and its budget), `depth` is
 * non-zero while one runs.  Two plain stores per call, so the per-record path
 * stays as cheap as it was. */
struct wbpf_call_watch {
    volatile uint64_t calls;
    volatile uint32_t depth;
};

/* Where the records of one poll go: a buffer [data, data + max_size) in the guest's
 * linear memory and a guest function, called either
 *   per record: (ctx, data, size) -> i32, the record copied to data, or
 *   per batch:  (ctx, data, used, count) -> i32, data holding `count` records of
 *               struct wbpf_batch_record each, as many whole records as fit. */
struct wbpf_guest_target {
    void *context;      /* wasmtime_context_t * of the calling store */
    const void *memory; /* wasmtime_memory_t * of the guest's exported memory */
    const void *func;   /* wasmtime_func_t * of the callback, type-checked by Python */
    uint32_t ctx;       /* opaque guest value passed back as the first argument */
    uint32_t data;      /* guest offset of the record buffer */
    uint32_t max_size;  /* its size; longer records are truncated to it */
    uint32_t batch;     /* 0: a call per record, 1: a call per batch */
    struct wbpf_call_watch *watch; /* NULL, or updated around every guest call */
};

/* A record inside a batch: an 8-byte header, then `size` bytes, padded to 8. */
struct wbpf_batch_record {
    uint32_t size;          /* bytes that follow (truncated to what fits in the buffer) */
    uint32_t original_size; /* the record's size in the kernel */
};
#define WBPF_BATCH_MIN_BUFFER 16

/* Why a poll ended early; WBPF_POLL_OK otherwise. */
enum {
    WBPF_POLL_OK = 0,
    WBPF_POLL_CALLBACK_STOP = 1, /* the callback returned < 0: callback_ret holds it */
    WBPF_POLL_WASM_ERROR = 2,    /* the callback trapped: error or trap is set */
};

struct wbpf_poll_result {
    int status;
    int32_t callback_ret;
    void *error; /* wasmtime_error_t *, owned by the caller once returned */
    void *trap;  /* wasm_trap_t *, owned by the caller once returned */
};

/* A ring buffer or perf event array of one loaded object. */
struct wbpf_buffer;

/* Creates a consumer for map_fd.  perf_pages applies to perf event arrays only.
 * Returns NULL and sets *err (negative errno) on failure. */
struct wbpf_buffer *wbpf_buffer_new(int map_fd, size_t perf_pages, int *err);
void wbpf_buffer_free(struct wbpf_buffer *buf);

/* Waits up to timeout_ms (0: do not block, < 0: until a record arrives or *stop is
 * set) and delivers every available record to the target.  Waits in slices so that
 * *stop (set from another thread or a signal handler) ends it within ~50 ms.
 * Returns the number of records delivered (>= 0), -EINTR when stopped, another
 * negative errno on failure, or a negative value with result->status set. */
int wbpf_buffer_poll(struct wbpf_buffer *buf, const struct wbpf_guest_target *target,
                     int timeout_ms, volatile int *stop, struct wbpf_poll_result *result);

/* Outside a guest's poll, records are collected for the host itself (kernel-only
 * runs): collect waits up to timeout_ms and queues every available record as
 * [u32 size][size bytes][padding to 8]; take moves whole queued records to out. */
int wbpf_buffer_epoll_fd(const struct wbpf_buffer *buf);
int wbpf_buffer_collect(struct wbpf_buffer *buf, int timeout_ms);
size_t wbpf_buffer_queued(const struct wbpf_buffer *buf);
size_t wbpf_buffer_take(struct wbpf_buffer *buf, void *out, size_t size);

/* Counters since creation. */
uint64_t wbpf_buffer_delivered(const struct wbpf_buffer *buf);
uint64_t wbpf_buffer_lost(const struct wbpf_buffer *buf);
int wbpf_buffer_map_type(const struct wbpf_buffer *buf);

/* ---- libbpf helpers that need option structs or varargs ------------------------- */
struct bpf_object *wbpf_object_open_mem(const void *buf, size_t size, const char *name,
                                        int *err);
struct bpf_link *wbpf_attach_uprobe(struct bpf_program *prog, int retprobe, int pid,
                                    const char *binary, const char *func_name,
                                    size_t offset, int *err);
struct bpf_link *wbpf_attach(struct bpf_program *prog, int *err);
struct bpf_link *wbpf_attach_xdp(struct bpf_program *prog, int ifindex, int *err);
struct bpf_link *wbpf_attach_cgroup(struct bpf_program *prog, int cgroup_fd, int *err);

/* libbpf's log, captured instead of printed, per thread (libbpf logs in the thread
 * that called it).  Sets the calling thread's level: 0 warnings, 1 info, 2 debug. */
void wbpf_log_capture(int level);
/* Copies and clears the calling thread's captured text; returns its length
 * (truncated to size - 1). */
size_t wbpf_log_take(char *out, size_t size);

/* Map information the kernel reports for a fd; 0 or negative errno. */
int wbpf_map_info(int fd, uint32_t *type, uint32_t *key_size, uint32_t *value_size,
                  uint32_t *max_entries, uint32_t *id);

#endif
