/* wasm-bpf host shim: see shim.h for the contract. */
#include "shim.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

/* ---- wasmtime entry points ------------------------------------------------------- */
typedef struct {
    size_t size;
    void **data;
} wbpf_vec; /* wasm_valtype_vec_t, wasm_byte_vec_t (char data) */

static struct {
    void *(*call)(void *context, const void *func, wbpf_val_raw *args, size_t nargs, void **trap);
    uint8_t *(*data)(const void *context, const void *memory);
    size_t (*data_size)(const void *context, const void *memory);
    void *(*caller_context)(void *caller);
    int (*caller_export_get)(void *caller, const char *name, size_t len, wbpf_extern *out);
    int (*table_get)(void *context, const void *table, uint64_t index, wbpf_val *out);
    void *(*func_type)(const void *context, const void *func);
    const wbpf_vec *(*functype_params)(const void *functype);
    const wbpf_vec *(*functype_results)(const void *functype);
    uint8_t (*valtype_kind)(const void *valtype);
    void (*functype_delete)(void *functype);
    void *(*trap_new)(const char *message, size_t len);
    void (*error_message)(const void *error, wbpf_vec *message);
    void (*error_delete)(void *error);
    void (*byte_vec_delete)(wbpf_vec *vec);
    void *(*define_func_unchecked)(void *linker, const char *module, size_t module_len, const char *name,
                                   size_t name_len, const void *functype,
                                   void *(*callback)(void *env, void *caller, wbpf_val_raw *args, size_t n),
                                   void *env, void (*finalizer)(void *));
} wasmtime;

int wbpf_set_wasmtime_api(const struct wbpf_wasmtime_api *api)
{
    const uintptr_t *entry = (const uintptr_t *)api;

    for (size_t i = 0; i < sizeof(*api) / sizeof(uintptr_t); i++)
        if (!entry[i])
            return -EINVAL;
    wasmtime.call = (void *)api->wasmtime_func_call_unchecked;
    wasmtime.data = (void *)api->wasmtime_memory_data;
    wasmtime.data_size = (void *)api->wasmtime_memory_data_size;
    wasmtime.caller_context = (void *)api->wasmtime_caller_context;
    wasmtime.caller_export_get = (void *)api->wasmtime_caller_export_get;
    wasmtime.table_get = (void *)api->wasmtime_table_get;
    wasmtime.func_type = (void *)api->wasmtime_func_type;
    wasmtime.functype_params = (void *)api->wasm_functype_params;
    wasmtime.functype_results = (void *)api->wasm_functype_results;
    wasmtime.valtype_kind = (void *)api->wasm_valtype_kind;
    wasmtime.functype_delete = (void *)api->wasm_functype_delete;
    wasmtime.trap_new = (void *)api->wasmtime_trap_new;
    wasmtime.error_message = (void *)api->wasmtime_error_message;
    wasmtime.error_delete = (void *)api->wasmtime_error_delete;
    wasmtime.byte_vec_delete = (void *)api->wasm_byte_vec_delete;
    wasmtime.define_func_unchecked = (void *)api->wasmtime_linker_define_func_unchecked;
    return 0;
}

/* ---- buffers --------------------------------------------------------------------- */

/* A perf buffer cannot stop mid-poll (its sample callback returns void), so records
 * that arrive after the guest asked to stop wait here for the next poll. */
struct pending_record {
    struct pending_record *next;
    uint32_t size;
    uint8_t data[];
};

struct wbpf_buffer {
    int map_type;
    struct ring_buffer *ring;
    struct perf_buffer *perf;
    struct pending_record *pending_head, *pending_tail;
    uint64_t delivered, lost;
    int busy; /* a guest callback polling its own buffer again gets -EBUSY */
    /* Valid while a poll runs. */
    const struct wbpf_guest_target *target;
    struct wbpf_poll_result *result;
    int delivered_this_poll;
    uint32_t batch_used, batch_count; /* the batch being filled in guest memory */
    /* The guest's memory, read once per poll: the engine never moves it
     * (memory_may_move=False, module.py) and it never shrinks, so the range checked
     * at the start of the poll stays valid through callbacks that grow it. */
    uint8_t *mem_base;
    /* Records collected for the host itself (no guest: kernel-only runs), back to
     * back as [u32 size][size bytes][padding to 8]. */
    uint8_t *queue;
    size_t queue_used, queue_cap;
};

/* Calls the guest's function with args[0..nargs); returns its i32 result, or a
 * negative value with buf->result->status set. */
static int call_guest(struct wbpf_buffer *buf, wbpf_val_raw *args, size_t nargs)
{
    const struct wbpf_guest_target *t = buf->target;
    struct wbpf_poll_result *res = buf->result;
    void *trap = NULL;
    void *error;

    /* Only an outermost call starts a new budget: a callback that polls another
     * buffer runs nested calls, and those must not reset the time it has used. */
    if (t->watch && t->watch->depth++ == 0)
        t->watch->calls++;
    error = wasmtime.call(t->context, t->func, args, nargs, &trap);
    if (t->watch)
        t->watch->depth--;
    if (error || trap) {
        res->status = WBPF_POLL_WASM_ERROR;
        res->error = error;
        res->trap = trap;
        return -ECANCELED;
    }
    if (args[0].i32 < 0) {
        res->status = WBPF_POLL_CALLBACK_STOP;
        res->callback_ret = args[0].i32;
    }
    return args[0].i32;
}

static void pending_push(struct wbpf_buffer *buf, const void *data, uint32_t size);

/* Hands the filled batch to the guest. */
static int batch_flush(struct wbpf_buffer *buf)
{
    const struct wbpf_guest_target *t = buf->target;
    wbpf_val_raw args[4];
    uint32_t count = buf->batch_count;

    if (!count)
        return 0;
    memset(args, 0, sizeof(args));
    args[0].i32 = (int32_t)t->ctx;
    args[1].i32 = (int32_t)t->data;
    args[2].i32 = (int32_t)buf->batch_used;
    args[3].i32 = (int32_t)count;
    buf->batch_used = buf->batch_count = 0;
    buf->delivered += count;
    buf->delivered_this_poll += count;
    return call_guest(buf, args, 4);
}

/* Appends one record to the batch in guest memory, handing the batch over first
 * when the record does not fit. */
static int batch_add(struct wbpf_buffer *buf, const void *sample, uint32_t size)
{
    const struct wbpf_guest_target *t = buf->target;
    uint32_t n = size, need;
    struct wbpf_batch_record hdr;

    if (n > t->max_size - sizeof(hdr))
        n = t->max_size - sizeof(hdr);
    need = sizeof(hdr) + ((n + 7) & ~7u);
    if (need > t->max_size)
        need = t->max_size;
    if (buf->batch_used + need > t->max_size) {
        int rc = batch_flush(buf);
        if (rc < 0) {
            /* The guest stopped before seeing this record: keep it for the next poll. */
            pending_push(buf, sample, size);
            return rc;
        }
    }
    uint8_t *dst = buf->mem_base + t->data + buf->batch_used;
    hdr.size = n;
    hdr.original_size = size;
    memcpy(dst, &hdr, sizeof(hdr));
    memcpy(dst + sizeof(hdr), sample, n);
    buf->batch_used += need;
    buf->batch_count++;
    return 0;
}

/* Delivers one record: copied into guest memory and the guest called, or appended
 * to the current batch. Returns the callback's result, or a negative value with
 * buf->result->status set. */
static int deliver(struct wbpf_buffer *buf, const void *sample, uint32_t size)
{
    const struct wbpf_guest_target *t = buf->target;
    uint32_t n = size < t->max_size ? size : t->max_size;

    if (t->batch)
        return batch_add(buf, sample, size);
    memcpy(buf->mem_base + t->data, sample, n);

    wbpf_val_raw args[3];
    memset(args, 0, sizeof(args));
    args[0].i32 = (int32_t)t->ctx;
    args[1].i32 = (int32_t)t->data;
    args[2].i32 = (int32_t)n;
    buf->delivered++;
    buf->delivered_this_poll++;
    return call_guest(buf, args, 3);
}

#define QUEUE_MAX (64u << 20)

/* Appends a record to the host's queue. libbpf consumes a ring record even when the
 * callback fails, so none is refused: beyond QUEUE_MAX bytes they count as lost. */
static void queue_store(struct wbpf_buffer *buf, const void *sample, uint32_t size)
{
    size_t need = 4 + (((size_t)size + 7) & ~(size_t)7);

    if (buf->queue_used + need > buf->queue_cap) {
        size_t cap = buf->queue_cap ? buf->queue_cap : 65536;
        uint8_t *grown;
        while (buf->queue_used + need > cap)
            cap *= 2;
        if (cap > QUEUE_MAX || !(grown = realloc(buf->queue, cap))) {
            buf->lost++;
            return;
        }
        buf->queue = grown;
        buf->queue_cap = cap;
    }
    memcpy(buf->queue + buf->queue_used, &size, 4);
    memcpy(buf->queue + buf->queue_used + 4, sample, size);
    memset(buf->queue + buf->queue_used + 4 + size, 0, need - 4 - size);
    buf->queue_used += need;
    buf->delivered++;
}

/* Outside a guest's poll (no target), records go to the host's queue. */
static int ring_sample(void *ctx, void *data, size_t size)
{
    struct wbpf_buffer *buf = ctx;

    if (!buf->target) {
        queue_store(buf, data, (uint32_t)size);
        return 0;
    }
    return deliver(buf, data, (uint32_t)size);
}

static void pending_push(struct wbpf_buffer *buf, const void *data, uint32_t size)
{
    struct pending_record *rec = malloc(sizeof(*rec) + size);
    if (!rec) {
        buf->lost++;
        return;
    }
    rec->next = NULL;
    rec->size = size;
    memcpy(rec->data, data, size);
    if (buf->pending_tail)
        buf->pending_tail->next = rec;
    else
        buf->pending_head = rec;
    buf->pending_tail = rec;
}

static void perf_sample(void *ctx, int cpu, void *data, __u32 size)
{
    struct wbpf_buffer *buf = ctx;
    (void)cpu;
    if (!buf->target) {
        queue_store(buf, data, size);
        return;
    }
    if (buf->result->status != WBPF_POLL_OK || buf->pending_head) {
        pending_push(buf, data, size);
        return;
    }
    deliver(buf, data, size);
}

static void perf_lost(void *ctx, int cpu, __u64 count)
{
    struct wbpf_buffer *buf = ctx;
    (void)cpu;
    buf->lost += count;
}

/* Delivers records held back by an earlier poll, oldest first. */
static int deliver_pending(struct wbpf_buffer *buf)
{
    while (buf->pending_head && buf->result->status == WBPF_POLL_OK) {
        struct pending_record *rec = buf->pending_head;
        buf->pending_head = rec->next;
        if (!buf->pending_head)
            buf->pending_tail = NULL;
        deliver(buf, rec->data, rec->size);
        free(rec);
    }
    if (buf->result->status == WBPF_POLL_OK)
        batch_flush(buf);
    return buf->result->status == WBPF_POLL_OK ? 0 : -ECANCELED;
}

struct wbpf_buffer *wbpf_buffer_new(int map_fd, size_t perf_pages, int *err)
{
    struct bpf_map_info info;
    __u32 len = sizeof(info);
    struct wbpf_buffer *buf;

    memset(&info, 0, len);
    if (bpf_obj_get_info_by_fd(map_fd, &info, &len)) {
        *err = -errno;
        return NULL;
    }
    buf = calloc(1, sizeof(*buf));
    if (!buf) {
        *err = -ENOMEM;
        return NULL;
    }
    buf->map_type = (int)info.type;
    if (info.type == BPF_MAP_TYPE_RINGBUF) {
        buf->ring = ring_buffer__new(map_fd, ring_sample, buf, NULL);
        if (!buf->ring)
            *err = -errno;
    } else if (info.type == BPF_MAP_TYPE_PERF_EVENT_ARRAY) {
        buf->perf = perf_buffer__new(map_fd, perf_pages, perf_sample, perf_lost, buf, NULL);
        if (!buf->perf)
            *err = -errno;
    } else {
        *err = -EINVAL;
    }
    if (!buf->ring && !buf->perf) {
        free(buf);
        return NULL;
    }
    return buf;
}

void wbpf_buffer_free(struct wbpf_buffer *buf)
{
    if (!buf)
        return;
    ring_buffer__free(buf->ring);
    perf_buffer__free(buf->perf);
    while (buf->pending_head) {
        struct pending_record *rec = buf->pending_head;
        buf->pending_head = rec->next;
        free(rec);
    }
    free(buf->queue);
    free(buf);
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* One libbpf poll or consume; returns < 0 on error. */
static int poll_once(struct wbpf_buffer *buf, int timeout_ms)
{
    if (timeout_ms == 0)
        return buf->ring ? ring_buffer__consume(buf->ring) : perf_buffer__consume(buf->perf);
    return buf->ring ? ring_buffer__poll(buf->ring, timeout_ms)
                     : perf_buffer__poll(buf->perf, timeout_ms);
}

/* Waits up to timeout_ms for records (the buffer's epoll fd) or a stop request (the
 * wake-up pipe): 0, or -EINTR for a stop or a signal. */
static int wait_ready(struct wbpf_buffer *buf, const struct wbpf_stop *stop, int timeout_ms)
{
    struct pollfd fds[2] = {
        {.fd = wbpf_buffer_epoll_fd(buf), .events = POLLIN},
        {.fd = stop ? stop->wake_fd : -1, .events = POLLIN}, /* poll() skips fd -1 */
    };

    if (poll(fds, 2, timeout_ms) < 0)
        return -errno;
    return fds[1].revents ? -EINTR : 0;
}

/* Records submitted with BPF_RB_NO_WAKEUP never make the ring ready for epoll: a wait
 * ends at least this often to look at the buffer itself. */
#define POLL_SLICE_MS 50

int wbpf_buffer_poll(struct wbpf_buffer *buf, const struct wbpf_guest_target *target,
                     int timeout_ms, const struct wbpf_stop *stop, struct wbpf_poll_result *result)
{
    int rc = 0;

    memset(result, 0, sizeof(*result));
    if (!wasmtime.call)
        return -ENOSYS;
    if (buf->busy)
        return -EBUSY;
    if (stop && *stop->flag)
        return -EINTR;
    /* Guest memory never shrinks, so a buffer inside it now stays inside it. */
    if ((uint64_t)target->data + target->max_size >
        wasmtime.data_size(target->context, target->memory))
        return -EFAULT;
    if (target->batch && target->max_size < WBPF_BATCH_MIN_BUFFER)
        return -EINVAL;

    buf->busy = 1;
    buf->target = target;
    buf->result = result;
    buf->delivered_this_poll = 0;
    buf->batch_used = buf->batch_count = 0;
    buf->mem_base = wasmtime.data(target->context, target->memory);

    if (deliver_pending(buf) == 0 && !buf->delivered_this_poll) {
        int64_t deadline = timeout_ms > 0 ? now_ms() + timeout_ms : 0;
        for (;;) {
            rc = poll_once(buf, 0);
            if (rc >= 0 && buf->result->status == WBPF_POLL_OK)
                batch_flush(buf); /* the last, partly filled batch */
            if (rc < 0 || buf->delivered_this_poll || buf->pending_head || timeout_ms == 0)
                break;
            int slice = POLL_SLICE_MS;
            if (timeout_ms > 0) {
                int64_t left = deadline - now_ms();
                if (left <= 0)
                    break;
                if (left < slice)
                    slice = (int)left;
            }
            if (stop && *stop->flag) {
                rc = -EINTR;
                break;
            }
            if ((rc = wait_ready(buf, stop, slice)) < 0)
                break;
        }
    }

    buf->busy = 0;
    buf->target = NULL;
    buf->result = NULL;
    if (result->status != WBPF_POLL_OK)
        return result->status == WBPF_POLL_CALLBACK_STOP ? result->callback_ret : -ECANCELED;
    if (rc < 0)
        return rc;
    return buf->delivered_this_poll;
}

int wbpf_buffer_busy(const struct wbpf_buffer *buf) { return buf->busy; }
uint64_t wbpf_buffer_delivered(const struct wbpf_buffer *buf) { return buf->delivered; }
uint64_t wbpf_buffer_lost(const struct wbpf_buffer *buf) { return buf->lost; }
int wbpf_buffer_map_type(const struct wbpf_buffer *buf) { return buf->map_type; }

/* ---- the poll imports, served in C ------------------------------------------------ */

struct host_buffer {
    int64_t handle;
    int fd;
    struct wbpf_buffer *buf;
    /* The last callback found to have the right type for this buffer: a poll with
     * the same function (the same table entry, unchanged) is not checked again. */
    wbpf_func checked;
    int checked_nargs;
};

struct host_mirror {
    int64_t handle;
    int fd;
    uint32_t ptr, size;
};

struct poll_import {
    struct wbpf_host *host;
    int kind;
};

struct wbpf_host {
    const struct wbpf_stop *stop;
    struct wbpf_call_watch *watch;
    void *fallback;
    char *callback_export;
    const int32_t *wasi_errno;
    size_t n_errno;
    struct poll_import imports[3]; /* the env of each kind's host function */
    /* The guest's exports, looked up on its first poll: they never change. */
    int have_exports, have_table;
    wbpf_extern memory, table;
    struct host_buffer *buffers;
    size_t n_buffers, cap_buffers;
    struct host_mirror *mirrors;
    size_t n_mirrors, cap_mirrors;
    uint64_t polls;
};

struct wbpf_host *wbpf_host_new(const struct wbpf_stop *stop, struct wbpf_call_watch *watch,
                                void *fallback, const char *callback_export,
                                const int32_t *wasi_errno, size_t n_errno)
{
    struct wbpf_host *host = calloc(1, sizeof(*host));

    if (!host || !(host->callback_export = strdup(callback_export))) {
        free(host);
        return NULL;
    }
    host->stop = stop;
    host->watch = watch;
    host->fallback = fallback;
    host->wasi_errno = wasi_errno;
    host->n_errno = n_errno;
    for (int kind = 0; kind < 3; kind++)
        host->imports[kind] = (struct poll_import){host, kind};
    return host;
}

void wbpf_host_free(struct wbpf_host *host)
{
    if (!host)
        return;
    free(host->buffers);
    free(host->mirrors);
    free(host->callback_export);
    free(host);
}

/* Grows an array of `size`-byte elements to hold one more; 0 or -ENOMEM. */
static int reserve(void **items, size_t n, size_t *cap, size_t size)
{
    void *grown;

    if (n < *cap)
        return 0;
    if (!(grown = realloc(*items, (*cap ? *cap * 2 : 8) * size)))
        return -ENOMEM;
    *items = grown;
    *cap = *cap ? *cap * 2 : 8;
    return 0;
}

int wbpf_host_add_buffer(struct wbpf_host *host, int64_t handle, int fd, struct wbpf_buffer *buf)
{
    if (reserve((void **)&host->buffers, host->n_buffers, &host->cap_buffers, sizeof(*host->buffers)))
        return -ENOMEM;
    host->buffers[host->n_buffers++] = (struct host_buffer){.handle = handle, .fd = fd, .buf = buf};
    return 0;
}

int wbpf_host_mirror(struct wbpf_host *host, int64_t handle, int fd, uint32_t ptr, uint32_t size)
{
    size_t kept = 0;

    for (size_t i = 0; i < host->n_mirrors; i++)
        if (host->mirrors[i].fd != fd)
            host->mirrors[kept++] = host->mirrors[i];
    host->n_mirrors = kept;
    if (!size)
        return 0;
    if (reserve((void **)&host->mirrors, host->n_mirrors, &host->cap_mirrors, sizeof(*host->mirrors)))
        return -ENOMEM;
    host->mirrors[host->n_mirrors++] = (struct host_mirror){handle, fd, ptr, size};
    return 0;
}

void wbpf_host_refresh_mirrors(struct wbpf_host *host, uint8_t *base, size_t size)
{
    uint32_t key = 0;
    size_t kept = 0;

    for (size_t i = 0; i < host->n_mirrors; i++) {
        struct host_mirror *m = &host->mirrors[i];
        if ((uint64_t)m->ptr + m->size > size)
            continue;
        bpf_map_lookup_elem(m->fd, &key, base + m->ptr);
        host->mirrors[kept++] = *m;
    }
    host->n_mirrors = kept;
}

void wbpf_host_forget(struct wbpf_host *host, int64_t handle)
{
    size_t kept = 0;

    for (size_t i = 0; i < host->n_buffers; i++)
        if (host->buffers[i].handle != handle)
            host->buffers[kept++] = host->buffers[i];
    host->n_buffers = kept;
    kept = 0;
    for (size_t i = 0; i < host->n_mirrors; i++)
        if (host->mirrors[i].handle != handle)
            host->mirrors[kept++] = host->mirrors[i];
    host->n_mirrors = kept;
}

uint64_t wbpf_host_polls(const struct wbpf_host *host) { return host->polls; }

/* The guest's memory and function table, looked up once. */
static int guest_exports(struct wbpf_host *host, void *caller)
{
    static const char memory[] = "memory", table[] = "__indirect_function_table";

    if (!host->have_exports) {
        if (!wasmtime.caller_export_get(caller, memory, sizeof(memory) - 1, &host->memory) ||
            host->memory.kind != WBPF_EXTERN_MEMORY)
            return 0;
        host->have_table = wasmtime.caller_export_get(caller, table, sizeof(table) - 1, &host->table) &&
                           host->table.kind == WBPF_EXTERN_TABLE;
        host->have_exports = 1;
    }
    return 1;
}

/* Is func of type (i32 x nargs) -> i32? */
static int takes_i32s(void *context, const wbpf_func *func, size_t nargs)
{
    void *type = wasmtime.func_type(context, func);
    const wbpf_vec *params = wasmtime.functype_params(type), *results = wasmtime.functype_results(type);
    int ok = params->size == nargs && results->size == 1 &&
             wasmtime.valtype_kind(results->data[0]) == WBPF_VALTYPE_I32;

    for (size_t i = 0; ok && i < nargs; i++)
        ok = wasmtime.valtype_kind(params->data[i]) == WBPF_VALTYPE_I32;
    wasmtime.functype_delete(type);
    return ok;
}

/* The poll's callback, of the right type, in *func; 0 if there is none. */
static int find_callback(struct wbpf_host *host, void *caller, void *context, struct host_buffer *b,
                         int kind, uint32_t index, wbpf_func *func)
{
    size_t nargs = kind == WBPF_POLL_BATCH ? 4 : 3;

    if (kind == WBPF_POLL_EXPORT) {
        wbpf_extern item;
        if (!wasmtime.caller_export_get(caller, host->callback_export, strlen(host->callback_export), &item) ||
            item.kind != WBPF_EXTERN_FUNC)
            return 0;
        *func = item.of.func;
    } else {
        wbpf_val entry;
        if (!index || !host->have_table || !wasmtime.table_get(context, &host->table.of.table, index, &entry) ||
            entry.kind != WBPF_VAL_FUNCREF || !entry.of.funcref.store_id)
            return 0;
        *func = entry.of.funcref;
    }
    if (b->checked_nargs == (int)nargs && !memcmp(&b->checked, func, sizeof(*func)))
        return 1;
    if (!takes_i32s(context, func, nargs))
        return 0;
    b->checked = *func;
    b->checked_nargs = (int)nargs;
    return 1;
}

/* What ended a callback, as the trap that ends the guest's call. */
static void *as_trap(void *error, void *trap)
{
    static const char unknown[] = "guest callback failed";
    wbpf_vec message;

    if (trap || !error)
        return trap ? trap : wasmtime.trap_new(unknown, sizeof(unknown) - 1);
    wasmtime.error_message(error, &message);
    trap = wasmtime.trap_new((const char *)message.data, message.size);
    wasmtime.byte_vec_delete(&message);
    wasmtime.error_delete(error);
    return trap;
}

static int32_t guest_errno(const struct wbpf_host *host, int linux_errno)
{
    if (linux_errno <= 0 || (size_t)linux_errno >= host->n_errno)
        linux_errno = EIO;
    return host->wasi_errno[linux_errno];
}

/* The host function of the three poll imports:
 *   record, batch: (obj i64, fd, func, ctx, data, max_size, timeout_ms) -> i32
 *   export:        (obj i64, fd, ctx, data, max_size, timeout_ms) -> i32 */
static void *poll_import(void *env, void *caller, wbpf_val_raw *args, size_t nargs)
{
    const struct poll_import *import = env;
    struct wbpf_host *host = import->host;
    int kind = import->kind, first = kind == WBPF_POLL_EXPORT ? 2 : 3;
    int64_t handle = args[0].i64;
    int fd = args[1].i32;
    uint32_t data = (uint32_t)args[first + 1].i32;
    int32_t max_size = args[first + 2].i32;
    void *context = wasmtime.caller_context(caller);
    struct host_buffer *b = NULL;
    wbpf_func func;
    (void)nargs;

    host->polls++;
    for (size_t i = 0; i < host->n_buffers && !b; i++)
        if (host->buffers[i].handle == handle && host->buffers[i].fd == fd)
            b = &host->buffers[i];
    if (!b || !guest_exports(host, caller) ||
        !find_callback(host, caller, context, b, kind, (uint32_t)args[2].i32, &func) || max_size < 0 ||
        (kind == WBPF_POLL_BATCH && max_size < WBPF_BATCH_MIN_BUFFER) ||
        (uint64_t)data + (uint32_t)max_size > wasmtime.data_size(context, &host->memory.of.memory) ||
        b->buf->busy)
        return wbpf_poll_fallback(host->fallback, caller, kind, args);

    struct wbpf_guest_target target = {
        .context = context,
        .memory = &host->memory.of.memory,
        .func = &func,
        .ctx = (uint32_t)args[first].i32,
        .data = data,
        .max_size = (uint32_t)max_size,
        .batch = kind == WBPF_POLL_BATCH,
        .watch = host->watch,
    };
    struct wbpf_poll_result result;
    int rc = wbpf_buffer_poll(b->buf, &target, args[first + 3].i32, host->stop, &result);

    /* b may be gone: a callback may have closed another object or loaded one. */
    if (result.status == WBPF_POLL_WASM_ERROR)
        return as_trap(result.error, result.trap);
    if (rc < 0 && result.status != WBPF_POLL_CALLBACK_STOP)
        rc = -guest_errno(host, -rc);
    if (host->n_mirrors)
        wbpf_host_refresh_mirrors(host, wasmtime.data(context, &host->memory.of.memory),
                                  wasmtime.data_size(context, &host->memory.of.memory));
    args[0].i32 = rc;
    return NULL;
}

void *wbpf_host_define_poll(struct wbpf_host *host, void *linker, const char *module,
                            const char *name, const void *functype, int kind)
{
    return wasmtime.define_func_unchecked(linker, module, strlen(module), name, strlen(name), functype,
                                          poll_import, &host->imports[kind], NULL);
}

/* ---- libbpf helpers --------------------------------------------------------------- */

struct bpf_object *wbpf_object_open_mem(const void *buf, size_t size, const char *name, int *err)
{
    LIBBPF_OPTS(bpf_object_open_opts, opts, .object_name = name);
    struct bpf_object *obj = bpf_object__open_mem(buf, size, &opts);
    *err = obj ? 0 : -errno;
    return obj;
}

static struct bpf_link *link_or_err(struct bpf_link *link, int *err)
{
    *err = link ? 0 : (errno ? -errno : -EINVAL);
    return link;
}

struct bpf_link *wbpf_attach(struct bpf_program *prog, int *err)
{
    errno = 0;
    return link_or_err(bpf_program__attach(prog), err);
}

struct bpf_link *wbpf_attach_xdp(struct bpf_program *prog, int ifindex, int *err)
{
    errno = 0;
    return link_or_err(bpf_program__attach_xdp(prog, ifindex), err);
}

struct bpf_link *wbpf_attach_cgroup(struct bpf_program *prog, int cgroup_fd, int *err)
{
    errno = 0;
    return link_or_err(bpf_program__attach_cgroup(prog, cgroup_fd), err);
}

struct bpf_link *wbpf_attach_uprobe(struct bpf_program *prog, int retprobe, int pid,
                                    const char *binary, const char *func_name, size_t offset,
                                    int *err)
{
    LIBBPF_OPTS(bpf_uprobe_opts, opts, .retprobe = retprobe != 0, .func_name = func_name);
    errno = 0;
    return link_or_err(bpf_program__attach_uprobe_opts(prog, pid, binary, offset, &opts), err);
}

int wbpf_map_info(int fd, uint32_t *type, uint32_t *key_size, uint32_t *value_size,
                  uint32_t *max_entries, uint32_t *id)
{
    struct bpf_map_info info;
    __u32 len = sizeof(info);

    memset(&info, 0, len);
    if (bpf_obj_get_info_by_fd(fd, &info, &len))
        return -errno;
    *type = info.type;
    *key_size = info.key_size;
    *value_size = info.value_size;
    *max_entries = info.max_entries;
    *id = info.id;
    return 0;
}

/* ---- libbpf log capture ------------------------------------------------------------ */
#define LOG_CAPACITY 65536

/* libbpf has one print hook per process but calls it in the thread that called
 * libbpf, so the log and its level are per thread: instances running in parallel
 * threads never see each other's messages, and one's -v leaves the others' alone. */
struct thread_log {
    int level;
    size_t len;
    char text[LOG_CAPACITY];
};

static pthread_once_t log_once = PTHREAD_ONCE_INIT;
static pthread_key_t log_key;

static int log_print(enum libbpf_print_level level, const char *fmt, va_list ap);

static void log_key_create(void)
{
    pthread_key_create(&log_key, free);
    libbpf_set_print(log_print);
}

/* The calling thread's log, created on first use (NULL only when out of memory). */
static struct thread_log *thread_log(void)
{
    struct thread_log *log;

    pthread_once(&log_once, log_key_create);
    log = pthread_getspecific(log_key);
    if (!log && (log = calloc(1, sizeof(*log))) && pthread_setspecific(log_key, log)) {
        free(log);
        log = NULL;
    }
    return log;
}

#define LOG_HEAD 4096 /* of a message too long for the log: its head, then its tail */
#define LOG_AFTER 1024 /* left free after it, for the messages that follow (which program failed) */

/* Appends the formatted message `full` bytes long (more than the room left) as its
 * head and its tail: a verifier log ends with the reason of the refusal, which a
 * plain truncation would drop. */
static size_t log_head_and_tail(struct thread_log *log, size_t room, size_t full, const char *fmt, va_list ap)
{
    static const char cut[] = "\n[... libbpf's log shortened ...]\n";
    char *text = malloc(full + 1);
    size_t head, tail;

    if (!text || room < LOG_HEAD + sizeof(cut) + LOG_AFTER + 256) {
        free(text);
        return room - 1; /* what vsnprintf kept: the head only */
    }
    vsnprintf(text, full + 1, fmt, ap);
    head = LOG_HEAD;
    tail = room - 1 - head - (sizeof(cut) - 1) - LOG_AFTER;
    memcpy(log->text + log->len, text, head);
    memcpy(log->text + log->len + head, cut, sizeof(cut) - 1);
    memcpy(log->text + log->len + head + sizeof(cut) - 1, text + full - tail, tail);
    free(text);
    log->text[log->len + room - 1 - LOG_AFTER] = '\0';
    return room - 1 - LOG_AFTER;
}

static int log_print(enum libbpf_print_level level, const char *fmt, va_list ap)
{
    struct thread_log *log = thread_log();
    size_t room;
    va_list again;
    int n;

    if (!log || (int)level > log->level || log->len >= LOG_CAPACITY - 1)
        return 0;
    room = LOG_CAPACITY - log->len;
    va_copy(again, ap);
    n = vsnprintf(log->text + log->len, room, fmt, ap);
    if (n > 0)
        log->len += (size_t)n < room ? (size_t)n : log_head_and_tail(log, room, (size_t)n, fmt, again);
    va_end(again);
    return 0;
}

void wbpf_log_capture(int level)
{
    struct thread_log *log = thread_log();

    if (log)
        log->level = level;
}

size_t wbpf_log_take(char *out, size_t size)
{
    struct thread_log *log = thread_log();
    size_t n = 0;

    if (log) {
        n = log->len < size - 1 ? log->len : size - 1;
        memcpy(out, log->text, n);
        log->len = 0;
    }
    out[n] = '\0';
    return n;
}

/* ---- collecting for the host (kernel-only runs) ----------------------------------- */

int wbpf_buffer_epoll_fd(const struct wbpf_buffer *buf)
{
    return buf->ring ? ring_buffer__epoll_fd(buf->ring) : perf_buffer__epoll_fd(buf->perf);
}

/* Waits, then consumes whatever epoll said: the caller may have polled the epoll fd
 * itself, and that clears a perf event fd's readiness, so a plain poll afterwards
 * would leave its records waiting. */
int wbpf_buffer_collect(struct wbpf_buffer *buf, int timeout_ms)
{
    uint64_t before = buf->delivered;
    int rc = 0;

    if (buf->busy)
        return -EBUSY;
    if (timeout_ms != 0)
        rc = poll_once(buf, timeout_ms);
    if (rc >= 0 || rc == -EINTR)
        rc = poll_once(buf, 0);
    return rc < 0 ? rc : (int)(buf->delivered - before);
}

size_t wbpf_buffer_queued(const struct wbpf_buffer *buf) { return buf->queue_used; }

size_t wbpf_buffer_take(struct wbpf_buffer *buf, void *out, size_t size)
{
    size_t n = 0;

    while (n < buf->queue_used) { /* whole records only */
        uint32_t rec_size;
        memcpy(&rec_size, buf->queue + n, 4);
        size_t need = 4 + (((size_t)rec_size + 7) & ~(size_t)7);
        if (n + need > size)
            break;
        n += need;
    }
    memcpy(out, buf->queue, n);
    memmove(buf->queue, buf->queue + n, buf->queue_used - n);
    buf->queue_used -= n;
    return n;
}
