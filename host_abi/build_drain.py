"""cffi build script for wasm_bpf._drain (host_abi/drain.c): the kernel-only event
path, ring/perf buffers collected in C and read by Python in batches."""
from cffi import FFI

CDEF = r"""
struct wbpf_drain;
struct wbpf_drain *wbpf_drain_new(int map_fd, size_t perf_pages, int *err);
void wbpf_drain_free(struct wbpf_drain *d);
int wbpf_drain_epoll_fd(const struct wbpf_drain *d);
int wbpf_drain_poll(struct wbpf_drain *d, int timeout_ms);
size_t wbpf_drain_pending(const struct wbpf_drain *d);
size_t wbpf_drain_take(struct wbpf_drain *d, void *out, size_t size);
uint64_t wbpf_drain_records(const struct wbpf_drain *d);
uint64_t wbpf_drain_lost(const struct wbpf_drain *d);
"""

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "wasm_bpf._drain",
    '#include "drain.h"',
    sources=["host_abi/drain.c"],
    include_dirs=["host_abi"],
    libraries=["bpf"],
    extra_compile_args=["-O2", "-Wall"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
