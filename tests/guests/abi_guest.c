/* The ABI edge-case guest: one scenario per run, chosen by argv[1].
 *
 * Every scenario prints "key=value" lines (values are the raw numbers the host
 * returned, or 0/1 for checks done here); tests/test_abi.py compares them with
 * host_abi/ABI.md.  The BPF object (abi.bpf.c) is embedded by the build as
 * abi_bpf_obj[] (see tests/guests/build.py), with the offset of the tracepoint
 * program's code in the ELF (ABI_PROG_OFF) for the verifier-rejection case.
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>
#include <wasi/api.h>

#include "abi_bpf_obj.h"
#include "abi_common.h"
#include "wasm_bpf_imports.h"

#define OUT(k, v) printf("%s=%lld\n", (k), (long long)(v))

static const char *TP = "on_getppid";
static const char *XDP = "xdp_pass";

static uint64_t load(void) { return wasm_load_bpf_object(abi_bpf_obj, (int)sizeof(abi_bpf_obj)); }

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* Places the bytes s[0..n) so that they end exactly at the end of memory. */
static uint32_t at_end(const void *s, uint32_t n)
{
    uint32_t off = mem_size() - n;
    memcpy(PTR(off), s, n);
    return off;
}

static int lookup(int fd, const void *key, void *value)
{
    return wasm_bpf_map_operate(fd, WB_LOOKUP, key, value, 0, 0);
}
static int update(int fd, const void *key, const void *value, uint64_t flags)
{
    return wasm_bpf_map_operate(fd, WB_UPDATE, key, (void *)value, 0, flags);
}

/* Arms the program of object h through its .bss (map_operate on key 0). */
static int arm(uint64_t h, unsigned pid, unsigned nrec, unsigned ring_limit, unsigned perf_limit)
{
    int fd = wasm_bpf_map_fd_by_name(h, "abi.bss");
    struct abi_ctl ctl = {0};
    uint32_t zero = 0;
    ctl.target_pid = pid;
    ctl.nrec = nrec;
    ctl.ring_limit = ring_limit;
    ctl.perf_limit = perf_limit;
    if (fd < 0)
        return fd;
    return update(fd, &zero, &ctl, 0);
}

static struct abi_ctl read_ctl(uint64_t h)
{
    int fd = wasm_bpf_map_fd_by_name(h, "abi.bss");
    struct abi_ctl ctl;
    uint32_t zero = 0;
    memset(&ctl, 0xff, sizeof(ctl));
    lookup(fd, &zero, &ctl);
    return ctl;
}

/* Waits until the program has emitted `ring` ring and `perf` perf records (the test
 * process triggers getppid meanwhile); returns 0, or -1 after 5 s. */
static int wait_sent(uint64_t h, unsigned ring, unsigned perf)
{
    int64_t end = now_ms() + 5000;
    while (now_ms() < end) {
        struct abi_ctl c = read_ctl(h);
        if (c.ring_sent >= ring && c.perf_sent >= perf)
            return 0;
        usleep(2000);
    }
    return -1;
}

static int rec_ok(const struct abi_rec *r, unsigned kind, unsigned pid)
{
    if (r->kind != kind || r->pid != pid || r->magic != ABI_REC_MAGIC)
        return 0;
    for (unsigned i = 0; i < sizeof(r->payload); i++)
        if (r->payload[i] != (unsigned char)(r->seq + i))
            return 0;
    return 1;
}

/* ------------------------------------------------------------------ load */

static int sc_load(void)
{
    uint32_t msz = mem_size();
    static unsigned char garbage[4096];
    unsigned char *copy = malloc(sizeof(abi_bpf_obj));

    OUT("zero_size", wasm_load_bpf_object(abi_bpf_obj, 0));
    OUT("neg_size", wasm_load_bpf_object(abi_bpf_obj, -5));
    OUT("int_min_size", wasm_load_bpf_object(abi_bpf_obj, INT32_MIN));
    OUT("past_end", wasm_load_bpf_object(PTR(msz - 100), 4096));
    OUT("outside", wasm_load_bpf_object(PTR(msz + 16), 16));
    OUT("wrap", wasm_load_bpf_object(PTR(0xfffffff0u), 0x20));
    for (unsigned i = 0; i < sizeof(garbage); i++)
        garbage[i] = (unsigned char)(i * 131 + 7);
    OUT("garbage", wasm_load_bpf_object(garbage, sizeof(garbage)));
    OUT("truncated", wasm_load_bpf_object(abi_bpf_obj, (int)sizeof(abi_bpf_obj) / 2));
    OUT("header_only", wasm_load_bpf_object(abi_bpf_obj, 64));
    /* e_machine (offset 18) from EM_BPF to EM_X86_64: not a BPF ELF */
    memcpy(copy, abi_bpf_obj, sizeof(abi_bpf_obj));
    copy[18] = 62;
    copy[19] = 0;
    OUT("bad_machine", wasm_load_bpf_object(copy, (int)sizeof(abi_bpf_obj)));
    /* e_shoff (offset 40, 8 bytes) past the end of the file */
    memcpy(copy, abi_bpf_obj, sizeof(abi_bpf_obj));
    memset(copy + 40, 0x7f, 8);
    OUT("bad_shoff", wasm_load_bpf_object(copy, (int)sizeof(abi_bpf_obj)));
    /* first instruction of the tracepoint program: r0 = *(u64 *)(r10 + 8), which the
     * verifier refuses (read above the frame pointer) */
    memcpy(copy, abi_bpf_obj, sizeof(abi_bpf_obj));
    {
        unsigned char insn[8] = {0x79, 0xa0, 0x08, 0x00, 0, 0, 0, 0};
        memcpy(copy + ABI_PROG_OFF, insn, sizeof(insn));
    }
    OUT("verifier_reject", wasm_load_bpf_object(copy, (int)sizeof(abi_bpf_obj)));

    /* valid loads, after all those failures */
    memcpy(copy, abi_bpf_obj, sizeof(abi_bpf_obj));
    uint64_t h1 = wasm_load_bpf_object(copy, (int)sizeof(abi_bpf_obj));
    memset(copy, 0, sizeof(abi_bpf_obj)); /* libbpf copied it: reusing the buffer is fine */
    uint64_t h2 = load();
    OUT("h1_nonzero", h1 != 0);
    OUT("h2_nonzero", h2 != 0);
    OUT("distinct", h1 != h2);
    /* h1 still works after its buffer was wiped */
    OUT("h1_attach", wasm_attach_bpf_program(h1, TP, 0));
    OUT("h1_fd", wasm_bpf_map_fd_by_name(h1, "hmap") >= 0);
    OUT("close1", wasm_close_bpf_object(h1));
    OUT("close2", wasm_close_bpf_object(h2));
    /* a handle is not reused for the next object */
    uint64_t h3 = load();
    OUT("h3_new", h3 != 0 && h3 != h1 && h3 != h2);
    OUT("close3", wasm_close_bpf_object(h3));
    OUT("survived", 1);
    return 0;
}

/* ---------------------------------------------------------------- attach */

static int sc_attach(void)
{
    uint64_t h = load(), h2 = load(), hc = load();
    uint32_t msz;
    char *longname = malloc(5000);

    OUT("loaded", h != 0 && h2 != 0 && hc != 0);
    OUT("closed_close", wasm_close_bpf_object(hc));
    OUT("unknown_handle", wasm_attach_bpf_program(~h, TP, 0));
    OUT("zero_handle", wasm_attach_bpf_program(0, TP, 0));
    OUT("closed_handle", wasm_attach_bpf_program(hc, TP, 0));
    OUT("unknown_prog", wasm_attach_bpf_program(h, "no_such_prog", 0));
    OUT("empty_name", wasm_attach_bpf_program(h, "", 0));
    msz = mem_size();
    OUT("name_outside", wasm_attach_bpf_program(h, PTR(msz + 100), 0));
    OUT("name_at_end", wasm_attach_bpf_program(h, PTR(msz), 0));
    OUT("name_huge", wasm_attach_bpf_program(h, PTR(0xffffffffu), 0));
    OUT("name_unterminated", wasm_attach_bpf_program(h, PTR(at_end("on_", 3)), 0));
    memset(longname, 'a', 4999);
    longname[4999] = 0;
    OUT("name_too_long", wasm_attach_bpf_program(h, longname, 0));
    OUT("name_not_utf8", wasm_attach_bpf_program(h, "on_\xff\xfe", 0));
    /* 4096 bytes including the NUL is the longest string */
    memset(longname, 'a', 4999);
    longname[4095] = 0;
    OUT("name_4096_with_nul", wasm_attach_bpf_program(h, longname, 0));
    longname[4095] = 'a';
    longname[4096] = 0;
    OUT("name_4097_with_nul", wasm_attach_bpf_program(h, longname, 0));
    OUT("map_name_too_long", wasm_bpf_map_fd_by_name(h, longname));
    OUT("target_too_long", wasm_attach_bpf_program(h, XDP, longname));
    OUT("target_not_utf8", wasm_attach_bpf_program(h, XDP, "l\xc3"));
    OUT("target_outside", wasm_attach_bpf_program(h, TP, PTR(mem_size() + 8)));
    OUT("target_unterminated", wasm_attach_bpf_program(h, XDP, PTR(at_end("lo", 2))));
    OUT("tp_with_target", wasm_attach_bpf_program(h, TP, "lo"));
    OUT("xdp_nodev", wasm_attach_bpf_program(h, XDP, "nonexistent0"));
    OUT("tp_null", wasm_attach_bpf_program(h, TP, 0));
    OUT("tp_empty", wasm_attach_bpf_program(h2, TP, ""));
    OUT("xdp_lo", wasm_attach_bpf_program(h2, XDP, "lo"));
    OUT("close_h", wasm_close_bpf_object(h));
    OUT("close_h2", wasm_close_bpf_object(h2));
    OUT("survived", 1);
    return 0;
}

/* ---------------------------------------------------------- map_fd_by_name */

static int sc_fdname(void)
{
    uint64_t h = load();
    uint32_t zero = 0;
    int fd;

    OUT("unknown", wasm_bpf_map_fd_by_name(h, "no_such_map"));
    OUT("kconfig_absent", wasm_bpf_map_fd_by_name(h, "x.kconfig"));
    OUT("bad_handle", wasm_bpf_map_fd_by_name(~h, "hmap"));
    OUT("name_outside", wasm_bpf_map_fd_by_name(h, PTR(mem_size() + 1)));
    OUT("name_unterminated", wasm_bpf_map_fd_by_name(h, PTR(at_end("hmap", 4))));

    int fds[4] = {wasm_bpf_map_fd_by_name(h, "rb"), wasm_bpf_map_fd_by_name(h, "perf"),
                  wasm_bpf_map_fd_by_name(h, "hmap"), wasm_bpf_map_fd_by_name(h, "pcpu")};
    int distinct = 1;
    for (int i = 0; i < 4; i++)
        for (int j = 0; j < i; j++)
            distinct &= fds[i] != fds[j];
    OUT("exact_ok", fds[0] >= 0 && fds[1] >= 0 && fds[2] >= 0 && fds[3] >= 0);
    OUT("exact_distinct", distinct);
    OUT("same_twice", wasm_bpf_map_fd_by_name(h, "hmap") == fds[2]);

    fd = wasm_bpf_map_fd_by_name(h, "whatever.bss");
    OUT("bss_fd_ok", fd >= 0);
    {
        struct abi_ctl c;
        memset(&c, 0x55, sizeof(c));
        OUT("bss_lookup", lookup(fd, &zero, &c));
        OUT("bss_zero", c.target_pid == 0 && c.nrec == 0 && c.hits == 0);
    }
    fd = wasm_bpf_map_fd_by_name(h, "x.data");
    OUT("data_fd_ok", fd >= 0);
    {
        uint64_t v = 0;
        OUT("data_lookup", lookup(fd, &zero, &v));
        OUT("data_magic", v == ABI_DATA_MAGIC);
    }
    fd = wasm_bpf_map_fd_by_name(h, "x.rodata");
    OUT("rodata_fd_ok", fd >= 0);
    {
        uint32_t v = 0;
        OUT("rodata_lookup", lookup(fd, &zero, &v));
        OUT("rodata_magic", v == ABI_RODATA_MAGIC);
    }
    OUT("skeleton_name", wasm_bpf_map_fd_by_name(h, "abi_bpf.rodata") >= 0);
    OUT("close", wasm_close_bpf_object(h));
    OUT("survived", 1);
    return 0;
}

/* ------------------------------------------------------------ map_operate */

static int sc_mapop(int ncpus)
{
    uint64_t h = load(), h2 = load();
    int fd = wasm_bpf_map_fd_by_name(h, "hmap");
    int pfd = wasm_bpf_map_fd_by_name(h, "pcpu");
    int fd2 = wasm_bpf_map_fd_by_name(h2, "hmap");
    uint32_t key = 7, msz;
    uint64_t val = 0, v2 = 0;

    OUT("fds_ok", fd >= 0 && pfd >= 0 && fd2 >= 0);
    OUT("close_h2", wasm_close_bpf_object(h2));

    /* fds never handed out to this instance */
    OUT("fd_0", lookup(0, &key, &val));
    OUT("fd_1", lookup(1, &key, &val));
    OUT("fd_2", lookup(2, &key, &val));
    OUT("fd_9999", lookup(9999, &key, &val));
    OUT("fd_neg", lookup(-1, &key, &val));
    OUT("fd_closed_obj", lookup(fd2, &key, &val));
    OUT("fd_closed_obj_update", update(fd2, &key, &val, 0));

    /* commands */
    OUT("cmd_0", wasm_bpf_map_operate(fd, 0, &key, &val, 0, 0));
    OUT("cmd_5", wasm_bpf_map_operate(fd, 5, &key, &val, 0, 0));
    OUT("cmd_99", wasm_bpf_map_operate(fd, 99, &key, &val, 0, 0));
    OUT("cmd_neg", wasm_bpf_map_operate(fd, -1, &key, &val, 0, 0));

    /* missing keys */
    OUT("lookup_missing", lookup(fd, &key, &val));
    OUT("delete_missing", wasm_bpf_map_operate(fd, WB_DELETE, &key, 0, 0, 0));

    /* ranges */
    msz = mem_size();
    OUT("key_null_lookup", lookup(fd, 0, &val));
    OUT("key_null_update", update(fd, 0, &val, 0));
    OUT("key_null_delete", wasm_bpf_map_operate(fd, WB_DELETE, 0, 0, 0, 0));
    OUT("key_straddles_end", lookup(fd, PTR(msz - 2), &val));
    OUT("key_outside", lookup(fd, PTR(msz + 4), &val));
    OUT("key_huge", lookup(fd, PTR(0xfffffffeu), &val));
    OUT("value_straddles_end", lookup(fd, &key, PTR(msz - 4)));
    OUT("value_outside_update", update(fd, &key, PTR(msz + 64), 0));
    OUT("next_key_outside", wasm_bpf_map_operate(fd, WB_NEXT_KEY, 0, 0, PTR(msz - 1), 0));
    /* exactly at the end is fine */
    val = 0x1234;
    memcpy(PTR(msz - 8), &val, 8);
    OUT("value_exact_end_update", update(fd, &key, PTR(msz - 8), 0));
    val = 0;
    OUT("roundtrip_end_lookup", lookup(fd, &key, &val));
    OUT("roundtrip_end_value", val == 0x1234);

    /* update + lookup roundtrip, flags passed through */
    val = 0xabcdef0123ull;
    OUT("update", update(fd, &key, &val, 0));
    v2 = 0;
    OUT("lookup", lookup(fd, &key, &v2));
    OUT("roundtrip", v2 == 0xabcdef0123ull);
    OUT("update_noexist_existing", update(fd, &key, &val, 1 /* BPF_NOEXIST */));
    {
        uint32_t k9 = 9;
        OUT("update_exist_missing", update(fd, &k9, &val, 2 /* BPF_EXIST */));
    }
    OUT("delete", wasm_bpf_map_operate(fd, WB_DELETE, &key, 0, 0, 0));
    OUT("lookup_deleted", lookup(fd, &key, &val));

    /* iteration: keys 0..5 and 100; start from NULL */
    {
        uint32_t keys[] = {0, 1, 2, 3, 4, 5, 100};
        unsigned n = sizeof(keys) / sizeof(keys[0]), seen = 0, count = 0, bad = 0;
        uint32_t cur = 0, next = 0;
        int r = 0;
        for (unsigned i = 0; i < n; i++) {
            val = keys[i] * 10;
            update(fd, &keys[i], &val, 0);
        }
        r = wasm_bpf_map_operate(fd, WB_NEXT_KEY, 0, 0, &next, 0);
        OUT("next_first", r);
        while (r == 0 && count < 64) {
            int idx = -1;
            for (unsigned i = 0; i < n; i++)
                if (keys[i] == next)
                    idx = (int)i;
            if (idx < 0 || (seen & (1u << idx)))
                bad = 1;
            else
                seen |= 1u << idx;
            count++;
            cur = next;
            r = wasm_bpf_map_operate(fd, WB_NEXT_KEY, &cur, 0, &next, 0);
        }
        OUT("next_end", r);
        OUT("next_count", count);
        OUT("next_all_once", !bad && seen == (1u << n) - 1);
        /* a key that is not in the map restarts from the first key (kernel semantics) */
        cur = 77777;
        OUT("next_from_missing", wasm_bpf_map_operate(fd, WB_NEXT_KEY, &cur, 0, &next, 0));
    }

    /* per-CPU array: value = round_up(12, 8) * ncpus bytes */
    {
        uint32_t stride = 16, total = stride * (uint32_t)ncpus, k1 = 1;
        unsigned char *in = malloc(total), *buf = malloc(total + 64);
        int ok = 1;
        for (int c = 0; c < ncpus; c++) {
            struct abi_pcpu v = {c + 1, 0x100 + c, 0x200 + c};
            memset(in + c * stride, 0xee, stride);
            memcpy(in + c * stride, &v, sizeof(v));
        }
        OUT("pcpu_update", update(pfd, &k1, in, 0));
        memset(buf, 0xaa, total + 64);
        OUT("pcpu_lookup", lookup(pfd, &k1, buf));
        for (int c = 0; c < ncpus; c++) {
            struct abi_pcpu v;
            memcpy(&v, buf + c * stride, sizeof(v));
            if (v.a != (unsigned)c + 1 || v.b != 0x100u + c || v.c != 0x200u + c)
                ok = 0;
        }
        OUT("pcpu_values", ok);
        ok = 1;
        for (uint32_t i = total; i < total + 64; i++)
            if (buf[i] != 0xaa)
                ok = 0;
        OUT("pcpu_guard", ok);
        msz = mem_size();
        memset(PTR(msz - total), 0xaa, total);
        OUT("pcpu_end_exact", lookup(pfd, &k1, PTR(msz - total)));
        {
            struct abi_pcpu v;
            memcpy(&v, PTR(msz - total + (ncpus - 1) * stride), sizeof(v));
            OUT("pcpu_end_exact_value", v.a == (unsigned)ncpus && v.c == 0x200u + ncpus - 1);
        }
        OUT("pcpu_end_short8", lookup(pfd, &k1, PTR(msz - total + 8)));
        OUT("pcpu_end_unrounded", lookup(pfd, &k1, PTR(msz - 12 * (uint32_t)ncpus)));
        OUT("pcpu_end_short1", lookup(pfd, &k1, PTR(msz - total + 1)));
        OUT("pcpu_update_short", update(pfd, &k1, PTR(msz - total + 8), 0));
        {
            uint32_t k4 = 4; /* max_entries is 4 */
            OUT("pcpu_bad_index", lookup(pfd, &k4, buf));
        }
    }
    OUT("close", wasm_close_bpf_object(h));
    OUT("survived", 1);
    return 0;
}

/* ------------------------------------------------------------ buffer_poll */

static int g_calls, g_last_size, g_stop_at, g_stop_ret, g_bad, g_seq[64], g_nseq;
static unsigned g_pid, g_kind;
static unsigned char *g_buf;
static uint32_t g_max, g_guard;

static int count_cb(void *ctx, void *data, unsigned int size)
{
    struct abi_rec r;
    g_calls++;
    g_last_size = (int)size;
    if (ctx != (void *)0x1234 || data != g_buf)
        g_bad |= 1;
    if (size > g_max)
        g_bad |= 2;
    memset(&r, 0, sizeof(r));
    memcpy(&r, data, size < sizeof(r) ? size : sizeof(r));
    if (size >= sizeof(r) && !rec_ok(&r, g_kind, g_pid))
        g_bad |= 4;
    for (uint32_t i = g_max; i < g_max + g_guard; i++)
        if (g_buf[i] != 0xaa)
            g_bad |= 8;
    if (g_nseq < 64)
        g_seq[g_nseq++] = (int)r.seq;
    if (g_stop_at && g_calls == g_stop_at)
        return g_stop_ret;
    return 0;
}

static int wrong_type_cb(int x) { return x; }
static void void_cb(void *ctx, void *data, unsigned int size) { (void)ctx; (void)data; (void)size; }

static void reset_cb(unsigned kind, uint32_t max, uint32_t guard)
{
    g_calls = g_last_size = g_stop_at = g_stop_ret = g_bad = g_nseq = 0;
    g_kind = kind;
    g_max = max;
    g_guard = guard;
    free(g_buf);
    g_buf = malloc(max + guard);
    memset(g_buf, 0xaa, max + guard);
}

static int bpoll(uint64_t h, int fd, int timeout_ms)
{
    return wasm_bpf_buffer_poll(h, fd, (int32_t)(uintptr_t)count_cb, 0x1234, g_buf, (int)g_max,
                                timeout_ms);
}

static int sc_pollerr(void)
{
    uint64_t h = load(), h2 = load();
    int rb = wasm_bpf_map_fd_by_name(h, "rb"), pf = wasm_bpf_map_fd_by_name(h, "perf");
    int hm = wasm_bpf_map_fd_by_name(h, "hmap"), rb2 = wasm_bpf_map_fd_by_name(h2, "rb");
    int32_t cb = (int32_t)(uintptr_t)count_cb;
    int64_t t0;
    int r;

    reset_cb(ABI_KIND_RING, 64, 0);
    OUT("fds_ok", rb >= 0 && pf >= 0 && hm >= 0 && rb2 >= 0);
    OUT("fd_9999", bpoll(h, 9999, 0));
    OUT("fd_0", bpoll(h, 0, 0));
    OUT("fd_other_object", bpoll(h, rb2, 0));
    OUT("bad_handle", bpoll(~h, rb, 0));
    OUT("zero_handle", bpoll(0, rb, 0));
    OUT("hash_map", bpoll(h, hm, 0));
    OUT("data_outside", wasm_bpf_buffer_poll(h, rb, cb, 0, PTR(mem_size() - 10), 64, 0));
    OUT("data_far", wasm_bpf_buffer_poll(h, rb, cb, 0, PTR(0xffffff00u), 64, 0));
    OUT("idx_huge", wasm_bpf_buffer_poll(h, rb, 99999, 0, g_buf, 64, 0));
    OUT("idx_neg", wasm_bpf_buffer_poll(h, rb, -1, 0, g_buf, 64, 0));
    OUT("idx_null", wasm_bpf_buffer_poll(h, rb, 0, 0, g_buf, 64, 0));
    OUT("idx_wrong_type", wasm_bpf_buffer_poll(h, rb, (int32_t)(uintptr_t)wrong_type_cb, 0, g_buf, 64, 0));
    OUT("idx_void_type", wasm_bpf_buffer_poll(h, rb, (int32_t)(uintptr_t)void_cb, 0, g_buf, 64, 0));
    OUT("perf_idx_null", wasm_bpf_buffer_poll(h, pf, 0, 0, g_buf, 64, 0));
    OUT("perf_data_outside", wasm_bpf_buffer_poll(h, pf, cb, 0, PTR(mem_size() - 10), 64, 0));

    t0 = now_ms();
    r = bpoll(h, rb, 0);
    OUT("ring_t0", r);
    OUT("ring_t0_ms", now_ms() - t0);
    t0 = now_ms();
    r = bpoll(h, pf, 0);
    OUT("perf_t0", r);
    OUT("perf_t0_ms", now_ms() - t0);
    t0 = now_ms();
    r = bpoll(h, rb, 200);
    OUT("ring_t200", r);
    OUT("ring_t200_ms", now_ms() - t0);
    t0 = now_ms();
    r = bpoll(h, pf, 200);
    OUT("perf_t200", r);
    OUT("perf_t200_ms", now_ms() - t0);
    OUT("calls", g_calls);
    OUT("close", wasm_close_bpf_object(h));
    OUT("close2", wasm_close_bpf_object(h2));
    OUT("after_close", bpoll(h, rb, 0));
    OUT("survived", 1);
    return 0;
}

/* Polls fd until n records arrived or 5 s passed; prints <p>_count, <p>_sum, <p>_maxpoll. */
static void poll_n(const char *p, uint64_t h, int fd, int n)
{
    char k[64];
    int sum = 0, maxpoll = 0, errs = 0, r;
    int64_t end = now_ms() + 5000;
    while (g_calls < n && now_ms() < end) {
        r = bpoll(h, fd, 100);
        if (r < 0)
            errs++;
        else
            sum += r;
        if (r > maxpoll)
            maxpoll = r;
    }
    snprintf(k, sizeof(k), "%s_count", p), OUT(k, g_calls);
    snprintf(k, sizeof(k), "%s_sum", p), OUT(k, sum);
    snprintf(k, sizeof(k), "%s_maxpoll", p), OUT(k, maxpoll);
    snprintf(k, sizeof(k), "%s_errs", p), OUT(k, errs);
    snprintf(k, sizeof(k), "%s_bad", p), OUT(k, g_bad);
}

static int sc_pollall(unsigned pid, int n)
{
    uint64_t h = load();
    int rb = wasm_bpf_map_fd_by_name(h, "rb"), pf = wasm_bpf_map_fd_by_name(h, "perf");
    int inorder = 1, unique = 1;
    unsigned long long seen = 0;

    g_pid = pid;
    /* the perf consumer (and so the perf events the program writes to) exists only
     * from the first poll on: create it before arming */
    reset_cb(ABI_KIND_PERF, 128, 0);
    OUT("perf_prime", bpoll(h, pf, 0));
    OUT("arm", arm(h, pid, 5, n, n));
    OUT("attach", wasm_attach_bpf_program(h, TP, 0));
    /* all records of both buffers are queued before the first poll */
    OUT("wait_sent", wait_sent(h, n, n));

    reset_cb(ABI_KIND_RING, 64, 32);
    poll_n("ring", h, rb, n);
    OUT("ring_size", g_last_size);
    for (int i = 0; i < g_nseq; i++)
        inorder &= g_seq[i] == i;
    OUT("ring_inorder", inorder && g_nseq == n);
    OUT("ring_extra", bpoll(h, rb, 0));

    reset_cb(ABI_KIND_PERF, 128, 32);
    poll_n("perf", h, pf, n);
    OUT("perf_size_ge", g_last_size >= (int)sizeof(struct abi_rec));
    for (int i = 0; i < g_nseq; i++) {
        if (g_seq[i] < 0 || g_seq[i] >= n || (seen & (1ull << g_seq[i])))
            unique = 0;
        else
            seen |= 1ull << g_seq[i];
    }
    OUT("perf_unique", unique && g_nseq == n);
    OUT("perf_extra", bpoll(h, pf, 0));
    OUT("sent_ring", read_ctl(h).ring_sent);
    OUT("sent_perf", read_ctl(h).perf_sent);
    OUT("close", wasm_close_bpf_object(h));
    return 0;
}

static int sc_polltrunc(unsigned pid)
{
    uint64_t h = load();
    int rb = wasm_bpf_map_fd_by_name(h, "rb"), pf = wasm_bpf_map_fd_by_name(h, "perf");
    int prefix_ok = 1;

    g_pid = pid;
    reset_cb(ABI_KIND_PERF, 16, 0);
    OUT("perf_prime", bpoll(h, pf, 0));
    OUT("arm", arm(h, pid, 3, 3, 3));
    OUT("attach", wasm_attach_bpf_program(h, TP, 0));
    OUT("wait_sent", wait_sent(h, 3, 3));
    reset_cb(ABI_KIND_RING, 16, 48);
    poll_n("ring", h, rb, 3);
    OUT("ring_size", g_last_size);
    {
        struct abi_rec r;
        memcpy(&r, g_buf, 16);
        prefix_ok = r.seq == 2 && r.pid == pid && r.kind == ABI_KIND_RING && r.magic == ABI_REC_MAGIC;
    }
    OUT("ring_prefix", prefix_ok);
    reset_cb(ABI_KIND_PERF, 16, 48);
    poll_n("perf", h, pf, 3);
    OUT("perf_size", g_last_size);
    {
        struct abi_rec r;
        memcpy(&r, g_buf, 16);
        prefix_ok = r.pid == pid && r.kind == ABI_KIND_PERF && r.magic == ABI_REC_MAGIC;
    }
    OUT("perf_prefix", prefix_ok);
    OUT("close", wasm_close_bpf_object(h));
    return 0;
}

static int sc_pollstop(unsigned pid)
{
    uint64_t h = load();
    int rb = wasm_bpf_map_fd_by_name(h, "rb"), pf = wasm_bpf_map_fd_by_name(h, "perf");
    char k[32];
    unsigned long long seen;

    g_pid = pid;
    reset_cb(ABI_KIND_PERF, 128, 0);
    OUT("perf_prime", bpoll(h, pf, 0));
    OUT("arm", arm(h, pid, 5, 5, 5));
    OUT("attach", wasm_attach_bpf_program(h, TP, 0));
    OUT("wait_sent", wait_sent(h, 5, 5));

    reset_cb(ABI_KIND_RING, 64, 0);
    g_stop_at = 2;
    g_stop_ret = -1;
    OUT("ring_p1", bpoll(h, rb, 1000));
    OUT("ring_p1_calls", g_calls);
    OUT("ring_p2", bpoll(h, rb, 1000));
    OUT("ring_p2_calls", g_calls);
    OUT("ring_p3", bpoll(h, rb, 0));
    for (int i = 0; i < g_nseq; i++)
        snprintf(k, sizeof(k), "ring_seq%d", i), OUT(k, g_seq[i]);

    reset_cb(ABI_KIND_PERF, 128, 0);
    g_stop_at = 2;
    g_stop_ret = -7;
    OUT("perf_p1", bpoll(h, pf, 1000));
    OUT("perf_p1_calls", g_calls);
    OUT("perf_p2", bpoll(h, pf, 1000));
    OUT("perf_p2_calls", g_calls);
    OUT("perf_p3", bpoll(h, pf, 0));
    seen = 0;
    for (int i = 0; i < g_nseq; i++)
        if (g_seq[i] >= 0 && g_seq[i] < 64)
            seen |= 1ull << g_seq[i];
    OUT("perf_seen_mask", seen);
    OUT("close", wasm_close_bpf_object(h));
    return 0;
}

static uint64_t g_h;
static int g_fd, g_inner = 1;
static int busy_cb(void *ctx, void *data, unsigned int size)
{
    (void)ctx;
    (void)size;
    g_calls++;
    if (g_inner == 1)
        g_inner = wasm_bpf_buffer_poll(g_h, g_fd, (int32_t)(uintptr_t)busy_cb, 0, data, 64, 0);
    return 0;
}

static int sc_pollbusy(unsigned pid)
{
    static unsigned char buf[64];
    g_h = load();
    g_fd = wasm_bpf_map_fd_by_name(g_h, "rb");
    OUT("arm", arm(g_h, pid, 1, 1, 0));
    OUT("attach", wasm_attach_bpf_program(g_h, TP, 0));
    OUT("wait_sent", wait_sent(g_h, 1, 0));
    OUT("poll", wasm_bpf_buffer_poll(g_h, g_fd, (int32_t)(uintptr_t)busy_cb, 0, buf, 64, 1000));
    OUT("inner", g_inner);
    OUT("calls", g_calls);
    OUT("close", wasm_close_bpf_object(g_h));
    return 0;
}

/* timeout -1 returns as soon as a record arrives */
static int sc_pollblock(unsigned pid)
{
    uint64_t h = load();
    int rb = wasm_bpf_map_fd_by_name(h, "rb");
    int64_t t0;
    g_pid = pid;
    reset_cb(ABI_KIND_RING, 64, 0);
    OUT("arm", arm(h, pid, 1, 1, 0));
    OUT("attach", wasm_attach_bpf_program(h, TP, 0));
    t0 = now_ms();
    OUT("poll", bpoll(h, rb, -1));
    OUT("poll_ms", now_ms() - t0);
    OUT("calls", g_calls);
    OUT("bad", g_bad);
    OUT("close", wasm_close_bpf_object(h));
    return 0;
}

static int trap_cb(void *ctx, void *data, unsigned int size)
{
    (void)ctx, (void)data, (void)size;
    __builtin_trap();
}
static int exit_cb(void *ctx, void *data, unsigned int size)
{
    (void)ctx, (void)data, (void)size;
    exit(7);
}

/* A callback that traps (how="trap") or exits with 7 (how="exit"). */
static int sc_pollcb(unsigned pid, const char *how)
{
    static unsigned char buf[64];
    uint64_t h = load();
    int rb = wasm_bpf_map_fd_by_name(h, "rb");
    void *cb = strcmp(how, "exit") == 0 ? (void *)exit_cb : (void *)trap_cb;
    OUT("arm", arm(h, pid, 1, 1, 0));
    OUT("attach", wasm_attach_bpf_program(h, TP, 0));
    OUT("wait_sent", wait_sent(h, 1, 0));
    fflush(stdout);
    int r = wasm_bpf_buffer_poll(h, rb, (int32_t)(uintptr_t)cb, 0, buf, 64, 2000);
    OUT("returned", r); /* not reached */
    return 0;
}

/* ------------------------------------------------------------- stopping */

/* Attaches, says "ready" and polls with timeout -1. how: "eintr" leaves on -EINTR
 * and returns 0; "ignore" ignores it and keeps polling; "spin" spins in Wasm. */
static int sc_wait(const char *how)
{
    static unsigned char buf[64];
    uint64_t h = load();
    int rb = wasm_bpf_map_fd_by_name(h, "rb");
    int32_t cb = (int32_t)(uintptr_t)count_cb;
    int r, n = 0;
    int64_t t0;

    reset_cb(ABI_KIND_RING, 64, 0);
    OUT("attach", wasm_attach_bpf_program(h, TP, 0));
    OUT("ready", 1);
    fflush(stdout);
    if (strcmp(how, "spin") == 0) {
        volatile unsigned long x = 0;
        for (;;)
            x++;
    }
    t0 = now_ms();
    for (;;) {
        r = wasm_bpf_buffer_poll(h, rb, cb, 0, buf, 64, -1);
        n++;
        if (r == -EINTR && strcmp(how, "ignore") != 0)
            break;
        if (r < 0 && r != -EINTR) {
            OUT("error", r);
            break;
        }
    }
    OUT("poll", r);
    OUT("polls", n);
    OUT("eintr", r == -EINTR);
    OUT("waited_ms", now_ms() - t0);
    OUT("close", wasm_close_bpf_object(h));
    fflush(stdout);
    return 0;
}

/* --------------------------------------------------------------- close */

static int sc_close(void)
{
    uint64_t h = load();
    int fd = wasm_bpf_map_fd_by_name(h, "hmap"), rb = wasm_bpf_map_fd_by_name(h, "rb");
    uint32_t key = 1;
    uint64_t val = 1;
    OUT("attach", wasm_attach_bpf_program(h, TP, 0));
    OUT("update", update(fd, &key, &val, 0));
    OUT("close1", wasm_close_bpf_object(h));
    OUT("close2", wasm_close_bpf_object(h));
    OUT("close_zero", wasm_close_bpf_object(0));
    OUT("close_unknown", wasm_close_bpf_object(~h));
    OUT("lookup_after", lookup(fd, &key, &val));
    OUT("update_after", update(fd, &key, &val, 0));
    reset_cb(ABI_KIND_RING, 64, 0);
    OUT("poll_after", bpoll(h, rb, 0));
    OUT("attach_after", wasm_attach_bpf_program(h, TP, 0));
    OUT("fd_after", wasm_bpf_map_fd_by_name(h, "hmap"));
    OUT("survived", 1);
    return 0;
}

/* Preopened-directory handshake with the test: touch(dir/name) and wait for it. */
static void touch(const char *dir, const char *name, long long value)
{
    char path[256];
    FILE *f;
    snprintf(path, sizeof(path), "%s/%s.tmp", dir, name);
    f = fopen(path, "w");
    if (!f) {
        printf("cannot_create=%s errno=%d\n", path, errno);
        exit(90);
    }
    fprintf(f, "%lld\n", value);
    fclose(f);
    {
        char final[256];
        snprintf(final, sizeof(final), "%s/%s", dir, name);
        rename(path, final);
    }
}

static void wait_for(const char *dir, const char *name)
{
    char path[256];
    int64_t end = now_ms() + 10000;
    snprintf(path, sizeof(path), "%s/%s", dir, name);
    while (access(path, F_OK) != 0) {
        if (now_ms() > end) {
            printf("timeout_waiting=%s\n", name);
            exit(91);
        }
        usleep(5000);
    }
}

static int sc_closedetach(const char *dir)
{
    uint64_t h = load();
    OUT("attach_tp", wasm_attach_bpf_program(h, TP, 0));
    OUT("attach_xdp", wasm_attach_bpf_program(h, XDP, "lo"));
    fflush(stdout);
    touch(dir, "attached", 0);
    wait_for(dir, "go1");
    OUT("close", wasm_close_bpf_object(h));
    fflush(stdout);
    touch(dir, "closed", 0);
    wait_for(dir, "go2");
    return 0;
}

/* Loads, attaches, hands the hash map's fd to the test and waits (no close). */
static int sc_holdfd(const char *dir)
{
    uint64_t h = load();
    int fd = wasm_bpf_map_fd_by_name(h, "hmap");
    uint32_t key = 5;
    uint64_t val = 55;
    OUT("attach", wasm_attach_bpf_program(h, TP, 0));
    OUT("update", update(fd, &key, &val, 0));
    fflush(stdout);
    touch(dir, "handle", (long long)h);
    touch(dir, "fd", fd);
    wait_for(dir, "go");
    val = 0;
    OUT("lookup_own", lookup(fd, &key, &val));
    OUT("own_value", val);
    return 0;
}

/* Tries map_operate on fds this instance never got (argv), then on its own. */
static int sc_foreignfd(int argc, char **argv)
{
    char k[64];
    uint32_t key = 5;
    uint64_t val = 0;
    for (int i = 2; i < argc; i++) {
        if (argv[i][0] == 'h') { /* h<handle>: another instance's object handle */
            uint64_t oh = strtoull(argv[i] + 1, 0, 10);
            OUT("handle_attach", wasm_attach_bpf_program(oh, TP, 0));
            OUT("handle_fd", wasm_bpf_map_fd_by_name(oh, "hmap"));
            OUT("handle_close", wasm_close_bpf_object(oh));
            continue;
        }
        int fd = atoi(argv[i]);
        snprintf(k, sizeof(k), "lookup_%d", fd), OUT(k, lookup(fd, &key, &val));
        snprintf(k, sizeof(k), "update_%d", fd), OUT(k, update(fd, &key, &val, 0));
        snprintf(k, sizeof(k), "next_%d", fd), OUT(k, wasm_bpf_map_operate(fd, WB_NEXT_KEY, 0, 0, &key, 0));
    }
    OUT("value_untouched", val == 0);
    uint64_t h = load();
    int fd = wasm_bpf_map_fd_by_name(h, "hmap");
    val = 66;
    OUT("own_update", update(fd, &key, &val, 0));
    OUT("own_lookup", lookup(fd, &key, &val));
    OUT("close", wasm_close_bpf_object(h));
    return 0;
}

/* ----------------------------------------------------------------- errno */

static int sc_errno(void)
{
    uint64_t h = load();
    uint32_t key = 424242;
    uint64_t val;
    int fd = wasm_bpf_map_fd_by_name(h, "hmap");
    OUT("EINVAL", EINVAL);
    OUT("ENOENT", ENOENT);
    OUT("EBADF", EBADF);
    OUT("EFAULT", EFAULT);
    OUT("EINTR", EINTR);
    OUT("ENODEV", ENODEV);
    OUT("is_EINVAL", wasm_attach_bpf_program(~h, TP, 0) == -EINVAL);
    OUT("is_ENOENT_attach", wasm_attach_bpf_program(h, "nope", 0) == -ENOENT);
    OUT("is_ENOENT_map", wasm_bpf_map_fd_by_name(h, "nope") == -ENOENT);
    OUT("is_ENOENT_lookup", lookup(fd, &key, &val) == -ENOENT);
    OUT("is_EBADF", lookup(9999, &key, &val) == -EBADF);
    OUT("is_EFAULT", lookup(fd, PTR(mem_size()), &val) == -EFAULT);
    OUT("is_ENODEV", wasm_attach_bpf_program(h, XDP, "nonexistent0") == -ENODEV);
    OUT("is_EINVAL_close", wasm_close_bpf_object(h) == 0 && wasm_close_bpf_object(h) == -EINVAL);
    return 0;
}

/* ------------------------------------------- wasm_bpf_ext, .rodata patching */

__attribute__((import_module("wasm_bpf_ext"), import_name("wasm_load_bpf_object_ex")))
uint64_t wasm_load_bpf_object_ex(const void *obj_buf, int obj_buf_sz, const void *no_load,
                                 int no_load_sz);

static int sc_loadex(void)
{
    static const char one[] = "xdp_pass";                 /* 9 bytes with the NUL */
    static const char two[] = "xdp_pass\0on_getppid";     /* 20 bytes */
    static const char unknown[] = "no_such_prog";
    int sz = (int)sizeof(abi_bpf_obj);
    uint64_t h;

    h = wasm_load_bpf_object_ex(abi_bpf_obj, sz, one, sizeof(one));
    OUT("one_loaded", h != 0);
    OUT("one_attach_skipped", wasm_attach_bpf_program(h, XDP, "lo"));
    OUT("one_attach_loaded", wasm_attach_bpf_program(h, TP, 0));
    OUT("one_close", wasm_close_bpf_object(h));
    h = wasm_load_bpf_object_ex(abi_bpf_obj, sz, two, sizeof(two));
    OUT("two_loaded", h != 0);
    OUT("two_attach_tp", wasm_attach_bpf_program(h, TP, 0));
    OUT("two_attach_xdp", wasm_attach_bpf_program(h, XDP, "lo"));
    OUT("two_map_fd", wasm_bpf_map_fd_by_name(h, "hmap") >= 0);
    OUT("two_close", wasm_close_bpf_object(h));
    OUT("unknown_name", wasm_load_bpf_object_ex(abi_bpf_obj, sz, unknown, sizeof(unknown)));
    OUT("list_outside", wasm_load_bpf_object_ex(abi_bpf_obj, sz, PTR(mem_size() - 4), 64));
    h = wasm_load_bpf_object_ex(abi_bpf_obj, sz, 0, 0);
    OUT("empty_list_loaded", h != 0);
    OUT("empty_list_attach", wasm_attach_bpf_program(h, TP, 0));
    OUT("empty_list_close", wasm_close_bpf_object(h));
    OUT("zero_size", wasm_load_bpf_object_ex(abi_bpf_obj, 0, one, sizeof(one)));
    OUT("survived", 1);
    return 0;
}

static int sc_rodata(void)
{
    unsigned char *copy = malloc(sizeof(abi_bpf_obj));
    uint32_t patched = 0x600dcafe, v = 0, zero = 0;
    uint64_t h;
    memcpy(copy, abi_bpf_obj, sizeof(abi_bpf_obj));
    memcpy(&v, copy + ABI_RODATA_MAGIC_OFF, 4);
    OUT("offset_ok", v == ABI_RODATA_MAGIC);
    memcpy(copy + ABI_RODATA_MAGIC_OFF, &patched, 4);
    h = wasm_load_bpf_object(copy, (int)sizeof(abi_bpf_obj));
    OUT("loaded", h != 0);
    v = 0;
    OUT("lookup", lookup(wasm_bpf_map_fd_by_name(h, "abi_bpf.rodata"), &zero, &v));
    OUT("patched", v == patched);
    OUT("close", wasm_close_bpf_object(h));
    return 0;
}

/* ------------------------------------------------------------ misc / CLI */

static int sc_readfile(const char *path)
{
    char line[256] = {0};
    FILE *f = fopen(path, "r");
    if (!f) {
        OUT("open_errno", errno);
        return 4;
    }
    if (!fgets(line, sizeof(line), f))
        line[0] = 0;
    fclose(f);
    line[strcspn(line, "\n")] = 0;
    printf("content=%s\n", line);
    return 0;
}

int main(int argc, char **argv)
{
    const char *sc = argc > 1 ? argv[1] : "";
    setvbuf(stdout, NULL, _IOLBF, 0);
#define ARGI(i) (argc > (i) ? atoi(argv[i]) : 0)
    if (!strcmp(sc, "load"))
        return sc_load();
    if (!strcmp(sc, "attach"))
        return sc_attach();
    if (!strcmp(sc, "fdname"))
        return sc_fdname();
    if (!strcmp(sc, "mapop"))
        return sc_mapop(ARGI(2));
    if (!strcmp(sc, "pollerr"))
        return sc_pollerr();
    if (!strcmp(sc, "pollall"))
        return sc_pollall(ARGI(2), ARGI(3));
    if (!strcmp(sc, "polltrunc"))
        return sc_polltrunc(ARGI(2));
    if (!strcmp(sc, "pollstop"))
        return sc_pollstop(ARGI(2));
    if (!strcmp(sc, "pollblock"))
        return sc_pollblock(ARGI(2));
    if (!strcmp(sc, "pollbusy"))
        return sc_pollbusy(ARGI(2));
    if (!strcmp(sc, "pollcb"))
        return sc_pollcb(ARGI(2), argc > 3 ? argv[3] : "trap");
    if (!strcmp(sc, "wait"))
        return sc_wait(argc > 2 ? argv[2] : "eintr");
    if (!strcmp(sc, "close"))
        return sc_close();
    if (!strcmp(sc, "closedetach"))
        return sc_closedetach(argv[2]);
    if (!strcmp(sc, "holdfd"))
        return sc_holdfd(argv[2]);
    if (!strcmp(sc, "foreignfd"))
        return sc_foreignfd(argc, argv);
    if (!strcmp(sc, "loadex"))
        return sc_loadex();
    if (!strcmp(sc, "rodata"))
        return sc_rodata();
    if (!strcmp(sc, "errno"))
        return sc_errno();
    if (!strcmp(sc, "ret3"))
        return 3;
    if (!strcmp(sc, "retneg1"))
        return -1;
    if (!strcmp(sc, "exit255")) {
        printf("before_exit=1\n");
        exit(255);
    }
    if (!strcmp(sc, "procexit255")) {
        fflush(stdout);
        __wasi_proc_exit(255);
    }
    if (!strcmp(sc, "trap")) {
        printf("before_trap=1\n");
        fflush(stdout);
        __builtin_trap();
    }
    if (!strcmp(sc, "args")) {
        OUT("argc", argc);
        for (int i = 0; i < argc; i++)
            printf("argv%d=%s\n", i, argv[i]);
        return 0;
    }
    if (!strcmp(sc, "env")) {
        const char *v = getenv(argc > 2 ? argv[2] : "FOO");
        printf("env=%s\n", v ? v : "<unset>");
        return 0;
    }
    if (!strcmp(sc, "readfile"))
        return sc_readfile(argv[2]);
    printf("unknown scenario '%s'\n", sc);
    return 64;
}
