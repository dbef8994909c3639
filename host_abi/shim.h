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
 * shim never links against a second copy.  Pointers to wasmtime objects cross this
 * boundary, and the few value types below, whose layouts tests/test_wasmtime_abi.py
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

/* wasmtime_func_t: one function of a store; equal values are the same function. */
typedef struct wbpf_func {
    uint64_t store_id;
    void *func_ref;
} wbpf_func;

/* wasmtime_memory_t and wasmtime_table_t. */
typedef struct wbpf_stored {
    struct {
        uint64_t store_id;
        uint32_t index;
    } inner;
    uint32_t instance;
} wbpf_stored;

/* wasmtime_extern_t: what a guest exports (a memory, a table, a function...). */
typedef struct wbpf_extern {
    uint8_t kind; /* WBPF_EXTERN_* */
    union {
        wbpf_func func;
        wbpf_stored memory;
        wbpf_stored table;
        uint8_t size[24];
    } of;
} wbpf_extern;
#define WBPF_EXTERN_FUNC 0
#define WBPF_EXTERN_TABLE 2
#define WBPF_EXTERN_MEMORY 3

/* wasmtime_val_t: a table element. */
typedef struct wbpf_val {
    uint8_t kind; /* WBPF_VAL_FUNCREF for a function reference */
    union {
        wbpf_func funcref; /* store_id 0: the null reference */
        uint8_t size[24];
    } of;
} wbpf_val;
#define WBPF_VAL_FUNCREF 5
#define WBPF_VALTYPE_I32 0

/* The entry points, each named as in wasmtime's C API (Python fills them by name). */
struct wbpf_wasmtime_api {
    uintptr_t wasmtime_func_call_unchecked;
    uintptr_t wasmtime_memory_data;
    uintptr_t wasmtime_memory_data_size;
    uintptr_t wasmtime_caller_context;
    uintptr_t wasmtime_caller_export_get;
    uintptr_t wasmtime_table_get;
    uintptr_t wasmtime_func_type;
    uintptr_t wasm_functype_params;
    uintptr_t wasm_functype_results;
    uintptr_t wasm_valtype_kind;
    uintptr_t wasm_functype_delete;
    uintptr_t wasmtime_trap_new;
    uintptr_t wasmtime_error_message;
    uintptr_t wasmtime_error_delete;
    uintptr_t wasm_byte_vec_delete;
    uintptr_t wasmtime_linker_define_func_unchecked;
};

/* 0, or -EINVAL when an entry point is missing. */
int wbpf_set_wasmtime_api(const struct wbpf_wasmtime_api *api);

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
    const void *func;   /* wasmtime_func_t * of the callback, type-checked by the caller */
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

/* How a stop request reaches a poll: *flag is set (from another thread or a signal
 * handler), then wake_fd (the read end of the host's wake-up pipe, -1 if none) turns
 * readable, which ends a wait at once. */
struct wbpf_stop {
    volatile int *flag;
    int wake_fd;
};

/* Waits up to timeout_ms (0: do not block, < 0: until a record arrives or a stop)
 * and delivers every available record to the target.  Returns the number of records
 * delivered (>= 0), -EINTR when stopped (or interrupted by a signal), another
 * negative errno on failure, or a negative value with result->status set. */
int wbpf_buffer_poll(struct wbpf_buffer *buf, const struct wbpf_guest_target *target,
                     int timeout_ms, const struct wbpf_stop *stop, struct wbpf_poll_result *result);
/* Non-zero while a poll of buf runs (a callback closing its object gets -EBUSY). */
int wbpf_buffer_busy(const struct wbpf_buffer *buf);

/* ---- the poll imports, served in C ----------------------------------------------
 * wasm_bpf_buffer_poll, wasm_bpf_ext.wasm_bpf_buffer_poll_batch and the
 * callback-wrapper poll are wasmtime host functions written in C: a guest that polls
 * in a loop never enters Python.  A wbpf_host holds what they need of one guest
 * instance: the buffers it was handed (object handle, map fd), its live map mirrors,
 * the stop request and the watchdog's marks.  When a poll's arguments fail a check
 * (an unknown handle or fd, a bad callback or range, a buffer already being polled),
 * the C function hands the call to wbpf_poll_fallback, the Python implementation,
 * which answers with the error and its message as documented in ABI.md. */
enum { WBPF_POLL_RECORD = 0, WBPF_POLL_BATCH = 1, WBPF_POLL_EXPORT = 2 };

struct wbpf_host;

/* stop, watch and wasi_errno (Linux errno -> the guest's, n_errno entries) must
 * outlive the host; fallback is passed back to wbpf_poll_fallback. */
struct wbpf_host *wbpf_host_new(const struct wbpf_stop *stop, struct wbpf_call_watch *watch,
                                void *fallback, const char *callback_export,
                                const int32_t *wasi_errno, size_t n_errno);
void wbpf_host_free(struct wbpf_host *host);
/* Defines import module.name, of type functype (a wasm_functype_t *), in linker (a
 * wasmtime_linker_t *) as the poll of `kind`.  Returns NULL or a wasmtime_error_t *. */
void *wbpf_host_define_poll(struct wbpf_host *host, void *linker, const char *module,
                            const char *name, const void *functype, int kind);
/* Map fd of object `handle` is a buffer the guest may poll: 0 or -ENOMEM. */
int wbpf_host_add_buffer(struct wbpf_host *host, int64_t handle, int fd, struct wbpf_buffer *buf);
/* Keeps [ptr, ptr + size) of guest memory a copy of one-entry array map fd (size 0:
 * stops it): 0 or -ENOMEM. */
int wbpf_host_mirror(struct wbpf_host *host, int64_t handle, int fd, uint32_t ptr, uint32_t size);
/* Copies every mirrored map into guest memory [base, base + size); a mirror that no
 * longer fits is dropped. */
void wbpf_host_refresh_mirrors(struct wbpf_host *host, uint8_t *base, size_t size);
/* Object `handle` is closing: its buffers and mirrors are dropped. */
void wbpf_host_forget(struct wbpf_host *host, int64_t handle);
/* Polls the guest has made (the service takes the first as "set up"). */
uint64_t wbpf_host_polls(const struct wbpf_host *host);

/* The Python implementation of the poll imports (cffi extern "Python+C"): runs the
 * poll of `kind` with the raw arguments, writes its i32 result to args[0] and
 * returns NULL, or returns the wasm_trap_t * that ends the guest's call. */
void *wbpf_poll_fallback(void *fallback, void *caller, int kind, wbpf_val_raw *args);

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
