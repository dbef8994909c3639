/* wasm-bpf kernel-only event path (drain.c): a ring buffer or perf event array whose
 * records are collected in C and read by Python in batches. */
#ifndef WASM_BPF_DRAIN_H
#define WASM_BPF_DRAIN_H

#include <stddef.h>
#include <stdint.h>

struct wbpf_drain;

/* A consumer for map_fd (ring buffer or perf event array; perf_pages per CPU, 0 = 64).
 * NULL with *err = negative errno on failure. */
struct wbpf_drain *wbpf_drain_new(int map_fd, size_t perf_pages, int *err);
void wbpf_drain_free(struct wbpf_drain *d);
/* The fd to wait on (epoll fd of libbpf's consumer). */
int wbpf_drain_epoll_fd(const struct wbpf_drain *d);
/* Collects what is available, waiting up to timeout_ms; records or negative errno. */
int wbpf_drain_poll(struct wbpf_drain *d, int timeout_ms);
/* Bytes collected and not yet taken. */
size_t wbpf_drain_pending(const struct wbpf_drain *d);
/* Moves whole records ([u32 size][data][pad to 8]) into out; returns bytes moved. */
size_t wbpf_drain_take(struct wbpf_drain *d, void *out, size_t size);
uint64_t wbpf_drain_records(const struct wbpf_drain *d);
uint64_t wbpf_drain_lost(const struct wbpf_drain *d);

#endif
