/* The hostile guest (tests/test_hostile.py): one scenario per run, chosen by argv[1],
 * feeding every import of wasm_bpf, callback-wrapper and wasm_bpf_ext the bad inputs
 * of the "Bad input" table in host_abi/ABI.md that tests/test_abi.py does not feed.
 * Every call's raw result is printed as key=value; the test compares the lines with
 * the table, then checks that the host process is unharmed.
 *
 *   handles                   0, unknown, all-ones and closed object/link handles
 *   foreign HANDLE LINK FD    another live instance's object/link handle and map fd
 *   fds                       fds that are not this instance's map fds (host 0/1/2,
 *                             a program fd, another object's, a closed object's)
 *   strings                   names and targets outside memory, unterminated, too long,
 *                             not UTF-8, NULL (offset 0 is an ordinary offset)
 *   ranges                    pointer/length pairs and sizes out of range
 *   cmds                      unknown batch commands, bad map/batch flags
 *   callbacks                 batch callback indices that are no function or of the
 *                             wrong type; a host import used as a record callback
 *   reentry PID               from inside a poll callback: close the polled object,
 *                             destroy its link, poll it again in batches
 *   target PROG TARGET        attach matrix.bpf.o's PROG with TARGET (both imports)
 *   wrapper                   a callback-wrapper poll, for a run whose callback export
 *                             is set to something that is no (i32, i32, i32) -> i32
 *   grow PID                  callbacks that grow the memory by 4 MiB per record, per
 *                             record and in batches; buffers in and past the grown memory
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "abi_bpf_obj.h"
#include "abi_common.h"
#include "maps_bpf_obj.h"
#include "matrix_bpf_obj.h"
#include "wasm_bpf_imports.h"

#define OUT(k, v) printf("%s=%lld\n", (k), (long long)(v))

#define EXT(name) __attribute__((import_module("wasm_bpf_ext"), import_name(name)))
EXT("wasm_load_bpf_object_ex") uint64_t load_ex(const void *buf, int sz, const void *no_load, int no_load_sz);
EXT("wasm_bpf_buffer_poll_batch") int poll_batch(uint64_t obj, int fd, int32_t func, uint32_t ctx, void *data,
                                                 int max_size, int timeout_ms);
EXT("wasm_bpf_attach_link") int64_t attach_link(uint64_t obj, const char *name, const char *target);
EXT("wasm_bpf_link_destroy") int link_destroy(int64_t link);
EXT("wasm_bpf_iter_read") int iter_read(uint64_t obj, const char *name, void *buf, int len);
EXT("wasm_bpf_map_mirror") int map_mirror(int fd, void *mirror, int size);
EXT("wasm_bpf_map_batch") int map_batch(int fd, int cmd, void *in_batch, void *out_batch, void *keys,
                                        void *values, void *count, uint64_t elem_flags, uint64_t flags);
EXT("wasm_bpf_user_ringbuf_submit") int ringbuf_submit(int fd, const void *data, int size);
EXT("wasm_bpf_prog_fd_by_name") int prog_fd_by_name(uint64_t obj, const char *name);
__attribute__((import_module("callback-wrapper"), import_name("wasm_bpf_buffer_poll")))
int wrapper_poll(uint64_t obj, int fd, uint32_t ctx, void *data, int max_size, int timeout_ms);

#define LOOKUP_BATCH 24
#define UPDATE_BATCH 26

static unsigned char buf[4096] __attribute__((aligned(8)));
static char name_buf[8192];

static uint64_t load_abi(void) { return wasm_load_bpf_object(abi_bpf_obj, (int)sizeof(abi_bpf_obj)); }
static uint64_t load_maps(void) { return wasm_load_bpf_object(maps_bpf_obj, (int)sizeof(maps_bpf_obj)); }

/* Callbacks of the right types, which must never be reached with a bad input. */
static int calls;
static int on_record(void *ctx, void *data, int size) { calls++; return 0; }
static int on_batch(void *ctx, void *data, int used, int count) { calls++; return 0; }
static void on_void(void) { calls++; }
/* exported with -Wl,--export: a global, not a function */
int cb_not_func;
__attribute__((export_name("go-callback"))) int go_callback(uint32_t ctx, uint32_t data, uint32_t size)
{
    calls++;
    return 0;
}

/* Places s[0..n) so that it ends exactly at the end of memory. */
static uint32_t at_end(const void *s, uint32_t n)
{
    uint32_t off = mem_size() - n;
    memcpy(PTR(off), s, n);
    return off;
}

/* ------------------------------------------------------------- handles */

/* Every import taking an object handle, with handle h; prefix names the case. */
static void try_handle(const char *prefix, uint64_t h, int fd)
{
    char key[64];
#define H(what, expr) (snprintf(key, sizeof(key), "%s_%s", prefix, what), OUT(key, (expr)))
    H("attach", wasm_attach_bpf_program(h, "on_getppid", 0));
    H("fd_by_name", wasm_bpf_map_fd_by_name(h, "rb"));
    H("poll", wasm_bpf_buffer_poll(h, fd, (int32_t)on_record, 0, buf, 64, 0));
    H("poll_batch", poll_batch(h, fd, (int32_t)on_batch, 0, buf, 64, 0));
    H("wrapper_poll", wrapper_poll(h, fd, 0, buf, 64, 0));
    H("attach_link", attach_link(h, "on_getppid", 0));
    H("iter_read", iter_read(h, "on_getppid", buf, 64));
    H("prog_fd", prog_fd_by_name(h, "on_getppid"));
    H("close", wasm_close_bpf_object(h));
#undef H
}

static int sc_handles(void)
{
    uint64_t live = load_abi(), closed = load_abi();
    int fd = wasm_bpf_map_fd_by_name(live, "rb"); /* a valid fd: the handle is what is wrong */
    OUT("loaded", live && closed);
    OUT("close_closed", wasm_close_bpf_object(closed));
    try_handle("zero", 0, fd);
    try_handle("unknown", 0x5eed0000beefull, fd);
    try_handle("ones", UINT64_MAX, fd);
    try_handle("closed", closed, fd);

    /* link handles */
    int64_t link = attach_link(live, "on_getppid", 0);
    OUT("link_ok", link > 0);
    OUT("link_zero", link_destroy(0));
    OUT("link_unknown", link_destroy(0x5eed0000beefll));
    OUT("link_neg", link_destroy(-1));
    OUT("link_object_handle", link_destroy((int64_t)live + 1000)); /* an object handle is no link */
    OUT("link_destroy", link_destroy(link));
    OUT("link_twice", link_destroy(link));
    int64_t orphan = attach_link(live, "on_getppid", 0);
    OUT("orphan_ok", orphan > 0);
    OUT("close_live", wasm_close_bpf_object(live));
    OUT("link_of_closed_object", link_destroy(orphan));
    OUT("survived", 1);
    return 0;
}

/* argv: another live instance's object handle, link handle and map fd (its ring
 * buffer), for the imports tests/test_isolation.py does not feed them to. */
static int sc_foreign(uint64_t h, int64_t link, int fd)
{
    /* before this guest has objects of its own: the other's handle is unknown here */
    OUT("attach_link", attach_link(h, "on_getppid", 0));
    OUT("prog_fd", prog_fd_by_name(h, "on_getppid"));
    OUT("poll_batch_handle", poll_batch(h, fd, (int32_t)on_batch, 0, buf, 64, 0));
    OUT("wrapper_poll_handle", wrapper_poll(h, fd, 0, buf, 64, 0));
    OUT("link_destroy", link_destroy(link));
    /* with an object of its own: the other's map fd is still not this guest's */
    uint64_t own = load_abi();
    OUT("own_loaded", own != 0);
    OUT("poll_batch_fd", poll_batch(own, fd, (int32_t)on_batch, 0, buf, 64, 0));
    OUT("wrapper_poll_fd", wrapper_poll(own, fd, 0, buf, 64, 0));
    OUT("submit_fd", ringbuf_submit(fd, buf, 8));
    {
        uint32_t count = 1, key = 0;
        uint64_t value = 1;
        OUT("batch_update_fd", map_batch(fd, UPDATE_BATCH, 0, 0, &key, &value, &count, 0, 0));
    }
    OUT("own_close", wasm_close_bpf_object(own));
    OUT("calls", calls);
    return 0;
}

/* ----------------------------------------------------------------- fds */

/* Every import taking a map fd, with fd; h is a live object (for the polls). */
static void try_fd(const char *prefix, uint64_t h, int fd)
{
    char key[64];
    uint32_t k = 0, count = 1;
    uint64_t v = 0;
    unsigned char batch_in[8] = {0}, batch_out[8];
#define F(what, expr) (snprintf(key, sizeof(key), "%s_%s", prefix, what), OUT(key, (expr)))
    F("lookup", wasm_bpf_map_operate(fd, WB_LOOKUP, &k, &v, 0, 0));
    F("update", wasm_bpf_map_operate(fd, WB_UPDATE, &k, &v, 0, 0));
    F("batch", map_batch(fd, LOOKUP_BATCH, 0, batch_out, &k, &v, &count, 0, 0));
    (void)batch_in;
    F("mirror", map_mirror(fd, buf, 8));
    F("submit", ringbuf_submit(fd, buf, 8));
    F("poll", wasm_bpf_buffer_poll(h, fd, (int32_t)on_record, 0, buf, 64, 0));
    F("poll_batch", poll_batch(h, fd, (int32_t)on_batch, 0, buf, 64, 0));
    F("wrapper_poll", wrapper_poll(h, fd, 0, buf, 64, 0));
#undef F
}

static int sc_fds(void)
{
    uint64_t h = load_abi(), other = load_abi(), gone = load_maps();
    int prog = prog_fd_by_name(h, "on_getppid");
    int other_rb = wasm_bpf_map_fd_by_name(other, "rb");
    int gone_fd = wasm_bpf_map_fd_by_name(gone, "m_user_rb");
    OUT("loaded", h && other && gone);
    OUT("fds_ok", prog > 0 && other_rb > 0 && gone_fd > 0);
    OUT("close_gone", wasm_close_bpf_object(gone));
    try_fd("stdin", h, 0);
    try_fd("stdout", h, 1);
    try_fd("stderr", h, 2);
    try_fd("neg", h, -1);
    try_fd("big", h, 0x7fffffff);
    try_fd("prog", h, prog);
    try_fd("closed", h, gone_fd);
    /* only the polls tie a map fd to one object: for the map calls it is this
     * instance's fd and works */
    OUT("other_object_poll", wasm_bpf_buffer_poll(h, other_rb, (int32_t)on_record, 0, buf, 64, 0));
    OUT("other_object_poll_batch", poll_batch(h, other_rb, (int32_t)on_batch, 0, buf, 64, 0));
    OUT("other_object_wrapper_poll", wrapper_poll(h, other_rb, 0, buf, 64, 0));
    OUT("other_object_own_poll", wasm_bpf_buffer_poll(other, other_rb, (int32_t)on_record, 0, buf, 64, 0));
    OUT("close", wasm_close_bpf_object(h));
    OUT("close_other", wasm_close_bpf_object(other));
    OUT("calls", calls);
    OUT("survived", 1);
    return 0;
}

/* ------------------------------------------------------------- strings */

/* Every import taking a string, with the string at offset s (names) or as the
 * attach target. */
static void try_name(const char *prefix, uint64_t h, uint64_t iter_h, uint32_t s)
{
    char key[64];
#define S(what, expr) (snprintf(key, sizeof(key), "%s_%s", prefix, what), OUT(key, (expr)))
    S("attach", wasm_attach_bpf_program(h, PTR(s), 0));
    uint64_t own = load_abi(); /* what attaches here is detached again by the close */
    S("attach_target", wasm_attach_bpf_program(own, "on_getppid", PTR(s))); /* "": attached */
    wasm_close_bpf_object(own);
    S("fd_by_name", wasm_bpf_map_fd_by_name(h, PTR(s)));
    S("prog_fd", prog_fd_by_name(h, PTR(s)));
    S("attach_link", attach_link(h, PTR(s), 0));
    int64_t link = attach_link(h, "on_getppid", PTR(s));
    S("link_target", link > 0 ? 1 : link); /* 1: attached (and destroyed again) */
    if (link > 0)
        link_destroy(link);
    S("iter_read", iter_read(iter_h, PTR(s), buf, 64));
#undef S
}

static int sc_strings(void)
{
    uint64_t h = load_abi(), it = wasm_load_bpf_object(matrix_bpf_obj, (int)sizeof(matrix_bpf_obj));
    uint32_t msz = mem_size();
    volatile uint32_t zero = 0;
    char *low = (char *)(uintptr_t)zero; /* offset 0 of guest memory: below the data */
    OUT("loaded", h && it);

    try_name("outside", h, it, msz + 16);
    try_name("at_end", h, it, msz);
    try_name("unterminated", h, it, at_end("abc", 3));
    memset(name_buf, 'a', sizeof(name_buf) - 1);
    try_name("too_long", h, it, OFF(name_buf));
    strcpy(name_buf, "on_\xff\xfe");
    try_name("not_utf8", h, it, OFF(name_buf));
    strcpy(name_buf, "\xc0\x80"); /* an overlong NUL: not UTF-8 either */
    try_name("overlong_nul", h, it, OFF(name_buf));

    /* NULL: an ordinary offset for names. Empty there: no such name; the name put
     * there is found. A NULL target means "no target". */
    low[0] = 0;
    try_name("null_empty", h, it, 0);
    strcpy(low, "rb");
    OUT("null_map_name", wasm_bpf_map_fd_by_name(h, 0) > 0);
    strcpy(low, "on_getppid");
    OUT("null_prog_name", prog_fd_by_name(h, 0) > 0);
    int64_t link = attach_link(h, 0, 0);
    OUT("null_link_name", link > 0);
    OUT("null_link_destroy", link_destroy(link));
    low[0] = 0;

    /* the no_load list of wasm_load_bpf_object_ex */
    static const char bad_list[] = "on_getppid\0\xff\xfe\0";
    static const char long_list[] = "on_getppid\0xdp_pass";  /* no final NUL */
    OUT("no_load_not_utf8", load_ex(abi_bpf_obj, (int)sizeof(abi_bpf_obj), bad_list, sizeof(bad_list)));
    uint64_t h2 = load_ex(abi_bpf_obj, (int)sizeof(abi_bpf_obj), long_list, sizeof(long_list) - 1);
    OUT("no_load_unterminated_ok", h2 != 0);
    OUT("no_load_unterminated_attach", wasm_attach_bpf_program(h2, "xdp_pass", "lo"));
    OUT("no_load_unterminated_close", wasm_close_bpf_object(h2));
    uint64_t h3 = load_ex(abi_bpf_obj, (int)sizeof(abi_bpf_obj), "on_getppid", -1);
    OUT("no_load_negative_size_ok", h3 != 0);
    OUT("no_load_negative_size_attach", wasm_attach_bpf_program(h3, "on_getppid", 0));
    OUT("no_load_negative_size_close", wasm_close_bpf_object(h3));
    OUT("map_name_not_utf8", wasm_bpf_map_fd_by_name(h, "r\xff"));
    OUT("close", wasm_close_bpf_object(h));
    OUT("close_iter", wasm_close_bpf_object(it));
    OUT("survived", 1);
    return 0;
}

/* -------------------------------------------------------------- ranges */

static int sc_ranges(void)
{
    uint64_t h = load_abi(), m = load_maps(), it = wasm_load_bpf_object(matrix_bpf_obj, (int)sizeof(matrix_bpf_obj));
    uint32_t msz = mem_size();
    int rb = wasm_bpf_map_fd_by_name(h, "rb");
    int hmap = wasm_bpf_map_fd_by_name(h, "hmap");
    int bss = wasm_bpf_map_fd_by_name(h, "abi.bss");
    int urb = wasm_bpf_map_fd_by_name(m, "m_user_rb");
    uint32_t key = 0, count = 1;
    uint64_t value = 0;
    OUT("loaded", h && m && it && rb > 0 && hmap > 0 && bss > 0 && urb > 0);

    /* polls: max_size and data */
    OUT("poll_max_neg", wasm_bpf_buffer_poll(h, rb, (int32_t)on_record, 0, buf, -1, 0));
    OUT("poll_max_int_min", wasm_bpf_buffer_poll(h, rb, (int32_t)on_record, 0, buf, INT32_MIN, 0));
    OUT("poll_data_wrap", wasm_bpf_buffer_poll(h, rb, (int32_t)on_record, 0, PTR(0xfffffff0u), 64, 0));
    OUT("batch_max_15", poll_batch(h, rb, (int32_t)on_batch, 0, buf, 15, 0));
    OUT("batch_max_neg", poll_batch(h, rb, (int32_t)on_batch, 0, buf, -16, 0));
    OUT("batch_data_outside", poll_batch(h, rb, (int32_t)on_batch, 0, PTR(msz - 8), 16, 0));
    OUT("batch_data_far", poll_batch(h, rb, (int32_t)on_batch, 0, PTR(msz + 4096), 16, 0));
    OUT("wrapper_max_neg", wrapper_poll(h, rb, 0, buf, -1, 0));
    OUT("wrapper_data_outside", wrapper_poll(h, rb, 0, PTR(msz - 8), 16, 0));
    OUT("poll_not_buffer", wasm_bpf_buffer_poll(h, hmap, (int32_t)on_record, 0, buf, 64, 0));
    OUT("batch_not_buffer", poll_batch(h, hmap, (int32_t)on_batch, 0, buf, 64, 0));
    OUT("wrapper_not_buffer", wrapper_poll(h, hmap, 0, buf, 64, 0));

    /* iter_read: len and buf */
    OUT("iter_len_zero", iter_read(it, "on_iter_task", buf, 0));
    OUT("iter_len_neg", iter_read(it, "on_iter_task", buf, -1));
    OUT("iter_len_huge", iter_read(it, "on_iter_task", buf, (1 << 24) + 1));
    OUT("iter_buf_outside", iter_read(it, "on_iter_task", PTR(msz - 8), 64));
    OUT("iter_buf_far", iter_read(it, "on_iter_task", PTR(msz + 64), 64));
    OUT("iter_not_iter", iter_read(it, "on_tp", buf, 64));
    OUT("iter_no_prog", iter_read(it, "no_such_prog", buf, 64));

    /* map_mirror: size and range (.bss of abi.bpf.c: struct abi_ctl) */
    OUT("mirror_size_neg", map_mirror(bss, buf, -1));
    OUT("mirror_size_wrong", map_mirror(bss, buf, (int)sizeof(struct abi_ctl) - 1));
    OUT("mirror_outside", map_mirror(bss, PTR(msz - 8), (int)sizeof(struct abi_ctl)));
    OUT("mirror_wrap", map_mirror(bss, PTR(0xfffffff8u), (int)sizeof(struct abi_ctl)));
    OUT("mirror_not_array", map_mirror(hmap, buf, 8));
    OUT("mirror_stop_unset", map_mirror(bss, buf, 0));

    /* user_ringbuf_submit: size and range */
    OUT("submit_zero", ringbuf_submit(urb, buf, 0));
    OUT("submit_neg", ringbuf_submit(urb, buf, -8));
    OUT("submit_outside", ringbuf_submit(urb, PTR(msz - 4), 8));
    OUT("submit_far", ringbuf_submit(urb, PTR(msz + 64), 8));
    OUT("submit_too_big", ringbuf_submit(urb, buf, 8192)); /* the ring is 4096 bytes */
    OUT("submit_not_user_ring", ringbuf_submit(hmap, buf, 8));

    /* map_batch: count, keys, values, tokens */
    OUT("batch_count_null", map_batch(hmap, LOOKUP_BATCH, 0, buf, &key, &value, 0, 0, 0));
    OUT("batch_count_outside", map_batch(hmap, LOOKUP_BATCH, 0, buf, &key, &value, PTR(msz - 2), 0, 0));
    count = 0xffffffffu;
    OUT("batch_count_huge", map_batch(hmap, LOOKUP_BATCH, 0, buf, buf, buf, &count, 0, 0));
    count = 1;
    OUT("batch_keys_outside", map_batch(hmap, UPDATE_BATCH, 0, 0, PTR(msz - 2), &value, &count, 0, 0));
    count = 1;
    OUT("batch_values_outside", map_batch(hmap, UPDATE_BATCH, 0, 0, &key, PTR(msz - 4), &count, 0, 0));
    count = 1;
    OUT("batch_in_outside", map_batch(hmap, LOOKUP_BATCH, PTR(msz - 2), buf, &key, &value, &count, 0, 0));
    count = 1;
    OUT("batch_out_outside", map_batch(hmap, LOOKUP_BATCH, 0, PTR(msz - 2), &key, &value, &count, 0, 0));

    /* map_operate: a pointer range that wraps around 4 GiB */
    OUT("mapop_key_wrap", wasm_bpf_map_operate(hmap, WB_LOOKUP, PTR(0xfffffffeu), &value, 0, 0));

    /* malformed ELF images beyond test_abi.py's */
    static const unsigned char magic[] = {0x7f, 'E', 'L', 'F'};
    OUT("elf_magic_only", wasm_load_bpf_object(magic, sizeof(magic)));
    OUT("elf_ex_garbage", load_ex(buf, 512, 0, 0));
    OUT("elf_ex_outside", load_ex(PTR(msz - 16), 64, 0, 0));
    OUT("elf_ex_neg", load_ex(abi_bpf_obj, -1, 0, 0));
    OUT("elf_ex_list_outside", load_ex(abi_bpf_obj, (int)sizeof(abi_bpf_obj), PTR(msz - 4), 16));

    OUT("calls", calls);
    OUT("close", wasm_close_bpf_object(h));
    OUT("close_maps", wasm_close_bpf_object(m));
    OUT("close_iter", wasm_close_bpf_object(it));
    OUT("survived", 1);
    return 0;
}

/* ---------------------------------------------------------------- cmds */

static int sc_cmds(void)
{
    uint64_t h = load_abi();
    int hmap = wasm_bpf_map_fd_by_name(h, "hmap");
    uint32_t key = 3, count = 1;
    uint64_t value = 42;
    OUT("loaded", h && hmap > 0);
    static const int bad_batch_cmds[] = {0, 1, 2, 23, 28, 99, -1};
    char k[32];
    for (unsigned i = 0; i < sizeof(bad_batch_cmds) / sizeof(bad_batch_cmds[0]); i++) {
        count = 1;
        snprintf(k, sizeof(k), "batch_cmd_%d", bad_batch_cmds[i] < 0 ? 999 : bad_batch_cmds[i]);
        OUT(k, map_batch(hmap, bad_batch_cmds[i], 0, buf, &key, &value, &count, 0, 0));
    }
    OUT("update_bad_flags", wasm_bpf_map_operate(hmap, WB_UPDATE, &key, &value, 0, 0xdead0000ull));
    OUT("update_flags_4", wasm_bpf_map_operate(hmap, WB_UPDATE, &key, &value, 0, 4)); /* BPF_F_LOCK: no spin lock */
    OUT("update_ok", wasm_bpf_map_operate(hmap, WB_UPDATE, &key, &value, 0, 0));
    OUT("lookup_bad_flags", wasm_bpf_map_operate(hmap, WB_LOOKUP, &key, &value, 0, 0x10000ull));
    OUT("delete_bad_flags", wasm_bpf_map_operate(hmap, WB_DELETE, &key, 0, 0, 0x10000ull));
    OUT("next_key_flags_ignored", wasm_bpf_map_operate(hmap, WB_NEXT_KEY, 0, 0, &key, 0xffffffffffffffffull));
    count = 1;
    OUT("batch_bad_elem_flags", map_batch(hmap, UPDATE_BATCH, 0, 0, &key, &value, &count, 0xdead0000ull, 0));
    count = 1;
    OUT("batch_bad_flags", map_batch(hmap, LOOKUP_BATCH, 0, buf, &key, &value, &count, 0, 1));
    count = 1;
    OUT("batch_lookup_end", map_batch(hmap, LOOKUP_BATCH, 0, buf, buf + 64, buf + 128, &count, 0, 0));
    OUT("close", wasm_close_bpf_object(h));
    OUT("survived", 1);
    return 0;
}

/* ----------------------------------------------------------- callbacks */

static int sc_callbacks(void)
{
    uint64_t h = load_abi();
    int rb = wasm_bpf_map_fd_by_name(h, "rb");
    OUT("loaded", h && rb > 0);
    OUT("batch_idx_null", poll_batch(h, rb, 0, 0, buf, 64, 0));
    OUT("batch_idx_huge", poll_batch(h, rb, 0x7fffffff, 0, buf, 64, 0));
    OUT("batch_idx_neg", poll_batch(h, rb, -1, 0, buf, 64, 0));
    OUT("batch_idx_record_type", poll_batch(h, rb, (int32_t)on_record, 0, buf, 64, 0));
    OUT("batch_idx_void_type", poll_batch(h, rb, (int32_t)on_void, 0, buf, 64, 0));
    OUT("poll_idx_batch_type", wasm_bpf_buffer_poll(h, rb, (int32_t)on_batch, 0, buf, 64, 0));
    /* a host import of the record type in the table is a valid callback: no record
     * now, so it is not called (tests/test_hostile.py calls it with records) */
    OUT("poll_idx_host_import", wasm_bpf_buffer_poll(h, rb, (int32_t)map_mirror, 0, buf, 64, 0));
    OUT("calls", calls);
    OUT("close", wasm_close_bpf_object(h));
    OUT("survived", 1);
    return 0;
}

/* ------------------------------------------------------------- reentry */

static uint64_t re_h;
static int re_rb, re_result, re_calls;
static int64_t re_link;
static const char *re_mode;

static int reentrant(void *ctx, void *data, int size)
{
    re_calls++;
    if (re_calls > 1)
        return 0;
    if (!strcmp(re_mode, "close"))
        re_result = wasm_close_bpf_object(re_h);
    else if (!strcmp(re_mode, "destroy"))
        re_result = link_destroy(re_link);
    else if (!strcmp(re_mode, "batch"))
        re_result = poll_batch(re_h, re_rb, (int32_t)on_batch, 0, buf + 1024, 256, 0);
    else if (!strcmp(re_mode, "wrapper"))
        re_result = wrapper_poll(re_h, re_rb, 0, buf + 1024, 256, 0);
    else if (!strcmp(re_mode, "load")) {
        uint64_t h2 = load_abi();
        re_result = h2 ? wasm_close_bpf_object(h2) : -1;
    }
    return 0;
}

/* Host imports used as record callbacks: (ctx, data, size) become their arguments. */
static int sc_reentry(unsigned pid, const char *mode)
{
    struct abi_ctl ctl = {0};
    uint32_t zero = 0;
    re_mode = mode;
    re_h = load_abi();
    re_rb = wasm_bpf_map_fd_by_name(re_h, "rb");
    int bss = wasm_bpf_map_fd_by_name(re_h, "abi.bss");
    ctl.target_pid = pid;
    ctl.nrec = 1;
    ctl.ring_limit = 4;
    OUT("arm", wasm_bpf_map_operate(bss, WB_UPDATE, &zero, &ctl, 0, 0));
    re_link = attach_link(re_h, "on_getppid", 0);
    OUT("link", re_link > 0);
    fflush(stdout);
    int polled = 0;
    for (int i = 0; i < 100 && !polled; i++) {
        if (!strcmp(mode, "host_import"))
            /* ctx: the .bss fd, data: buf, size: the record's 64 bytes; the .bss is
             * 40 bytes, so map_mirror refuses with -EINVAL, and that is the
             * callback's result */
            polled = wasm_bpf_buffer_poll(re_h, re_rb, (int32_t)map_mirror, (uint32_t)bss, buf, 64, 50);
        else
            polled = wasm_bpf_buffer_poll(re_h, re_rb, (int32_t)reentrant, 0, buf, 64, 50);
    }
    OUT("poll", polled);
    OUT("inner", re_result);
    OUT("calls", re_calls);
    OUT("poll_after", wasm_bpf_buffer_poll(re_h, re_rb, (int32_t)on_record, 0, buf, 64, 0) >= 0);
    OUT("close", wasm_close_bpf_object(re_h));
    return 0;
}

static int sc_wrapper(void)
{
    uint64_t h = load_abi();
    int rb = wasm_bpf_map_fd_by_name(h, "rb");
    OUT("loaded", h && rb > 0);
    OUT("wrapper_poll", wrapper_poll(h, rb, 0, buf, 64, 0));
    OUT("close", wasm_close_bpf_object(h));
    return 0;
}

/* -------------------------------------------------------------- target */

static int sc_target(const char *prog, const char *target)
{
    uint64_t h = wasm_load_bpf_object(matrix_bpf_obj, (int)sizeof(matrix_bpf_obj));
    OUT("loaded", h != 0);
    OUT("attach", wasm_attach_bpf_program(h, prog, target));
    OUT("attach_link", attach_link(h, prog, target));
    OUT("close", wasm_close_bpf_object(h));
    return 0;
}

/* --------------------------------------------------------------- grow */

#define GROW_RECORDS 48
#define GROW_PAGES 64 /* 4 MiB per record: the memory grows to ~200 MiB */

static unsigned grow_next, grow_bad, grow_records, grow_failed;

static void grow_check(const struct abi_rec *r, int size)
{
    if (size != (int)sizeof(*r) || r->magic != ABI_REC_MAGIC || r->seq != grow_next ||
        r->kind != ABI_KIND_RING || r->payload[47] != (unsigned char)(r->seq + 47))
        grow_bad++;
    grow_next = r->seq + 1;
    grow_records++;
    if (__builtin_wasm_memory_grow(0, GROW_PAGES) == (size_t)-1)
        grow_failed++;
}

static int on_grow(void *ctx, void *data, int size)
{
    grow_check(data, size);
    return 0;
}

/* A batch: [u32 size][u32 original size][size bytes, padded to 8] per record. */
static int on_grow_batch(void *ctx, void *data, int used, int count)
{
    unsigned char *p = data;
    for (int i = 0; i < count; i++) {
        uint32_t size;
        memcpy(&size, p, 4);
        grow_check((const struct abi_rec *)(p + 8), (int)size);
        p += 8 + ((size + 7) & ~7u);
    }
    return 0;
}

static int sc_grow(unsigned pid)
{
    struct abi_ctl ctl = {0};
    uint32_t zero = 0, start = mem_size();
    uint64_t h = load_abi();
    int rb = wasm_bpf_map_fd_by_name(h, "rb");
    int bss = wasm_bpf_map_fd_by_name(h, "abi.bss");
    ctl.target_pid = pid;
    ctl.nrec = 2;
    ctl.ring_limit = GROW_RECORDS;
    OUT("arm", wasm_bpf_map_operate(bss, WB_UPDATE, &zero, &ctl, 0, 0));
    OUT("attach", wasm_attach_bpf_program(h, "on_getppid", 0));
    fflush(stdout);
    for (int i = 0; i < 400 && grow_records < GROW_RECORDS / 2; i++)
        wasm_bpf_buffer_poll(h, rb, (int32_t)on_grow, 0, buf, 64, 20);
    /* Batches into a buffer that lies in memory grown by the callbacks above. */
    uint32_t grown = mem_size() - 4096;
    OUT("buffer_in_grown_memory", grown >= start);
    for (int i = 0; i < 400 && grow_records < GROW_RECORDS; i++)
        poll_batch(h, rb, (int32_t)on_grow_batch, 0, PTR(grown), 256, 20);
    OUT("records", grow_records);
    OUT("bad", grow_bad);
    OUT("grow_failed", grow_failed);
    OUT("grew", mem_size() - start >= GROW_RECORDS * GROW_PAGES * 65536u);
    OUT("past_end", wasm_bpf_buffer_poll(h, rb, (int32_t)on_grow, 0, PTR(mem_size() - 32), 64, 0));
    OUT("batch_past_end", poll_batch(h, rb, (int32_t)on_grow_batch, 0, PTR(mem_size() - 32), 64, 0));
    OUT("close", wasm_close_bpf_object(h));
    return 0;
}

int main(int argc, char **argv)
{
    const char *sc = argc > 1 ? argv[1] : "";
    if (!strcmp(sc, "handles"))
        return sc_handles();
    if (!strcmp(sc, "foreign") && argc > 4)
        return sc_foreign(strtoull(argv[2], 0, 0), strtoll(argv[3], 0, 0), atoi(argv[4]));
    if (!strcmp(sc, "fds"))
        return sc_fds();
    if (!strcmp(sc, "strings"))
        return sc_strings();
    if (!strcmp(sc, "ranges"))
        return sc_ranges();
    if (!strcmp(sc, "cmds"))
        return sc_cmds();
    if (!strcmp(sc, "callbacks"))
        return sc_callbacks();
    if (!strcmp(sc, "reentry") && argc > 3)
        return sc_reentry((unsigned)atoi(argv[2]), argv[3]);
    if (!strcmp(sc, "target") && argc > 3)
        return sc_target(argv[2], argv[3]);
    if (!strcmp(sc, "wrapper"))
        return sc_wrapper();
    if (!strcmp(sc, "grow") && argc > 2)
        return sc_grow((unsigned)atoi(argv[2]));
    fprintf(stderr, "unknown scenario %s\n", sc);
    return 2;
}
