/* wasm-bpf kernel-only event path: ring buffers and perf event arrays drained into
 * a byte buffer that Python reads in batches (wasm_bpf.kernel_only).
 *
 * Separate from shim.c on purpose: it has no guest and no wasmtime, and is built as
 * its own extension module (wasm_bpf._drain, see build_drain.py).
 *
 * Records are stored back to back as [u32 size][size bytes][padding to 8].  libbpf
 * consumes a ring-buffer record even when the callback fails, so records are never
 * refused here: the store grows up to WBPF_DRAIN_MAX bytes, beyond that they count
 * as lost. */
#include <errno.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <bpf/bpf.h>
#include <bpf/libbpf.h>

#include "drain.h"

#define WBPF_DRAIN_MAX (64u << 20)

struct wbpf_drain {
    struct ring_buffer *ring;
    struct perf_buffer *perf;
    uint8_t *data;
    size_t used, cap;
    uint64_t records, lost;
};

static void store(struct wbpf_drain *d, const void *sample, uint32_t size)
{
    size_t need = 4 + (((size_t)size + 7) & ~(size_t)7);
    if (d->used + need > d->cap) {
        size_t cap = d->cap ? d->cap : 65536;
        while (d->used + need > cap)
            cap *= 2;
        if (cap > WBPF_DRAIN_MAX) {
            d->lost++;
            return;
        }
        uint8_t *p = realloc(d->data, cap);
        if (!p) {
            d->lost++;
            return;
        }
        d->data = p;
        d->cap = cap;
    }
    memcpy(d->data + d->used, &size, 4);
    memcpy(d->data + d->used + 4, sample, size);
    memset(d->data + d->used + 4 + size, 0, need - 4 - size);
    d->used += need;
    d->records++;
}

static int ring_cb(void *ctx, void *data, size_t size)
{
    store(ctx, data, (uint32_t)size);
    return 0;
}

static void perf_cb(void *ctx, int cpu, void *data, __u32 size)
{
    (void)cpu;
    store(ctx, data, size);
}

static void perf_lost_cb(void *ctx, int cpu, __u64 count)
{
    (void)cpu;
    ((struct wbpf_drain *)ctx)->lost += count;
}

struct wbpf_drain *wbpf_drain_new(int map_fd, size_t perf_pages, int *err)
{
    struct bpf_map_info info;
    uint32_t len = sizeof(info);
    struct wbpf_drain *d;

    memset(&info, 0, sizeof(info));
    *err = bpf_obj_get_info_by_fd(map_fd, &info, &len);
    if (*err < 0)
        return NULL;
    d = calloc(1, sizeof(*d));
    if (!d) {
        *err = -ENOMEM;
        return NULL;
    }
    if (info.type == BPF_MAP_TYPE_RINGBUF) {
        d->ring = ring_buffer__new(map_fd, ring_cb, d, NULL);
        *err = d->ring ? 0 : -errno;
    } else if (info.type == BPF_MAP_TYPE_PERF_EVENT_ARRAY) {
        d->perf = perf_buffer__new(map_fd, perf_pages ? perf_pages : 64, perf_cb, perf_lost_cb, d, NULL);
        *err = d->perf ? 0 : -errno;
    } else {
        *err = -EINVAL;
    }
    if (*err) {
        free(d);
        return NULL;
    }
    return d;
}

void wbpf_drain_free(struct wbpf_drain *d)
{
    if (!d)
        return;
    ring_buffer__free(d->ring);
    perf_buffer__free(d->perf);
    free(d->data);
    free(d);
}

int wbpf_drain_epoll_fd(const struct wbpf_drain *d)
{
    return d->ring ? ring_buffer__epoll_fd(d->ring) : perf_buffer__epoll_fd(d->perf);
}

/* Waits, then consumes every ring whatever epoll said: the caller may have polled the
 * epoll fd itself, and polling a perf event fd clears its readiness, so a plain
 * perf_buffer__poll(0) afterwards would leave those records waiting. */
int wbpf_drain_poll(struct wbpf_drain *d, int timeout_ms)
{
    uint64_t before = d->records;
    int rc = 0;

    if (timeout_ms != 0)
        rc = d->ring ? ring_buffer__poll(d->ring, timeout_ms) : perf_buffer__poll(d->perf, timeout_ms);
    if (rc >= 0 || rc == -EINTR)
        rc = d->ring ? ring_buffer__consume(d->ring) : perf_buffer__consume(d->perf);
    return rc < 0 ? rc : (int)(d->records - before);
}

size_t wbpf_drain_pending(const struct wbpf_drain *d) { return d->used; }

size_t wbpf_drain_take(struct wbpf_drain *d, void *out, size_t size)
{
    size_t n = 0;
    /* whole records only */
    while (n < d->used) {
        uint32_t rs;
        memcpy(&rs, d->data + n, 4);
        size_t need = 4 + (((size_t)rs + 7) & ~(size_t)7);
        if (n + need > size)
            break;
        n += need;
    }
    memcpy(out, d->data, n);
    memmove(d->data, d->data + n, d->used - n);
    d->used -= n;
    return n;
}

uint64_t wbpf_drain_records(const struct wbpf_drain *d) { return d->records; }
uint64_t wbpf_drain_lost(const struct wbpf_drain *d) { return d->lost; }
