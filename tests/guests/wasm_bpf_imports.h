/* The host ABI (host_abi/ABI.md), declared by hand with the exact Wasm types. */
#ifndef WASM_BPF_IMPORTS_H
#define WASM_BPF_IMPORTS_H
#include <stdint.h>

#define WB_IMPORT(name) __attribute__((import_module("wasm_bpf"), import_name(name)))

/* (i32, i32) -> i64 */
WB_IMPORT("wasm_load_bpf_object")
uint64_t wasm_load_bpf_object(const void *obj_buf, int obj_buf_sz);
/* (i64, i32, i32) -> i32 */
WB_IMPORT("wasm_attach_bpf_program")
int wasm_attach_bpf_program(uint64_t obj, const char *name, const char *attach_target);
/* (i64, i32) -> i32 */
WB_IMPORT("wasm_bpf_map_fd_by_name")
int wasm_bpf_map_fd_by_name(uint64_t obj, const char *name);
/* (i64, i32, i32, i32, i32, i32, i32) -> i32 */
WB_IMPORT("wasm_bpf_buffer_poll")
int wasm_bpf_buffer_poll(uint64_t obj, int fd, int32_t sample_func, uint32_t ctx, void *data,
                         int max_size, int timeout_ms);
/* (i64) -> i32 */
WB_IMPORT("wasm_close_bpf_object")
int wasm_close_bpf_object(uint64_t obj);

#ifndef WB_MAP_OPERATE_I64
/* (i32, i32, i32, i32, i32, i64) -> i32 */
WB_IMPORT("wasm_bpf_map_operate")
int wasm_bpf_map_operate(int fd, int cmd, const void *key, void *value, void *next_key,
                         uint64_t flags);
#else
/* (i32, i32, i64, i64, i64, i64) -> i32: pointers as i64, as the Go and Rust SDKs declare it */
WB_IMPORT("wasm_bpf_map_operate")
int wasm_bpf_map_operate64(int fd, int cmd, uint64_t key, uint64_t value, uint64_t next_key,
                           uint64_t flags);
#endif

#define WB_LOOKUP 1
#define WB_UPDATE 2
#define WB_DELETE 3
#define WB_NEXT_KEY 4

/* Guest offsets: pointers are plain numbers for the host. */
#define OFF(p) ((uint32_t)(uintptr_t)(p))
#define PTR(o) ((void *)(uintptr_t)(uint32_t)(o))
static inline uint32_t mem_size(void) { return (uint32_t)__builtin_wasm_memory_size(0) * 65536u; }

#endif
