"""cffi build script for the host shim: compiles host_abi/shim.c against the system
libbpf into the extension module ``wasm_bpf._shim`` (run by ``pip install``).

The cdef below is the whole kernel boundary of the Python host: the shim's own
functions (shim.h) plus the plain libbpf calls and BTF accessors Python uses."""
from cffi import FFI

CDEF = r"""
/* ---- shim.h ---- */
typedef union wbpf_val_raw { int32_t i32; int64_t i64; float f32; double f64; uint8_t v128[16];
                             uint32_t anyref; uint32_t externref; uint32_t exnref; void *funcref; } wbpf_val_raw;
typedef struct wbpf_func { uint64_t store_id; void *func_ref; } wbpf_func;
typedef struct wbpf_stored { struct { uint64_t store_id; uint32_t index; } inner; uint32_t instance; } wbpf_stored;
typedef struct wbpf_extern { uint8_t kind; union { wbpf_func func; wbpf_stored memory; wbpf_stored table;
                                                    uint8_t size[24]; } of; } wbpf_extern;
typedef struct wbpf_val { uint8_t kind; union { wbpf_func funcref; uint8_t size[24]; } of; } wbpf_val;
#define WBPF_EXTERN_FUNC ...
#define WBPF_EXTERN_TABLE ...
#define WBPF_EXTERN_MEMORY ...
#define WBPF_VAL_FUNCREF ...
#define WBPF_VALTYPE_I32 ...
struct wbpf_wasmtime_api {
    uintptr_t wasmtime_func_call_unchecked; uintptr_t wasmtime_memory_data; uintptr_t wasmtime_memory_data_size;
    uintptr_t wasmtime_caller_context; uintptr_t wasmtime_caller_export_get; uintptr_t wasmtime_table_get;
    uintptr_t wasmtime_func_type; uintptr_t wasm_functype_params; uintptr_t wasm_functype_results;
    uintptr_t wasm_valtype_kind; uintptr_t wasm_functype_delete; uintptr_t wasmtime_trap_new;
    uintptr_t wasmtime_error_message; uintptr_t wasmtime_error_delete; uintptr_t wasm_byte_vec_delete;
    uintptr_t wasmtime_linker_define_func_unchecked;
};
int wbpf_set_wasmtime_api(const struct wbpf_wasmtime_api *api);
struct wbpf_call_watch { uint64_t calls; uint32_t depth; };
struct wbpf_guest_target { void *context; const void *memory; const void *func;
                           uint32_t ctx; uint32_t data; uint32_t max_size; uint32_t batch;
                           struct wbpf_call_watch *watch; };
struct wbpf_batch_record { uint32_t size; uint32_t original_size; };
#define WBPF_BATCH_MIN_BUFFER ...
#define WBPF_POLL_OK ...
#define WBPF_POLL_CALLBACK_STOP ...
#define WBPF_POLL_WASM_ERROR ...
struct wbpf_poll_result { int status; int32_t callback_ret; void *error; void *trap; };
struct wbpf_buffer;
struct wbpf_buffer *wbpf_buffer_new(int map_fd, size_t perf_pages, int *err);
void wbpf_buffer_free(struct wbpf_buffer *buf);
struct wbpf_stop { volatile int *flag; int wake_fd; };
int wbpf_buffer_poll(struct wbpf_buffer *buf, const struct wbpf_guest_target *target,
                     int timeout_ms, const struct wbpf_stop *stop, struct wbpf_poll_result *result);
int wbpf_buffer_busy(const struct wbpf_buffer *buf);
#define WBPF_POLL_RECORD ...
#define WBPF_POLL_BATCH ...
#define WBPF_POLL_EXPORT ...
struct wbpf_host;
struct wbpf_host *wbpf_host_new(const struct wbpf_stop *stop, struct wbpf_call_watch *watch,
                                void *fallback, const char *callback_export,
                                const int32_t *wasi_errno, size_t n_errno);
void wbpf_host_free(struct wbpf_host *host);
void *wbpf_host_define_poll(struct wbpf_host *host, void *linker, const char *module,
                            const char *name, const void *functype, int kind);
int wbpf_host_add_buffer(struct wbpf_host *host, int64_t handle, int fd, struct wbpf_buffer *buf);
int wbpf_host_mirror(struct wbpf_host *host, int64_t handle, int fd, uint32_t ptr, uint32_t size);
void wbpf_host_refresh_mirrors(struct wbpf_host *host, uint8_t *base, size_t size);
void wbpf_host_forget(struct wbpf_host *host, int64_t handle);
uint64_t wbpf_host_polls(const struct wbpf_host *host);
extern "Python+C" void *wbpf_poll_fallback(void *fallback, void *caller, int kind, wbpf_val_raw *args);
uint64_t wbpf_buffer_delivered(const struct wbpf_buffer *buf);
uint64_t wbpf_buffer_lost(const struct wbpf_buffer *buf);
int wbpf_buffer_map_type(const struct wbpf_buffer *buf);
int wbpf_buffer_epoll_fd(const struct wbpf_buffer *buf);
int wbpf_buffer_collect(struct wbpf_buffer *buf, int timeout_ms);
size_t wbpf_buffer_queued(const struct wbpf_buffer *buf);
size_t wbpf_buffer_take(struct wbpf_buffer *buf, void *out, size_t size);
struct bpf_object *wbpf_object_open_mem(const void *buf, size_t size, const char *name, int *err);
struct bpf_link *wbpf_attach(struct bpf_program *prog, int *err);
struct bpf_link *wbpf_attach_xdp(struct bpf_program *prog, int ifindex, int *err);
struct bpf_link *wbpf_attach_cgroup(struct bpf_program *prog, int cgroup_fd, int *err);
struct bpf_link *wbpf_attach_uprobe(struct bpf_program *prog, int retprobe, int pid,
                                    const char *binary, const char *func_name,
                                    size_t offset, int *err);
void wbpf_log_capture(int level);
size_t wbpf_log_take(char *out, size_t size);
int wbpf_map_info(int fd, uint32_t *type, uint32_t *key_size, uint32_t *value_size,
                  uint32_t *max_entries, uint32_t *id);

/* ---- libbpf: objects, programs, maps, links ---- */
struct bpf_object;
struct bpf_program;
struct bpf_map;
struct bpf_link;
uint32_t libbpf_major_version(void);
uint32_t libbpf_minor_version(void);
int libbpf_num_possible_cpus(void);
int libbpf_strerror(int err, char *buf, size_t size);
int bpf_object__load(struct bpf_object *obj);
void bpf_object__close(struct bpf_object *obj);
const char *bpf_object__name(const struct bpf_object *obj);
struct bpf_program *bpf_object__find_program_by_name(const struct bpf_object *obj, const char *name);
struct bpf_program *bpf_object__next_program(const struct bpf_object *obj, struct bpf_program *prog);
struct bpf_map *bpf_object__next_map(const struct bpf_object *obj, const struct bpf_map *map);
const char *bpf_program__name(const struct bpf_program *prog);
const char *bpf_program__section_name(const struct bpf_program *prog);
bool bpf_program__autoload(const struct bpf_program *prog);
int bpf_program__set_autoload(struct bpf_program *prog, bool autoload);
int bpf_program__fd(const struct bpf_program *prog);
int bpf_program__type(const struct bpf_program *prog);
const void *bpf_program__insns(const struct bpf_program *prog);
size_t bpf_program__insn_cnt(const struct bpf_program *prog);  /* 8-byte struct bpf_insn each */
int libbpf_prog_type_by_name(const char *name, int *prog_type, int *expected_attach_type);
int bpf_link__destroy(struct bpf_link *link);
const char *bpf_map__name(const struct bpf_map *map);
int bpf_map__fd(const struct bpf_map *map);
int bpf_map__type(const struct bpf_map *map);
bool bpf_map__is_internal(const struct bpf_map *map);
uint32_t bpf_map__key_size(const struct bpf_map *map);
uint32_t bpf_map__value_size(const struct bpf_map *map);
uint32_t bpf_map__max_entries(const struct bpf_map *map);
uint32_t bpf_map__map_flags(const struct bpf_map *map);
int bpf_map__set_map_flags(struct bpf_map *map, uint32_t flags);
int bpf_map__set_max_entries(struct bpf_map *map, uint32_t max_entries);
int bpf_map__set_value_size(struct bpf_map *map, uint32_t size);
int bpf_map__set_pin_path(struct bpf_map *map, const char *path);
const char *bpf_map__pin_path(const struct bpf_map *map);
int bpf_map__pin(struct bpf_map *map, const char *path);
int bpf_map__unpin(struct bpf_map *map, const char *path);
struct bpf_map *bpf_map__inner_map(struct bpf_map *map);
int bpf_map_lookup_elem_flags(int fd, const void *key, void *value, uint64_t flags);
int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags);
int bpf_map_delete_elem_flags(int fd, const void *key, uint64_t flags);
int bpf_map_get_next_key(int fd, const void *key, void *next_key);
int bpf_prog_get_next_id(uint32_t start_id, uint32_t *next_id);
int bpf_link_get_next_id(uint32_t start_id, uint32_t *next_id);
int bpf_map_get_next_id(uint32_t start_id, uint32_t *next_id);
int bpf_enable_stats(int type);  /* BPF_STATS_RUN_TIME (0): run_cnt/run_time_ns while the fd is open */


/* ---- libbpf: BTF (used by the skeleton and header generators) ---- */
struct btf;
struct btf_type { uint32_t name_off; uint32_t info; union { uint32_t size; uint32_t type; }; };
struct btf_member { uint32_t name_off; uint32_t type; uint32_t offset; };
struct btf_array { uint32_t type; uint32_t index_type; uint32_t nelems; };
struct btf_enum { uint32_t name_off; int32_t val; };
struct btf_enum64 { uint32_t name_off; uint32_t val_lo32; uint32_t val_hi32; };
struct btf_param { uint32_t name_off; uint32_t type; };
struct btf_var { uint32_t linkage; };
struct btf_var_secinfo { uint32_t type; uint32_t offset; uint32_t size; };
struct btf *btf__parse(const char *path, void *btf_ext);
struct btf *btf__parse_split(const char *path, struct btf *base_btf);
struct btf *btf__load_vmlinux_btf(void);
struct btf *btf__new(const void *data, uint32_t size);
void btf__free(struct btf *btf);
uint32_t btf__type_cnt(const struct btf *btf);
const struct btf_type *btf__type_by_id(const struct btf *btf, uint32_t id);
const char *btf__name_by_offset(const struct btf *btf, uint32_t offset);
int64_t btf__resolve_size(const struct btf *btf, uint32_t type_id);
int btf__resolve_type(const struct btf *btf, uint32_t type_id);
int btf__align_of(const struct btf *btf, uint32_t id);
size_t btf__pointer_size(const struct btf *btf);
int32_t btf__find_by_name_kind(const struct btf *btf, const char *type_name, uint32_t kind);
uint16_t btf_kind(const struct btf_type *t);
uint16_t btf_vlen(const struct btf_type *t);
bool btf_kflag(const struct btf_type *t);
struct btf_member *btf_members(const struct btf_type *t);
uint32_t btf_member_bit_offset(const struct btf_type *t, uint32_t member_idx);
uint32_t btf_member_bitfield_size(const struct btf_type *t, uint32_t member_idx);
struct btf_array *btf_array(const struct btf_type *t);
struct btf_enum *btf_enum(const struct btf_type *t);
struct btf_enum64 *btf_enum64(const struct btf_type *t);
uint64_t btf_enum64_value(const struct btf_enum64 *e);
struct btf_param *btf_params(const struct btf_type *t);
struct btf_var *btf_var(const struct btf_type *t);
struct btf_var_secinfo *btf_var_secinfos(const struct btf_type *t);
uint8_t btf_int_encoding(const struct btf_type *t);
uint8_t btf_int_offset(const struct btf_type *t);
uint8_t btf_int_bits(const struct btf_type *t);
static const int BTF_KIND_UNKN;
static const int BTF_KIND_INT;
static const int BTF_KIND_PTR;
static const int BTF_KIND_ARRAY;
static const int BTF_KIND_STRUCT;
static const int BTF_KIND_UNION;
static const int BTF_KIND_ENUM;
static const int BTF_KIND_FWD;
static const int BTF_KIND_TYPEDEF;
static const int BTF_KIND_VOLATILE;
static const int BTF_KIND_CONST;
static const int BTF_KIND_RESTRICT;
static const int BTF_KIND_FUNC;
static const int BTF_KIND_FUNC_PROTO;
static const int BTF_KIND_VAR;
static const int BTF_KIND_DATASEC;
static const int BTF_KIND_FLOAT;
static const int BTF_KIND_DECL_TAG;
static const int BTF_KIND_TYPE_TAG;
static const int BTF_KIND_ENUM64;
/* BPF instruction classes and codes (helpers.py reads programs' calls) */
#define BPF_JMP ...
#define BPF_CALL ...
#define BPF_LD ...
#define BPF_IMM ...
#define BPF_DW ...
#define BPF_PSEUDO_CALL ...
/* more classes and ops, and the helpers the kernel-only code walker follows (kernel_only/spec.py) */
#define BPF_ALU64 ...
#define BPF_MOV ...
#define BPF_X ...
#define BPF_JMP32 ...
#define BPF_ST ...
#define BPF_STX ...
static const int BPF_FUNC_map_lookup_elem;
static const int BPF_FUNC_perf_event_output;
static const int BPF_FUNC_ringbuf_output;
static const int BPF_FUNC_trace_printk;
static const int BPF_FUNC_trace_vprintk;
/* the helpers a policy allows only by name (policy.OUTSIDE_TRACING): known without the kernel's BTF */
static const int BPF_FUNC_send_signal;
static const int BPF_FUNC_send_signal_thread;
static const int BPF_FUNC_override_return;
static const int BPF_FUNC_probe_write_user;
static const int BPF_FUNC_sys_bpf;
static const int BPF_FUNC_sys_close;
#define BTF_INT_SIGNED ...
#define BTF_INT_CHAR ...
#define BTF_INT_BOOL ...

/* ---- libbpf: attach kinds, links, probes, map API (issue 5) ---- */
enum bpf_tc_attach_point { BPF_TC_INGRESS, BPF_TC_EGRESS, BPF_TC_CUSTOM, ... };
struct bpf_tc_hook { size_t sz; int ifindex; enum bpf_tc_attach_point attach_point; uint32_t parent; ...; };
struct bpf_tc_opts { size_t sz; int prog_fd; uint32_t flags; uint32_t prog_id; uint32_t handle;
                     uint32_t priority; ...; };
int bpf_tc_hook_create(struct bpf_tc_hook *hook);
int bpf_tc_hook_destroy(struct bpf_tc_hook *hook);
int bpf_tc_attach(const struct bpf_tc_hook *hook, struct bpf_tc_opts *opts);
int bpf_tc_detach(const struct bpf_tc_hook *hook, const struct bpf_tc_opts *opts);
struct bpf_link_create_opts { size_t sz; uint32_t flags; ...; };
int bpf_link_create(int prog_fd, int target_fd, int attach_type, const struct bpf_link_create_opts *opts);
int bpf_prog_attach(int prog_fd, int attachable_fd, int type, unsigned int flags);
int bpf_prog_detach2(int prog_fd, int attachable_fd, int type);
int bpf_program__expected_attach_type(const struct bpf_program *prog);
struct bpf_link *bpf_program__attach_usdt(const struct bpf_program *prog, int pid, const char *binary_path,
                                          const char *usdt_provider, const char *usdt_name, const void *opts);
struct bpf_link *bpf_program__attach_perf_event(const struct bpf_program *prog, int pfd);
struct bpf_link *bpf_program__attach_iter(const struct bpf_program *prog, const void *opts);
struct bpf_kprobe_opts { size_t sz; uint64_t bpf_cookie; size_t offset; bool retprobe; ...; };
struct bpf_link *bpf_program__attach_kprobe_opts(const struct bpf_program *prog, const char *func_name,
                                                 const struct bpf_kprobe_opts *opts);
struct bpf_link *bpf_map__attach_struct_ops(const struct bpf_map *map);
struct bpf_map *bpf_object__find_map_by_name(const struct bpf_object *obj, const char *name);
int bpf_link__fd(const struct bpf_link *link);
int bpf_iter_create(int link_fd);
int libbpf_probe_bpf_prog_type(int prog_type, const void *opts);
int libbpf_probe_bpf_map_type(int map_type, const void *opts);
int bpf_map_lookup_and_delete_elem_flags(int fd, const void *key, void *value, uint64_t flags);
int bpf_map_lookup_and_delete_elem(int fd, const void *key, void *value);
struct bpf_map_batch_opts { size_t sz; uint64_t elem_flags; uint64_t flags; ...; };
int bpf_map_delete_batch(int fd, const void *keys, uint32_t *count, const struct bpf_map_batch_opts *opts);
int bpf_map_lookup_batch(int fd, void *in_batch, void *out_batch, void *keys, void *values, uint32_t *count,
                         const struct bpf_map_batch_opts *opts);
int bpf_map_lookup_and_delete_batch(int fd, void *in_batch, void *out_batch, void *keys, void *values,
                                    uint32_t *count, const struct bpf_map_batch_opts *opts);
int bpf_map_update_batch(int fd, const void *keys, const void *values, uint32_t *count,
                         const struct bpf_map_batch_opts *opts);
int bpf_map_get_fd_by_id(uint32_t id);
struct user_ring_buffer;
struct user_ring_buffer *user_ring_buffer__new(int map_fd, const void *opts);
void *user_ring_buffer__reserve(struct user_ring_buffer *rb, uint32_t size);
void user_ring_buffer__submit(struct user_ring_buffer *rb, void *sample);
void user_ring_buffer__free(struct user_ring_buffer *rb);
struct bpf_prog_load_opts { size_t sz; uint32_t expected_attach_type; uint32_t attach_btf_id; ...; };
int bpf_prog_load(int prog_type, const char *prog_name, const char *license, const void *insns,
                  size_t insn_cnt, struct bpf_prog_load_opts *opts);
const char *libbpf_bpf_prog_type_str(int t);
const char *libbpf_bpf_map_type_str(int t);

/* ---- kernel constants (<linux/bpf.h>, <linux/btf.h>, <linux/if_link.h>, <linux/openat2.h>,
 * <linux/perf_event.h>, <linux/if_ether.h>, <sys/socket.h>, <sys/syscall.h>), used by name in Python.
 * WBPF_*: constants newer than the build's kernel headers, defined in shim.h. ---- */
static const int BPF_MAP_TYPE_HASH;
static const int BPF_MAP_TYPE_ARRAY;
static const int BPF_MAP_TYPE_PROG_ARRAY;
static const int BPF_MAP_TYPE_PERF_EVENT_ARRAY;
static const int BPF_MAP_TYPE_STACK_TRACE;
static const int BPF_MAP_TYPE_PERCPU_HASH;
static const int BPF_MAP_TYPE_PERCPU_ARRAY;
static const int BPF_MAP_TYPE_LRU_HASH;
static const int BPF_MAP_TYPE_LRU_PERCPU_HASH;
static const int BPF_MAP_TYPE_CGROUP_ARRAY;
static const int BPF_MAP_TYPE_ARRAY_OF_MAPS;
static const int BPF_MAP_TYPE_HASH_OF_MAPS;
static const int BPF_MAP_TYPE_DEVMAP;
static const int BPF_MAP_TYPE_SOCKMAP;
static const int BPF_MAP_TYPE_CPUMAP;
static const int BPF_MAP_TYPE_XSKMAP;
static const int BPF_MAP_TYPE_SOCKHASH;
static const int BPF_MAP_TYPE_CGROUP_STORAGE;
static const int BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
static const int BPF_MAP_TYPE_REUSEPORT_SOCKARRAY;
static const int BPF_MAP_TYPE_QUEUE;
static const int BPF_MAP_TYPE_STACK;
static const int BPF_MAP_TYPE_SK_STORAGE;
static const int BPF_MAP_TYPE_DEVMAP_HASH;
static const int BPF_MAP_TYPE_STRUCT_OPS;
static const int BPF_MAP_TYPE_RINGBUF;
static const int BPF_MAP_TYPE_INODE_STORAGE;
static const int BPF_MAP_TYPE_TASK_STORAGE;
static const int BPF_MAP_TYPE_BLOOM_FILTER;
static const int BPF_MAP_TYPE_USER_RINGBUF;
#define WBPF_MAP_TYPE_CGRP_STORAGE ...
static const int BPF_PROG_TYPE_SOCKET_FILTER;
static const int BPF_PROG_TYPE_KPROBE;
static const int BPF_PROG_TYPE_SCHED_CLS;
static const int BPF_PROG_TYPE_XDP;
static const int BPF_PROG_TYPE_PERF_EVENT;
static const int BPF_PROG_TYPE_SK_SKB;
static const int BPF_PROG_TYPE_SK_MSG;
static const int BPF_PROG_TYPE_RAW_TRACEPOINT;
static const int BPF_PROG_TYPE_TRACING;
static const int BPF_PROG_TYPE_STRUCT_OPS;
static const int BPF_PROG_TYPE_LSM;
static const int BPF_SK_SKB_STREAM_PARSER;
static const int BPF_SK_SKB_STREAM_VERDICT;
static const int BPF_SK_MSG_VERDICT;
static const int BPF_TRACE_FENTRY;
static const int BPF_TRACE_FEXIT;
static const int BPF_MODIFY_RETURN;
static const int BPF_LSM_MAC;
static const int BPF_TRACE_ITER;
static const int BPF_XDP;
static const int BPF_SK_SKB_VERDICT;
#define WBPF_STRUCT_OPS ...
#define WBPF_TCX_INGRESS ...
#define WBPF_TCX_EGRESS ...
static const int BPF_MAP_LOOKUP_ELEM;
static const int BPF_MAP_UPDATE_ELEM;
static const int BPF_MAP_DELETE_ELEM;
static const int BPF_MAP_GET_NEXT_KEY;
static const int BPF_MAP_LOOKUP_AND_DELETE_ELEM;
static const int BPF_MAP_LOOKUP_BATCH;
static const int BPF_MAP_LOOKUP_AND_DELETE_BATCH;
static const int BPF_MAP_UPDATE_BATCH;
static const int BPF_MAP_DELETE_BATCH;
#define BPF_ANY ...
#define WBPF_F_LINK ...
#define XDP_FLAGS_SKB_MODE ...
#define XDP_FLAGS_DRV_MODE ...
#define BTF_MAGIC ...
#define RESOLVE_NO_MAGICLINKS ...
#define RESOLVE_BENEATH ...
#define SYS_openat2 ...
static const int PERF_TYPE_HARDWARE;
static const int PERF_TYPE_SOFTWARE;
static const int PERF_COUNT_HW_CPU_CYCLES;
static const int PERF_COUNT_HW_INSTRUCTIONS;
static const int PERF_COUNT_HW_CACHE_REFERENCES;
static const int PERF_COUNT_HW_CACHE_MISSES;
static const int PERF_COUNT_HW_BRANCH_INSTRUCTIONS;
static const int PERF_COUNT_HW_BRANCH_MISSES;
static const int PERF_COUNT_SW_CPU_CLOCK;
static const int PERF_COUNT_SW_TASK_CLOCK;
static const int PERF_COUNT_SW_PAGE_FAULTS;
static const int PERF_COUNT_SW_CONTEXT_SWITCHES;
static const int PERF_COUNT_SW_CPU_MIGRATIONS;
static const int PERF_COUNT_SW_PAGE_FAULTS_MIN;
static const int PERF_COUNT_SW_PAGE_FAULTS_MAJ;
#define PERF_FLAG_FD_CLOEXEC ...
#define SO_ATTACH_BPF ...
#define SO_DETACH_BPF ...
#define ETH_P_ALL ...
#define SYS_pidfd_getfd ...
#define SYS_perf_event_open ...
"""

ffibuilder = FFI()
ffibuilder.cdef(CDEF)
ffibuilder.set_source(
    "wasm_bpf._shim",
    '#include "shim.h"',
    # Relative to the project root, where setup.py runs.
    sources=["host_abi/shim.c"],
    include_dirs=["host_abi"],
    libraries=["bpf", "elf", "z", "pthread"],
    extra_compile_args=["-O2", "-Wall"],
)

if __name__ == "__main__":
    ffibuilder.compile(verbose=True)
