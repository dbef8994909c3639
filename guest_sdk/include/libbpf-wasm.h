/* libbpf-wasm.h: the libbpf-style API for the user-space half of a wasm-bpf program.
 *
 * A guest is a WASI command (C, wasm32) that loads a BPF object through the host
 * functions of import module "wasm_bpf" (see host_abi/ABI.md). This header is the
 * whole C SDK: the host imports, the skeleton runtime used by the skeletons that
 * `wasm-bpf gen skeleton` writes, map access, and ring/perf buffer polling.
 * Everything is static inline, so any number of translation units may include it.
 *
 * Conventions, as in libbpf 1.x: functions returning int return 0 (or a count) on
 * success and a negative errno on failure, and also set errno; functions returning
 * a pointer return NULL and set errno. Errno values are the guest's (wasi-libc)
 * numbering: compare with -EINTR, -ENOENT... from <errno.h>.
 *
 * Link with: -Wl,--export-table (the host calls buffer callbacks through the
 * exported function table). Every host import below names its import module, so
 * no --allow-undefined is needed, and none should be used: it would turn a missing
 * function into an import the host does not have.
 */
#ifndef __LIBBPF_WASM_H
#define __LIBBPF_WASM_H

#include <assert.h>
#include <errno.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Poll timeout the examples use between checks of their exit condition. */
#define POLL_TIMEOUT_MS 100

/* ------------------------------------------------------------------------- */
/* Host imports (module "wasm_bpf", upstream ABI; "wasm_bpf_ext", this host)  */
/* ------------------------------------------------------------------------- */

#define __WASM_BPF_IMPORT(module, name) __attribute__((import_module(module), import_name(name)))

/* An opaque object handle; 0 means "not loaded". */
typedef uint64_t bpf_object_skel;

__WASM_BPF_IMPORT("wasm_bpf", "wasm_load_bpf_object")
uint64_t wasm_load_bpf_object(const void *obj_buf, int obj_buf_sz);
__WASM_BPF_IMPORT("wasm_bpf", "wasm_attach_bpf_program")
int wasm_attach_bpf_program(uint64_t obj, const char *name, const char *attach_target);
__WASM_BPF_IMPORT("wasm_bpf", "wasm_bpf_map_fd_by_name")
int wasm_bpf_map_fd_by_name(uint64_t obj, const char *name);
__WASM_BPF_IMPORT("wasm_bpf", "wasm_bpf_buffer_poll")
int wasm_bpf_buffer_poll(uint64_t obj, int fd, int32_t sample_func, uint32_t ctx, char *data,
                         int max_size, int timeout_ms);
__WASM_BPF_IMPORT("wasm_bpf", "wasm_bpf_map_operate")
int wasm_bpf_map_operate(int fd, int cmd, void *key, void *value, void *next_key, uint64_t flags);
__WASM_BPF_IMPORT("wasm_bpf", "wasm_close_bpf_object")
int wasm_close_bpf_object(uint64_t obj);
/* Like wasm_load_bpf_object, but the programs named in [no_load, no_load+no_load_sz)
 * (NUL-terminated names back to back) are not loaded. Only imported when a guest
 * turns autoload off, so such guests need this host. */
__WASM_BPF_IMPORT("wasm_bpf_ext", "wasm_load_bpf_object_ex")
uint64_t wasm_load_bpf_object_ex(const void *obj_buf, int obj_buf_sz, const char *no_load,
                                 int no_load_sz);
/* Like wasm_bpf_buffer_poll, but batch_func(ctx, data, used, count) is called once
 * per batch of whole records (see bpf_buffer__poll_batch). Only imported by guests
 * that use batches. */
__WASM_BPF_IMPORT("wasm_bpf_ext", "wasm_bpf_buffer_poll_batch")
int wasm_bpf_buffer_poll_batch(uint64_t obj, int fd, int32_t batch_func, uint32_t ctx, char *data,
                               int max_size, int timeout_ms);

/* ------------------------------------------------------------------------- */
/* Kernel UAPI constants (linux/bpf.h)                                        */
/* ------------------------------------------------------------------------- */

/* flags for map updates */
enum {
    BPF_ANY = 0,     /* create a new element or update an existing one */
    BPF_NOEXIST = 1, /* create a new element only if it does not exist */
    BPF_EXIST = 2,   /* update an existing element */
    BPF_F_LOCK = 4,  /* spin_lock-ed lookup/update */
};

/* The map commands wasm_bpf_map_operate accepts (the kernel's enum bpf_cmd values). */
enum bpf_cmd {
    BPF_MAP_LOOKUP_ELEM = 1,
    BPF_MAP_UPDATE_ELEM = 2,
    BPF_MAP_DELETE_ELEM = 3,
    BPF_MAP_GET_NEXT_KEY = 4,
    BPF_MAP_LOOKUP_AND_DELETE_ELEM = 21,
    BPF_MAP_LOOKUP_BATCH = 24,           /* batch commands: wasm_bpf_map_batch */
    BPF_MAP_LOOKUP_AND_DELETE_BATCH = 25,
    BPF_MAP_UPDATE_BATCH = 26,
    BPF_MAP_DELETE_BATCH = 27,
};

/* Values of Linux 6.18's include/uapi/linux/bpf.h. */
enum bpf_map_type {
    BPF_MAP_TYPE_UNSPEC = 0,
    BPF_MAP_TYPE_HASH = 1,
    BPF_MAP_TYPE_ARRAY = 2,
    BPF_MAP_TYPE_PROG_ARRAY = 3,
    BPF_MAP_TYPE_PERF_EVENT_ARRAY = 4,
    BPF_MAP_TYPE_PERCPU_HASH = 5,
    BPF_MAP_TYPE_PERCPU_ARRAY = 6,
    BPF_MAP_TYPE_STACK_TRACE = 7,
    BPF_MAP_TYPE_CGROUP_ARRAY = 8,
    BPF_MAP_TYPE_LRU_HASH = 9,
    BPF_MAP_TYPE_LRU_PERCPU_HASH = 10,
    BPF_MAP_TYPE_LPM_TRIE = 11,
    BPF_MAP_TYPE_ARRAY_OF_MAPS = 12,
    BPF_MAP_TYPE_HASH_OF_MAPS = 13,
    BPF_MAP_TYPE_DEVMAP = 14,
    BPF_MAP_TYPE_SOCKMAP = 15,
    BPF_MAP_TYPE_CPUMAP = 16,
    BPF_MAP_TYPE_XSKMAP = 17,
    BPF_MAP_TYPE_SOCKHASH = 18,
    BPF_MAP_TYPE_CGROUP_STORAGE_DEPRECATED = 19,
    BPF_MAP_TYPE_CGROUP_STORAGE = 19,
    BPF_MAP_TYPE_REUSEPORT_SOCKARRAY = 20,
    BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE_DEPRECATED = 21,
    BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE = 21,
    BPF_MAP_TYPE_QUEUE = 22,
    BPF_MAP_TYPE_STACK = 23,
    BPF_MAP_TYPE_SK_STORAGE = 24,
    BPF_MAP_TYPE_DEVMAP_HASH = 25,
    BPF_MAP_TYPE_STRUCT_OPS = 26,
    BPF_MAP_TYPE_RINGBUF = 27,
    BPF_MAP_TYPE_INODE_STORAGE = 28,
    BPF_MAP_TYPE_TASK_STORAGE = 29,
    BPF_MAP_TYPE_BLOOM_FILTER = 30,
    BPF_MAP_TYPE_USER_RINGBUF = 31,
    BPF_MAP_TYPE_CGRP_STORAGE = 32,
    BPF_MAP_TYPE_ARENA = 33,
    __MAX_BPF_MAP_TYPE = 34,
};
enum bpf_prog_type {
    BPF_PROG_TYPE_UNSPEC = 0,
    BPF_PROG_TYPE_SOCKET_FILTER = 1,
    BPF_PROG_TYPE_KPROBE = 2,
    BPF_PROG_TYPE_SCHED_CLS = 3,
    BPF_PROG_TYPE_SCHED_ACT = 4,
    BPF_PROG_TYPE_TRACEPOINT = 5,
    BPF_PROG_TYPE_XDP = 6,
    BPF_PROG_TYPE_PERF_EVENT = 7,
    BPF_PROG_TYPE_CGROUP_SKB = 8,
    BPF_PROG_TYPE_CGROUP_SOCK = 9,
    BPF_PROG_TYPE_LWT_IN = 10,
    BPF_PROG_TYPE_LWT_OUT = 11,
    BPF_PROG_TYPE_LWT_XMIT = 12,
    BPF_PROG_TYPE_SOCK_OPS = 13,
    BPF_PROG_TYPE_SK_SKB = 14,
    BPF_PROG_TYPE_CGROUP_DEVICE = 15,
    BPF_PROG_TYPE_SK_MSG = 16,
    BPF_PROG_TYPE_RAW_TRACEPOINT = 17,
    BPF_PROG_TYPE_CGROUP_SOCK_ADDR = 18,
    BPF_PROG_TYPE_LWT_SEG6LOCAL = 19,
    BPF_PROG_TYPE_LIRC_MODE2 = 20,
    BPF_PROG_TYPE_SK_REUSEPORT = 21,
    BPF_PROG_TYPE_FLOW_DISSECTOR = 22,
    BPF_PROG_TYPE_CGROUP_SYSCTL = 23,
    BPF_PROG_TYPE_RAW_TRACEPOINT_WRITABLE = 24,
    BPF_PROG_TYPE_CGROUP_SOCKOPT = 25,
    BPF_PROG_TYPE_TRACING = 26,
    BPF_PROG_TYPE_STRUCT_OPS = 27,
    BPF_PROG_TYPE_EXT = 28,
    BPF_PROG_TYPE_LSM = 29,
    BPF_PROG_TYPE_SK_LOOKUP = 30,
    BPF_PROG_TYPE_SYSCALL = 31,
    BPF_PROG_TYPE_NETFILTER = 32,
    __MAX_BPF_PROG_TYPE = 33,
};
enum bpf_attach_type {
    BPF_CGROUP_INET_INGRESS = 0,
    BPF_CGROUP_INET_EGRESS = 1,
    BPF_CGROUP_INET_SOCK_CREATE = 2,
    BPF_CGROUP_SOCK_OPS = 3,
    BPF_SK_SKB_STREAM_PARSER = 4,
    BPF_SK_SKB_STREAM_VERDICT = 5,
    BPF_CGROUP_DEVICE = 6,
    BPF_SK_MSG_VERDICT = 7,
    BPF_CGROUP_INET4_BIND = 8,
    BPF_CGROUP_INET6_BIND = 9,
    BPF_CGROUP_INET4_CONNECT = 10,
    BPF_CGROUP_INET6_CONNECT = 11,
    BPF_CGROUP_INET4_POST_BIND = 12,
    BPF_CGROUP_INET6_POST_BIND = 13,
    BPF_CGROUP_UDP4_SENDMSG = 14,
    BPF_CGROUP_UDP6_SENDMSG = 15,
    BPF_LIRC_MODE2 = 16,
    BPF_FLOW_DISSECTOR = 17,
    BPF_CGROUP_SYSCTL = 18,
    BPF_CGROUP_UDP4_RECVMSG = 19,
    BPF_CGROUP_UDP6_RECVMSG = 20,
    BPF_CGROUP_GETSOCKOPT = 21,
    BPF_CGROUP_SETSOCKOPT = 22,
    BPF_TRACE_RAW_TP = 23,
    BPF_TRACE_FENTRY = 24,
    BPF_TRACE_FEXIT = 25,
    BPF_MODIFY_RETURN = 26,
    BPF_LSM_MAC = 27,
    BPF_TRACE_ITER = 28,
    BPF_CGROUP_INET4_GETPEERNAME = 29,
    BPF_CGROUP_INET6_GETPEERNAME = 30,
    BPF_CGROUP_INET4_GETSOCKNAME = 31,
    BPF_CGROUP_INET6_GETSOCKNAME = 32,
    BPF_XDP_DEVMAP = 33,
    BPF_CGROUP_INET_SOCK_RELEASE = 34,
    BPF_XDP_CPUMAP = 35,
    BPF_SK_LOOKUP = 36,
    BPF_XDP = 37,
    BPF_SK_SKB_VERDICT = 38,
    BPF_SK_REUSEPORT_SELECT = 39,
    BPF_SK_REUSEPORT_SELECT_OR_MIGRATE = 40,
    BPF_PERF_EVENT = 41,
    BPF_TRACE_KPROBE_MULTI = 42,
    BPF_LSM_CGROUP = 43,
    BPF_STRUCT_OPS = 44,
    BPF_NETFILTER = 45,
    BPF_TCX_INGRESS = 46,
    BPF_TCX_EGRESS = 47,
    BPF_TRACE_UPROBE_MULTI = 48,
    BPF_CGROUP_UNIX_CONNECT = 49,
    BPF_CGROUP_UNIX_SENDMSG = 50,
    BPF_CGROUP_UNIX_RECVMSG = 51,
    BPF_CGROUP_UNIX_GETPEERNAME = 52,
    BPF_CGROUP_UNIX_GETSOCKNAME = 53,
    BPF_NETKIT_PRIMARY = 54,
    BPF_NETKIT_PEER = 55,
    BPF_TRACE_KPROBE_SESSION = 56,
    BPF_TRACE_UPROBE_SESSION = 57,
    __MAX_BPF_ATTACH_TYPE = 58,
};

/* ------------------------------------------------------------------------- */
/* Logging                                                                    */
/* ------------------------------------------------------------------------- */

enum libbpf_print_level {
    LIBBPF_WARN,
    LIBBPF_INFO,
    LIBBPF_DEBUG,
};

typedef int (*libbpf_print_fn_t)(enum libbpf_print_level level, const char *fmt, va_list args);

static inline int __wasm_bpf_print_stderr(enum libbpf_print_level level, const char *fmt,
                                          va_list args) {
    if (level == LIBBPF_DEBUG)
        return 0;
    return vfprintf(stderr, fmt, args);
}

/* One print function for the whole module: a weak definition is merged by the linker
 * across all translation units that include this header. */
__attribute__((weak)) libbpf_print_fn_t __wasm_bpf_print_fn = __wasm_bpf_print_stderr;

/* Where the SDK's own warnings go (the host prints libbpf's messages itself, on its
 * stderr). NULL silences them. Returns the previous function. */
static inline libbpf_print_fn_t libbpf_set_print(libbpf_print_fn_t fn) {
    libbpf_print_fn_t old = __wasm_bpf_print_fn;
    __wasm_bpf_print_fn = fn;
    return old;
}

__attribute__((format(printf, 2, 3))) static inline void
__wasm_bpf_pr(enum libbpf_print_level level, const char *fmt, ...) {
    va_list args;
    if (!__wasm_bpf_print_fn)
        return;
    va_start(args, fmt);
    __wasm_bpf_print_fn(level, fmt, args);
    va_end(args);
}

/* libbpf 1.x convention: return the negative errno and set errno. */
static inline int __wasm_bpf_err(int ret) {
    if (ret < 0)
        errno = -ret;
    return ret;
}

/* For code written against old libbpf: NULL means failure, the reason is in errno. */
static inline long libbpf_get_error(const void *ptr) {
    return ptr ? 0 : -errno;
}

/* ------------------------------------------------------------------------- */
/* Objects, maps, programs                                                    */
/* ------------------------------------------------------------------------- */

/* How a map's contents are mirrored in guest memory (skel->rodata, ->data, ...). */
enum bpf_skel_map_kind {
    BPF_SKEL_MAP_PLAIN = 0, /* a map from SEC(".maps"): no guest mirror */
    BPF_SKEL_MAP_RODATA,    /* .rodata*: points into the guest's copy of the ELF image */
    BPF_SKEL_MAP_DATA,      /* .data*: ELF image before load, read back from the kernel at load */
    BPF_SKEL_MAP_BSS,       /* .bss: guest buffer, pushed to and read back from the kernel at load */
    BPF_SKEL_MAP_KCONFIG,   /* .kconfig: guest buffer, read back from the kernel at load */
};

struct bpf_object;

struct bpf_map {
    struct bpf_object *obj;
    const char *name;        /* the name the host resolves: map name or ELF section */
    int fd;                  /* host fd, cached on first use; -1 before */
    enum bpf_skel_map_kind kind;
    uint32_t type, key_size, value_size, max_entries; /* 0 when the generator did not know */
    void *section;           /* guest mirror of an internal map, or NULL */
    size_t section_sz;
};

struct bpf_program {
    struct bpf_object *obj;
    const char *name;
    char *attach_target;     /* NULL: libbpf auto-attach from the SEC() name */
    bool autoload;
    bool autoattach;
};

struct bpf_object {
    bpf_object_skel handle;  /* 0 until loaded */
    const char *name;
    unsigned char *elf;      /* the guest's private copy of the BPF ELF image */
    size_t elf_sz;
    int map_cnt;
    struct bpf_map *maps;
    int prog_cnt;
    struct bpf_program *progs;
};

/* Options are accepted for source compatibility and ignored. */
struct bpf_object_open_opts;

static inline const char *bpf_object__name(const struct bpf_object *obj) {
    return obj ? obj->name : NULL;
}

static inline struct bpf_map *bpf_object__find_map_by_name(const struct bpf_object *obj,
                                                           const char *name) {
    for (int i = 0; obj && name && i < obj->map_cnt; i++)
        if (strcmp(obj->maps[i].name, name) == 0)
            return &obj->maps[i];
    errno = ENOENT;
    return NULL;
}

static inline struct bpf_program *bpf_object__find_program_by_name(const struct bpf_object *obj,
                                                                   const char *name) {
    for (int i = 0; obj && name && i < obj->prog_cnt; i++)
        if (strcmp(obj->progs[i].name, name) == 0)
            return &obj->progs[i];
    errno = ENOENT;
    return NULL;
}

static inline const char *bpf_map__name(const struct bpf_map *map) {
    return map ? map->name : NULL;
}
static inline enum bpf_map_type bpf_map__type(const struct bpf_map *map) {
    return (enum bpf_map_type)map->type;
}
static inline uint32_t bpf_map__key_size(const struct bpf_map *map) {
    return map->key_size;
}
static inline uint32_t bpf_map__value_size(const struct bpf_map *map) {
    return map->value_size;
}
static inline uint32_t bpf_map__max_entries(const struct bpf_map *map) {
    return map->max_entries;
}

/* The map's host fd (looked up once, then cached), or a negative errno:
 * -EINVAL before the object is loaded. */
static inline int bpf_map__fd(const struct bpf_map *map) {
    struct bpf_map *m = (struct bpf_map *)map;
    int fd;
    if (!m || !m->obj || !m->obj->handle)
        return __wasm_bpf_err(-EINVAL);
    if (m->fd >= 0)
        return m->fd;
    fd = wasm_bpf_map_fd_by_name(m->obj->handle, m->name);
    if (fd < 0) {
        __wasm_bpf_pr(LIBBPF_WARN, "libbpf: map '%s': cannot get its fd: %s\n", m->name,
                      strerror(-fd));
        return __wasm_bpf_err(fd);
    }
    m->fd = fd;
    return fd;
}

/* Guest mirror of an internal map (.rodata/.data/.bss/.kconfig), like libbpf's. */
static inline void *bpf_map__initial_value(struct bpf_map *map, size_t *psize) {
    if (!map || !map->section) {
        errno = EINVAL;
        return NULL;
    }
    if (psize)
        *psize = map->section_sz;
    return map->section;
}

/* Replace the initial contents of an internal map; before load only. */
static inline int bpf_map__set_initial_value(struct bpf_map *map, const void *data, size_t size) {
    if (!map || !map->section || size != map->section_sz || map->obj->handle)
        return __wasm_bpf_err(-EINVAL);
    memcpy(map->section, data, size);
    return 0;
}

static inline const char *bpf_program__name(const struct bpf_program *prog) {
    return prog ? prog->name : NULL;
}
static inline bool bpf_program__autoload(const struct bpf_program *prog) {
    return prog->autoload;
}
static inline bool bpf_program__autoattach(const struct bpf_program *prog) {
    return prog->autoattach;
}

/* The loader that can skip programs. It is this host's extension, so it is only
 * referenced (and imported by the module) when the guest uses set_autoload: other
 * modules keep the upstream imports only and run on any wasm-bpf host. */
typedef uint64_t (*__wasm_bpf_load_ex_fn)(const void *, int, const char *, int);
__attribute__((weak)) __wasm_bpf_load_ex_fn __wasm_bpf_load_ex = NULL;

/* autoload off: the program is not loaded (nor attached). Before load only. */
static inline int bpf_program__set_autoload(struct bpf_program *prog, bool autoload) {
    if (!prog || prog->obj->handle)
        return __wasm_bpf_err(-EINVAL);
    prog->autoload = autoload;
    __wasm_bpf_load_ex = wasm_load_bpf_object_ex;
    return 0;
}

/* autoattach off: the skeleton's __attach() skips the program. */
static inline void bpf_program__set_autoattach(struct bpf_program *prog, bool autoattach) {
    prog->autoattach = autoattach;
}

/* Target for programs whose attachment needs one (see host_abi/ABI.md): an interface
 * name for xdp, a cgroup v2 directory for sockops/cgroup*, "binary:function" for
 * uprobe. NULL or "" means auto-attach. Returns 0 or -ENOMEM. */
static inline int bpf_set_prog_attach_target(struct bpf_program *prog, const char *attach_target) {
    char *copy = NULL;
    if (attach_target && *attach_target && !(copy = strdup(attach_target)))
        return __wasm_bpf_err(-ENOMEM);
    free(prog->attach_target);
    prog->attach_target = copy;
    return 0;
}

/* ------------------------------------------------------------------------- */
/* Map operations                                                             */
/* ------------------------------------------------------------------------- */

static inline int bpf_map_lookup_elem_flags(int fd, const void *key, void *value, uint64_t flags) {
    return __wasm_bpf_err(
        wasm_bpf_map_operate(fd, BPF_MAP_LOOKUP_ELEM, (void *)key, value, NULL, flags));
}
static inline int bpf_map_lookup_elem(int fd, const void *key, void *value) {
    return bpf_map_lookup_elem_flags(fd, key, value, 0);
}
static inline int bpf_map_update_elem(int fd, const void *key, const void *value, uint64_t flags) {
    return __wasm_bpf_err(
        wasm_bpf_map_operate(fd, BPF_MAP_UPDATE_ELEM, (void *)key, (void *)value, NULL, flags));
}
static inline int bpf_map_delete_elem_flags(int fd, const void *key, uint64_t flags) {
    return __wasm_bpf_err(
        wasm_bpf_map_operate(fd, BPF_MAP_DELETE_ELEM, (void *)key, NULL, NULL, flags));
}
static inline int bpf_map_delete_elem(int fd, const void *key) {
    return bpf_map_delete_elem_flags(fd, key, 0);
}
/* key NULL: the first key. Returns -ENOENT after the last one. */
static inline int bpf_map_get_next_key(int fd, const void *key, void *next_key) {
    return __wasm_bpf_err(
        wasm_bpf_map_operate(fd, BPF_MAP_GET_NEXT_KEY, (void *)key, NULL, next_key, 0));
}

static inline bool __wasm_bpf_map_is_percpu(const struct bpf_map *map) {
    return map->type == BPF_MAP_TYPE_PERCPU_HASH || map->type == BPF_MAP_TYPE_PERCPU_ARRAY ||
           map->type == BPF_MAP_TYPE_LRU_PERCPU_HASH ||
           map->type == BPF_MAP_TYPE_PERCPU_CGROUP_STORAGE;
}

/* libbpf 1.x checks the buffer sizes against the map definition: a wrong size is a
 * bug that would otherwise make the host write past the guest's buffer. Sizes the
 * generator did not know (0) are not checked. Per-CPU values must be a multiple of
 * the value size rounded up to 8 (one slot per possible CPU). */
static inline int __wasm_bpf_map_check(const struct bpf_map *map, size_t key_sz, size_t value_sz,
                                       bool check_value) {
    if (!map)
        return -EINVAL;
    if (map->key_size && key_sz != map->key_size) {
        __wasm_bpf_pr(LIBBPF_WARN, "libbpf: map '%s': unexpected key size %zu provided, expected %u\n",
                      map->name, key_sz, map->key_size);
        return -EINVAL;
    }
    if (!check_value || !map->value_size)
        return 0;
    if (__wasm_bpf_map_is_percpu(map)) {
        size_t slot = ((size_t)map->value_size + 7) / 8 * 8;
        if (value_sz && value_sz % slot == 0)
            return 0;
        __wasm_bpf_pr(LIBBPF_WARN,
                      "libbpf: map '%s': per-CPU value size %zu is not a multiple of %zu\n",
                      map->name, value_sz, slot);
        return -EINVAL;
    }
    if (value_sz != map->value_size) {
        __wasm_bpf_pr(LIBBPF_WARN,
                      "libbpf: map '%s': unexpected value size %zu provided, expected %u\n",
                      map->name, value_sz, map->value_size);
        return -EINVAL;
    }
    return 0;
}

static inline int bpf_map__lookup_elem(const struct bpf_map *map, const void *key, size_t key_sz,
                                       void *value, size_t value_sz, uint64_t flags) {
    int err = __wasm_bpf_map_check(map, key_sz, value_sz, true), fd;
    if (err)
        return __wasm_bpf_err(err);
    if ((fd = bpf_map__fd(map)) < 0)
        return fd;
    return bpf_map_lookup_elem_flags(fd, key, value, flags);
}

static inline int bpf_map__update_elem(const struct bpf_map *map, const void *key, size_t key_sz,
                                       const void *value, size_t value_sz, uint64_t flags) {
    int err = __wasm_bpf_map_check(map, key_sz, value_sz, true), fd;
    if (err)
        return __wasm_bpf_err(err);
    if ((fd = bpf_map__fd(map)) < 0)
        return fd;
    return bpf_map_update_elem(fd, key, value, flags);
}

static inline int bpf_map__delete_elem(const struct bpf_map *map, const void *key, size_t key_sz,
                                       uint64_t flags) {
    int err = __wasm_bpf_map_check(map, key_sz, 0, false), fd;
    if (err)
        return __wasm_bpf_err(err);
    if ((fd = bpf_map__fd(map)) < 0)
        return fd;
    return bpf_map_delete_elem_flags(fd, key, flags);
}

static inline int bpf_map__get_next_key(const struct bpf_map *map, const void *cur_key,
                                        void *next_key, size_t key_sz) {
    int err = __wasm_bpf_map_check(map, key_sz, 0, false), fd;
    if (err)
        return __wasm_bpf_err(err);
    if ((fd = bpf_map__fd(map)) < 0)
        return fd;
    return bpf_map_get_next_key(fd, cur_key, next_key);
}

/* ---- .data/.bss/.kconfig mirrors (skel->data, skel->bss, skel->kconfig) ---- */

/* Copy the kernel's current contents of an internal map into its guest mirror, so
 * that skel->bss->x shows what the BPF programs wrote. Needs a loaded object. */
static inline int bpf_map__refresh(struct bpf_map *map) {
    uint32_t zero = 0;
    int fd;
    if (!map || !map->section)
        return __wasm_bpf_err(-EINVAL);
    if ((fd = bpf_map__fd(map)) < 0)
        return fd;
    return bpf_map_lookup_elem(fd, &zero, map->section);
}

/* Write the guest mirror of an internal map to the kernel (the BPF programs see the
 * new values). The kernel refuses this for .rodata and .kconfig (-EPERM): they are
 * frozen at load. */
static inline int bpf_map__writeback(struct bpf_map *map) {
    uint32_t zero = 0;
    int fd;
    if (!map || !map->section)
        return __wasm_bpf_err(-EINVAL);
    if ((fd = bpf_map__fd(map)) < 0)
        return fd;
    return bpf_map_update_elem(fd, &zero, map->section, BPF_ANY);
}

/* ------------------------------------------------------------------------- */
/* Skeletons (the structures `wasm-bpf gen skeleton` fills in)                */
/* ------------------------------------------------------------------------- */

struct bpf_map_skeleton {
    const char *name;         /* map name, or the ELF section of an internal map */
    struct bpf_map **map;     /* &skel->maps.x */
    void **mmaped;            /* &skel->rodata etc., or NULL */
    enum bpf_skel_map_kind kind;
    size_t elf_offset;        /* file offset of the section (RODATA, DATA) */
    size_t size;              /* section size (internal maps) */
    uint32_t type, key_size, value_size, max_entries;
};

struct bpf_prog_skeleton {
    const char *name;
    struct bpf_program **prog; /* &skel->progs.x */
};

struct bpf_object_skeleton {
    size_t sz; /* sizeof(struct bpf_object_skeleton) */
    const char *name;
    const void *data; /* the embedded BPF ELF object */
    size_t data_sz;
    struct bpf_object **obj;
    int map_cnt;
    int map_skel_sz;
    struct bpf_map_skeleton *maps;
    int prog_cnt;
    int prog_skel_sz;
    struct bpf_prog_skeleton *progs;
};

static inline void bpf_object__destroy_skeleton(struct bpf_object_skeleton *s);

/* Build the guest-side object: a private copy of the ELF image (so every skeleton
 * instance has its own .rodata/.data), one struct per map and program, and the
 * section mirrors behind skel->rodata/data/bss/kconfig. Nothing reaches the host. */
static inline int bpf_object__open_skeleton(struct bpf_object_skeleton *s,
                                            const struct bpf_object_open_opts *opts) {
    struct bpf_object *obj;
    (void)opts;
    if (!s || !s->data || !s->data_sz || !s->obj || s->data_sz > INT32_MAX)
        return __wasm_bpf_err(-EINVAL);
    obj = (struct bpf_object *)calloc(1, sizeof(*obj));
    if (!obj)
        return __wasm_bpf_err(-ENOMEM);
    *s->obj = obj;
    obj->name = s->name;
    obj->elf = (unsigned char *)malloc(s->data_sz);
    obj->maps = (struct bpf_map *)calloc(s->map_cnt + 1, sizeof(*obj->maps));
    obj->progs = (struct bpf_program *)calloc(s->prog_cnt + 1, sizeof(*obj->progs));
    if (!obj->elf || !obj->maps || !obj->progs)
        return __wasm_bpf_err(-ENOMEM);
    memcpy(obj->elf, s->data, s->data_sz);
    obj->elf_sz = s->data_sz;
    for (int i = 0; i < s->map_cnt; i++) {
        const struct bpf_map_skeleton *ms =
            (const struct bpf_map_skeleton *)((const char *)s->maps + i * s->map_skel_sz);
        struct bpf_map *m = &obj->maps[i];
        obj->map_cnt = i + 1;
        m->obj = obj;
        m->name = ms->name;
        m->fd = -1;
        m->kind = ms->kind;
        m->type = ms->type;
        m->key_size = ms->key_size;
        m->value_size = ms->value_size;
        m->max_entries = ms->max_entries;
        m->section_sz = ms->size;
        switch (ms->kind) {
        case BPF_SKEL_MAP_RODATA:
        case BPF_SKEL_MAP_DATA:
            if (ms->elf_offset > s->data_sz || ms->size > s->data_sz - ms->elf_offset)
                return __wasm_bpf_err(-EINVAL);
            m->section = obj->elf + ms->elf_offset;
            break;
        case BPF_SKEL_MAP_BSS:
        case BPF_SKEL_MAP_KCONFIG:
            if (!(m->section = calloc(1, ms->size ? ms->size : 1)))
                return __wasm_bpf_err(-ENOMEM);
            break;
        default:
            break;
        }
        if (ms->mmaped)
            *ms->mmaped = m->section;
        *ms->map = m;
    }
    for (int i = 0; i < s->prog_cnt; i++) {
        const struct bpf_prog_skeleton *ps =
            (const struct bpf_prog_skeleton *)((const char *)s->progs + i * s->prog_skel_sz);
        struct bpf_program *p = &obj->progs[i];
        p->obj = obj;
        p->name = ps->name;
        p->autoload = p->autoattach = true;
        *ps->prog = p;
    }
    obj->prog_cnt = s->prog_cnt;
    return 0;
}

static inline uint64_t __wasm_bpf_load(struct bpf_object *obj) {
    size_t len = 0;
    char *names, *p;
    uint64_t handle;
    for (int i = 0; i < obj->prog_cnt; i++)
        if (!obj->progs[i].autoload)
            len += strlen(obj->progs[i].name) + 1;
    if (!len)
        return wasm_load_bpf_object(obj->elf, (int)obj->elf_sz);
    /* Some program must not be loaded: only the extension can do that. */
    if (!__wasm_bpf_load_ex || !(p = names = (char *)malloc(len)))
        return 0;
    for (int i = 0; i < obj->prog_cnt; i++) {
        if (!obj->progs[i].autoload) {
            size_t n = strlen(obj->progs[i].name) + 1;
            memcpy(p, obj->progs[i].name, n);
            p += n;
        }
    }
    handle = __wasm_bpf_load_ex(obj->elf, (int)obj->elf_sz, names, (int)len);
    free(names);
    return handle;
}

/* Load every program and map into the kernel (the host prints the reason of a
 * failure on stderr; the guest gets -EINVAL). Then make the section mirrors match
 * the kernel: .bss written before load is pushed, .data/.bss/.kconfig are read back. */
static inline int bpf_object__load_skeleton(struct bpf_object_skeleton *s) {
    struct bpf_object *obj = s && s->obj ? *s->obj : NULL;
    int err = 0;
    if (!obj || obj->handle)
        return __wasm_bpf_err(-EINVAL);
    obj->handle = __wasm_bpf_load(obj);
    if (!obj->handle) {
        __wasm_bpf_pr(LIBBPF_WARN, "libbpf: failed to load BPF object '%s'\n", obj->name);
        return __wasm_bpf_err(-EINVAL);
    }
    for (int i = 0; i < obj->map_cnt && !err; i++) {
        struct bpf_map *m = &obj->maps[i];
        bool dirty = false;
        if (m->kind != BPF_SKEL_MAP_BSS)
            continue;
        for (size_t j = 0; j < m->section_sz && !dirty; j++)
            dirty = ((unsigned char *)m->section)[j] != 0;
        if (dirty)
            err = bpf_map__writeback(m);
    }
    for (int i = 0; i < obj->map_cnt && !err; i++) {
        struct bpf_map *m = &obj->maps[i];
        if (m->kind == BPF_SKEL_MAP_DATA || m->kind == BPF_SKEL_MAP_BSS ||
            m->kind == BPF_SKEL_MAP_KCONFIG)
            err = bpf_map__refresh(m);
        if (err)
            __wasm_bpf_pr(LIBBPF_WARN, "libbpf: map '%s': cannot sync its contents: %s\n",
                          m->name, strerror(-err));
    }
    if (err) {
        wasm_close_bpf_object(obj->handle);
        obj->handle = 0;
        for (int i = 0; i < obj->map_cnt; i++)
            obj->maps[i].fd = -1;
        return __wasm_bpf_err(err);
    }
    return 0;
}

/* Attach every loaded program whose autoattach is on; stops at the first failure
 * (the links made so far stay until destroy). */
static inline int bpf_object__attach_skeleton(struct bpf_object_skeleton *s) {
    struct bpf_object *obj = s && s->obj ? *s->obj : NULL;
    if (!obj || !obj->handle)
        return __wasm_bpf_err(-EINVAL);
    for (int i = 0; i < obj->prog_cnt; i++) {
        struct bpf_program *p = &obj->progs[i];
        int err;
        if (!p->autoload || !p->autoattach)
            continue;
        err = wasm_attach_bpf_program(obj->handle, p->name, p->attach_target);
        if (err < 0) {
            __wasm_bpf_pr(LIBBPF_WARN, "libbpf: prog '%s': failed to attach: %s\n", p->name,
                          strerror(-err));
            return __wasm_bpf_err(err);
        }
    }
    return 0;
}

/* The host ABI has no per-link detach: links are removed when the object is
 * destroyed (wasm_close_bpf_object). Kept for source compatibility. */
static inline void bpf_object__detach_skeleton(struct bpf_object_skeleton *s) {
    (void)s;
}

/* Close the object in the host (detaching everything) and free the guest state. */
static inline void bpf_object__destroy_skeleton(struct bpf_object_skeleton *s) {
    struct bpf_object *obj;
    if (!s)
        return;
    obj = s->obj ? *s->obj : NULL;
    if (obj) {
        if (obj->handle)
            wasm_close_bpf_object(obj->handle);
        for (int i = 0; obj->maps && i < obj->map_cnt; i++)
            if (obj->maps[i].kind == BPF_SKEL_MAP_BSS || obj->maps[i].kind == BPF_SKEL_MAP_KCONFIG)
                free(obj->maps[i].section);
        for (int i = 0; obj->progs && i < obj->prog_cnt; i++)
            free(obj->progs[i].attach_target);
        free(obj->maps);
        free(obj->progs);
        free(obj->elf);
        free(obj);
        *s->obj = NULL;
    }
    free(s->maps);
    free(s->progs);
    free(s);
}

/* ------------------------------------------------------------------------- */
/* Ring buffer / perf event array polling                                     */
/* ------------------------------------------------------------------------- */

/* Called synchronously inside bpf_buffer__poll for every record; data is valid
 * only during the call. A negative return stops the poll and is returned by it. */
typedef int (*bpf_buffer_sample_fn)(void *ctx, void *data, size_t size);

/* Default size of the heap buffer records are copied into; longer records are
 * truncated (size tells the truncated length). Define before including this
 * header, or use bpf_buffer__set_record_size() per buffer. */
#ifndef BPF_BUFFER_RECORD_SIZE
#define BPF_BUFFER_RECORD_SIZE (64 * 1024)
#endif

/* Batch delivery (this host's extension, import wasm_bpf_ext.wasm_bpf_buffer_poll_batch):
 * called once per batch with `count` records packed in data[0, size), each a
 * struct bpf_buffer_record; walk them with bpf_buffer_record__next(). A negative
 * return stops the poll and is returned by it. */
typedef int (*bpf_buffer_batch_fn)(void *ctx, void *data, size_t size, size_t count);

struct bpf_buffer_record {
    uint32_t size;          /* bytes in data (truncated to what fits in the buffer) */
    uint32_t original_size; /* the record's size in the kernel */
    unsigned char data[];   /* 8-byte aligned */
};

static inline struct bpf_buffer_record *bpf_buffer_record__next(struct bpf_buffer_record *rec) {
    return (struct bpf_buffer_record *)((char *)rec + sizeof(*rec) + ((rec->size + 7u) & ~7u));
}

struct bpf_buffer {
    struct bpf_map *events; /* a BPF_MAP_TYPE_RINGBUF or BPF_MAP_TYPE_PERF_EVENT_ARRAY */
    int fd;
    void *ctx;
    bpf_buffer_sample_fn sample_fn;
    bpf_buffer_batch_fn batch_fn;
    char *record;
    size_t record_size;
};

static inline struct bpf_buffer *__wasm_bpf_buffer_alloc(struct bpf_map *events,
                                                         bpf_buffer_sample_fn sample_cb,
                                                         void *ctx) {
    struct bpf_buffer *buf;
    int fd = bpf_map__fd(events);
    if (fd < 0)
        return NULL;
    buf = (struct bpf_buffer *)calloc(1, sizeof(*buf));
    if (!buf || !(buf->record = (char *)malloc(BPF_BUFFER_RECORD_SIZE))) {
        free(buf);
        errno = ENOMEM;
        return NULL;
    }
    buf->events = events;
    buf->fd = fd;
    buf->ctx = ctx;
    buf->sample_fn = sample_cb;
    buf->record_size = BPF_BUFFER_RECORD_SIZE;
    return buf;
}

/* A buffer that polls `events` and calls sample_cb(ctx, record, size) per record.
 * Needs a loaded object. NULL with errno on failure. */
static inline struct bpf_buffer *bpf_buffer__open(struct bpf_map *events,
                                                  bpf_buffer_sample_fn sample_cb, void *ctx) {
    if (!sample_cb) {
        errno = EINVAL;
        return NULL;
    }
    return __wasm_bpf_buffer_alloc(events, sample_cb, ctx);
}

/* Upstream compatibility: a buffer without a callback (polling it gives -EINVAL).
 * A second argument (bcc's heap map) is accepted and ignored. */
static inline struct bpf_buffer *bpf_buffer__new(struct bpf_map *events, ...) {
    return __wasm_bpf_buffer_alloc(events, NULL, NULL);
}

/* Change the record buffer size (bytes, 1..INT32_MAX). 0 or -ENOMEM/-EINVAL. */
static inline int bpf_buffer__set_record_size(struct bpf_buffer *buf, size_t size) {
    char *record;
    if (!buf || !size || size > INT32_MAX)
        return __wasm_bpf_err(-EINVAL);
    if (!(record = (char *)realloc(buf->record, size)))
        return __wasm_bpf_err(-ENOMEM);
    buf->record = record;
    buf->record_size = size;
    return 0;
}

/* Deliver the available records. timeout_ms > 0: wait at most that long for the
 * first record; 0: never block; < 0: wait until a record arrives or the run is
 * stopped. Returns the number of records delivered, or a negative errno; -EINTR
 * when the host is stopping the program (Ctrl-C): leave the loop and clean up. */
static inline int bpf_buffer__poll(struct bpf_buffer *buf, int timeout_ms) {
    if (!buf || !buf->sample_fn)
        return __wasm_bpf_err(-EINVAL);
    return __wasm_bpf_err(wasm_bpf_buffer_poll(
        buf->events->obj->handle, buf->fd, (int32_t)(intptr_t)buf->sample_fn,
        (uint32_t)(uintptr_t)buf->ctx, buf->record, (int)buf->record_size, timeout_ms));
}

/* A buffer whose records reach batch_cb(ctx, data, size, count) in batches, as
 * many whole records as fit in its record buffer (BPF_BUFFER_RECORD_SIZE), through
 * bpf_buffer__poll_batch(). One guest call per batch instead of one per record. */
static inline struct bpf_buffer *bpf_buffer__open_batch(struct bpf_map *events,
                                                        bpf_buffer_batch_fn batch_cb, void *ctx) {
    struct bpf_buffer *buf;
    if (!batch_cb) {
        errno = EINVAL;
        return NULL;
    }
    buf = __wasm_bpf_buffer_alloc(events, NULL, ctx);
    if (buf)
        buf->batch_fn = batch_cb;
    return buf;
}

/* Like bpf_buffer__poll, for a buffer opened with bpf_buffer__open_batch: returns
 * the number of records delivered, the callback's negative result, or -errno. */
static inline int bpf_buffer__poll_batch(struct bpf_buffer *buf, int timeout_ms) {
    if (!buf || !buf->batch_fn)
        return __wasm_bpf_err(-EINVAL);
    return __wasm_bpf_err(wasm_bpf_buffer_poll_batch(
        buf->events->obj->handle, buf->fd, (int32_t)(intptr_t)buf->batch_fn,
        (uint32_t)(uintptr_t)buf->ctx, buf->record, (int)buf->record_size, timeout_ms));
}

/* Deliver what is already there, without waiting. */
static inline int bpf_buffer__consume(struct bpf_buffer *buf) {
    return bpf_buffer__poll(buf, 0);
}

static inline void bpf_buffer__free(struct bpf_buffer *buf) {
    if (!buf)
        return;
    free(buf->record);
    free(buf);
}

/* ------------------------------------------------------------------------- */
/* Links, iterators, more map operations (module "wasm_bpf_ext", this host)  */
/* ------------------------------------------------------------------------- */

__WASM_BPF_IMPORT("wasm_bpf_ext", "wasm_bpf_attach_link")
int64_t wasm_bpf_attach_link(uint64_t obj, const char *name, const char *target);
__WASM_BPF_IMPORT("wasm_bpf_ext", "wasm_bpf_link_destroy")
int wasm_bpf_link_destroy(int64_t link);
__WASM_BPF_IMPORT("wasm_bpf_ext", "wasm_bpf_iter_read")
int wasm_bpf_iter_read(uint64_t obj, const char *prog, void *buf, int len);
__WASM_BPF_IMPORT("wasm_bpf_ext", "wasm_bpf_map_batch")
int wasm_bpf_map_batch(int fd, int cmd, void *in_batch, void *out_batch, void *keys, void *values,
                       uint32_t *count, uint64_t elem_flags, uint64_t flags);

__WASM_BPF_IMPORT("wasm_bpf_ext", "wasm_bpf_num_possible_cpus")
int wasm_bpf_num_possible_cpus(void);

/* The number of per-CPU slots in a per-CPU map's value (libbpf's meaning). */
static inline int libbpf_num_possible_cpus(void) {
    return __wasm_bpf_err(wasm_bpf_num_possible_cpus());
}

__WASM_BPF_IMPORT("wasm_bpf_ext", "wasm_bpf_map_mirror")
int wasm_bpf_map_mirror(int fd, void *mirror, int size);

/* ✱ Live mirror: from now on the host copies the kernel's current contents of this
 * internal map (.bss, .data) into its guest mirror at the end of every host call
 * (each bpf_buffer__poll, map operation...), so skel->bss->x reads the live value
 * without bpf_map__refresh(). Read-only: the next host call overwrites guest writes,
 * so write with bpf_map__writeback() (or a map update). live=false stops it. */
static inline int bpf_map__set_live(struct bpf_map *map, bool live) {
    int fd;
    if (!map || !map->section)
        return __wasm_bpf_err(-EINVAL);
    if ((fd = bpf_map__fd(map)) < 0)
        return fd;
    return __wasm_bpf_err(wasm_bpf_map_mirror(fd, live ? map->section : NULL,
                                              live ? (int)map->section_sz : 0));
}

/* One attachment; bpf_link__destroy() detaches it (the object's destroy also does). */
struct bpf_link {
    int64_t handle;
};

/* Attach with a target string of the host's syntax (host_abi/ABI.md): "veth0",
 * "tcx:eth0:ingress", "libc.so.6:getpid,pid=42", "cpu-clock,freq=99", a cgroup
 * path, a sockmap name... NULL or "" auto-attaches from the SEC() name. */
static inline struct bpf_link *bpf_program__attach_target(const struct bpf_program *prog,
                                                          const char *target) {
    struct bpf_link *link;
    int64_t h;
    if (!prog || !prog->obj || !prog->obj->handle) {
        errno = EINVAL;
        return NULL;
    }
    h = wasm_bpf_attach_link(prog->obj->handle, prog->name, target);
    if (h < 0) {
        errno = (int)-h;
        return NULL;
    }
    if (!(link = (struct bpf_link *)malloc(sizeof(*link)))) {
        wasm_bpf_link_destroy(h);
        errno = ENOMEM;
        return NULL;
    }
    link->handle = h;
    return link;
}
/* With the program's target (bpf_set_prog_attach_target), else from SEC(). */
static inline struct bpf_link *bpf_program__attach(const struct bpf_program *prog) {
    return bpf_program__attach_target(prog, prog ? prog->attach_target : NULL);
}
static inline struct bpf_link *bpf_program__attach_uprobe(const struct bpf_program *prog,
                                                          bool retprobe, int pid,
                                                          const char *binary_path,
                                                          size_t func_offset) {
    char target[4200];
    (void)retprobe; /* SEC("uprobe") or SEC("uretprobe") decides */
    if (pid >= 0)
        snprintf(target, sizeof(target), "%s:%#zx,pid=%d", binary_path, func_offset, pid);
    else
        snprintf(target, sizeof(target), "%s:%#zx", binary_path, func_offset);
    return bpf_program__attach_target(prog, target);
}
static inline struct bpf_link *bpf_program__attach_usdt(const struct bpf_program *prog, int pid,
                                                        const char *binary_path,
                                                        const char *usdt_provider,
                                                        const char *usdt_name, const void *opts) {
    char target[4200];
    (void)opts;
    if (pid >= 0)
        snprintf(target, sizeof(target), "%s:%s:%s,pid=%d", binary_path, usdt_provider, usdt_name, pid);
    else
        snprintf(target, sizeof(target), "%s:%s:%s", binary_path, usdt_provider, usdt_name);
    return bpf_program__attach_target(prog, target);
}
static inline struct bpf_link *bpf_program__attach_kprobe(const struct bpf_program *prog,
                                                          bool retprobe, const char *func_name) {
    (void)retprobe; /* SEC("kprobe") or SEC("kretprobe") decides */
    return bpf_program__attach_target(prog, func_name);
}
static inline int bpf_link__destroy(struct bpf_link *link) {
    int err;
    if (!link)
        return 0;
    err = wasm_bpf_link_destroy(link->handle);
    free(link);
    return __wasm_bpf_err(err);
}

/* ✱ The next bytes of iterator program prog's output (SEC("iter/...")): > 0 bytes
 * read, 0 at the end of an iteration (the next call starts a new one), < 0 error. */
static inline int bpf_program__iter_read(const struct bpf_program *prog, void *buf, size_t len) {
    if (!prog || !prog->obj || !prog->obj->handle)
        return __wasm_bpf_err(-EINVAL);
    return __wasm_bpf_err(wasm_bpf_iter_read(prog->obj->handle, prog->name, buf, (int)len));
}

/* Also pops a queue or stack (key NULL). */
static inline int bpf_map_lookup_and_delete_elem_flags(int fd, const void *key, void *value,
                                                       uint64_t flags) {
    return __wasm_bpf_err(wasm_bpf_map_operate(fd, BPF_MAP_LOOKUP_AND_DELETE_ELEM, (void *)key,
                                               value, NULL, flags));
}
static inline int bpf_map_lookup_and_delete_elem(int fd, const void *key, void *value) {
    return bpf_map_lookup_and_delete_elem_flags(fd, key, value, 0);
}
static inline int bpf_map__lookup_and_delete_elem(const struct bpf_map *map, const void *key,
                                                  size_t key_sz, void *value, size_t value_sz,
                                                  uint64_t flags) {
    int fd = bpf_map__fd(map);
    (void)key_sz;
    (void)value_sz;
    return fd < 0 ? fd : bpf_map_lookup_and_delete_elem_flags(fd, key, value, flags);
}

struct bpf_map_batch_opts {
    size_t sz;
    uint64_t elem_flags;
    uint64_t flags;
};
static inline int __wasm_bpf_batch(int fd, int cmd, void *in_batch, void *out_batch, void *keys,
                                   void *values, uint32_t *count,
                                   const struct bpf_map_batch_opts *opts) {
    return __wasm_bpf_err(wasm_bpf_map_batch(fd, cmd, in_batch, out_batch, keys, values, count,
                                             opts ? opts->elem_flags : 0, opts ? opts->flags : 0));
}
/* in_batch NULL: from the start; -ENOENT: the end was reached (*count is set). */
static inline int bpf_map_lookup_batch(int fd, void *in_batch, void *out_batch, void *keys,
                                       void *values, uint32_t *count,
                                       const struct bpf_map_batch_opts *opts) {
    return __wasm_bpf_batch(fd, BPF_MAP_LOOKUP_BATCH, in_batch, out_batch, keys, values, count, opts);
}
static inline int bpf_map_lookup_and_delete_batch(int fd, void *in_batch, void *out_batch,
                                                  void *keys, void *values, uint32_t *count,
                                                  const struct bpf_map_batch_opts *opts) {
    return __wasm_bpf_batch(fd, BPF_MAP_LOOKUP_AND_DELETE_BATCH, in_batch, out_batch, keys, values,
                            count, opts);
}
static inline int bpf_map_update_batch(int fd, const void *keys, const void *values,
                                       uint32_t *count, const struct bpf_map_batch_opts *opts) {
    return __wasm_bpf_batch(fd, BPF_MAP_UPDATE_BATCH, NULL, NULL, (void *)keys, (void *)values,
                            count, opts);
}
static inline int bpf_map_delete_batch(int fd, const void *keys, uint32_t *count,
                                       const struct bpf_map_batch_opts *opts) {
    return __wasm_bpf_batch(fd, BPF_MAP_DELETE_BATCH, NULL, NULL, (void *)keys, NULL, count, opts);
}

/* ------------------------------------------------------------------------- */
/* Program fds and user ring buffers (module "wasm_bpf_ext", this host)       */
/* ------------------------------------------------------------------------- */

__WASM_BPF_IMPORT("wasm_bpf_ext", "wasm_bpf_prog_fd_by_name")
int wasm_bpf_prog_fd_by_name(uint64_t obj, const char *name);
__WASM_BPF_IMPORT("wasm_bpf_ext", "wasm_bpf_user_ringbuf_submit")
int wasm_bpf_user_ringbuf_submit(int fd, const void *data, int size);

/* The program's host fd, or a negative errno (-EINVAL before load or with autoload
 * off). Its only use: the value of a prog array entry (tail calls) or of a
 * devmap/cpumap entry of this guest's maps; the host refuses any other program fd. */
static inline int bpf_program__fd(const struct bpf_program *prog) {
    if (!prog || !prog->obj || !prog->obj->handle)
        return __wasm_bpf_err(-EINVAL);
    return __wasm_bpf_err(wasm_bpf_prog_fd_by_name(prog->obj->handle, prog->name));
}

/* The producer of a BPF_MAP_TYPE_USER_RINGBUF map, as in libbpf: reserve a sample,
 * fill it, submit it; BPF programs consume it with bpf_user_ringbuf_drain(). The
 * sample lives in guest memory until submit copies it into the ring. */
struct user_ring_buffer_opts {
    size_t sz;
};
struct user_ring_buffer {
    int fd;
};
struct __wasm_bpf_user_sample {
    uint32_t size;
    uint32_t pad;
    unsigned char data[];
};

static inline struct user_ring_buffer *user_ring_buffer__new(int map_fd,
                                                             const struct user_ring_buffer_opts *opts) {
    struct user_ring_buffer *rb;
    (void)opts;
    if (map_fd < 0) {
        errno = EINVAL;
        return NULL;
    }
    if (!(rb = (struct user_ring_buffer *)malloc(sizeof(*rb)))) {
        errno = ENOMEM;
        return NULL;
    }
    rb->fd = map_fd;
    return rb;
}
static inline void *user_ring_buffer__reserve(struct user_ring_buffer *rb, uint32_t size) {
    struct __wasm_bpf_user_sample *s;
    if (!rb || !size) {
        errno = EINVAL;
        return NULL;
    }
    if (!(s = (struct __wasm_bpf_user_sample *)malloc(sizeof(*s) + size))) {
        errno = ENOMEM;
        return NULL;
    }
    s->size = size;
    return s->data;
}
static inline void user_ring_buffer__discard(struct user_ring_buffer *rb, void *sample) {
    (void)rb;
    if (sample)
        free((char *)sample - offsetof(struct __wasm_bpf_user_sample, data));
}
/* ✱ Returns 0 or a negative errno (libbpf's returns nothing): the ring has room for
 * the sample only when it is submitted, so -ENOSPC (the BPF side has not drained
 * it yet) and -E2BIG (larger than the ring) come from here. The sample is freed
 * either way. */
static inline int user_ring_buffer__submit(struct user_ring_buffer *rb, void *sample) {
    struct __wasm_bpf_user_sample *s;
    int err;
    if (!rb || !sample)
        return __wasm_bpf_err(-EINVAL);
    s = (struct __wasm_bpf_user_sample *)((char *)sample - offsetof(struct __wasm_bpf_user_sample, data));
    err = wasm_bpf_user_ringbuf_submit(rb->fd, s->data, (int)s->size);
    free(s);
    return __wasm_bpf_err(err);
}
static inline void user_ring_buffer__free(struct user_ring_buffer *rb) {
    free(rb);
}

#endif /* __LIBBPF_WASM_H */
