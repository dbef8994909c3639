/* The isolation guest: several copies run at once in one process
 * (tests/test_isolation.py), each in its own wasm_bpf.Instance.
 *
 *   isolation serve PID TAG ACTION [HANDLE LINK HMAP_FD RING_FD]
 *
 * With the four numbers of another instance, first tries them all (before this
 * instance has loaded anything, and again after): foreign_* lines. Then loads the
 * ABI object with its .rodata magic set to TAG (so its records carry TAG), arms it
 * for getppid() of PID, attaches it through a link, stores the bytes of its memory
 * marker in its hash map, prints its numbers and ready=1, and polls its ring buffer
 * until stopped, printing records=N as they arrive. ACTION: "none"; "ignore" the
 * stop (-EINTR) and keep polling; "trap" or "exit" (status 3) in the record
 * callback once 20 records arrived; after the
 * stop, "badload" loads an object the verifier refuses, "infoload" one libbpf
 * logs an info message about (isolation.bpf.c).
 */
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "abi_bpf_obj.h"
#include "abi_common.h"
#include "isolation_bpf_obj.h"
#include "wasm_bpf_imports.h"

#define OUT(k, v) (printf("%s=%lld\n", (k), (long long)(v)), fflush(stdout))
#define EXT(name) __attribute__((import_module("wasm_bpf_ext"), import_name(name)))
EXT("wasm_bpf_attach_link") int64_t wasm_bpf_attach_link(uint64_t obj, const char *name, const char *target);
EXT("wasm_bpf_link_destroy") int wasm_bpf_link_destroy(int64_t link);
EXT("wasm_bpf_iter_read") int wasm_bpf_iter_read(uint64_t obj, const char *name, void *buf, int len);
EXT("wasm_bpf_map_mirror") int wasm_bpf_map_mirror(int fd, void *mirror, int size);
EXT("wasm_bpf_map_batch") int wasm_bpf_map_batch(int fd, int cmd, void *in_batch, void *out_batch, void *keys,
                                                 void *values, uint32_t *count, uint64_t elem_flags,
                                                 uint64_t flags);

static const char *TP = "on_getppid";
static const uint32_t KEY_MARKER = 7;

static char marker[8];              /* "tag" + TAG: the same offset in every copy */
static struct abi_rec record;       /* where the host copies each record */
static uint32_t want_magic;
static long long records, foreign_records, budget = -1;
static char action[16];

static int on_record(void *ctx, void *data, unsigned int size)
{
    const struct abi_rec *r = data;
    (void)ctx;
    if (data != &record || size != sizeof(record) || r->kind != ABI_KIND_RING || r->magic != want_magic)
        foreign_records++;
    records++;
    if (budget >= 0 && records >= budget) {
        if (!strcmp(action, "trap"))
            __builtin_trap();
        exit(3);
    }
    return 0;
}

static int map_update(int fd, uint32_t key, const void *value)
{
    return wasm_bpf_map_operate(fd, WB_UPDATE, &key, (void *)value, 0, 0);
}

/* Every call an instance could make on another one's numbers. */
static void probe(const char *when, uint64_t h, int64_t link, int hmap, int ring, uint64_t own)
{
    static unsigned char buf[sizeof(struct abi_rec)];
    char k[64];
    uint32_t key = KEY_MARKER, next = 0, keys[4], count = 4, token;
    uint64_t value = 0, values[4];

#define P(what, expr) (snprintf(k, sizeof(k), "foreign_%s_%s", when, what), OUT(k, (expr)))
    if (!own) { /* handles are per instance: once this one has objects, h may be its own */
        P("attach", wasm_attach_bpf_program(h, TP, 0));
        P("fd_by_name", wasm_bpf_map_fd_by_name(h, "hmap"));
        P("poll_handle", wasm_bpf_buffer_poll(h, ring, (int32_t)(uintptr_t)on_record, 0, buf, sizeof(buf), 0));
        P("link_destroy", wasm_bpf_link_destroy(link));
        P("iter_read", wasm_bpf_iter_read(h, TP, buf, sizeof(buf)));
        P("close", wasm_close_bpf_object(h));
    }
    P("lookup", wasm_bpf_map_operate(hmap, WB_LOOKUP, &key, &value, 0, 0));
    P("update", map_update(hmap, key, &value));
    P("delete", wasm_bpf_map_operate(hmap, WB_DELETE, &key, 0, 0, 0));
    P("next_key", wasm_bpf_map_operate(hmap, WB_NEXT_KEY, 0, 0, &next, 0));
    P("ring_lookup", wasm_bpf_map_operate(ring, WB_LOOKUP, &key, &value, 0, 0));
    P("batch_lookup", wasm_bpf_map_batch(hmap, 24, 0, &token, keys, values, &count, 0, 0));
    P("batch_delete", wasm_bpf_map_batch(hmap, 27, 0, 0, &key, 0, &(uint32_t){1}, 0, 0));
    P("mirror", wasm_bpf_map_mirror(hmap, &value, sizeof(value)));
    if (own)
        P("poll_fd", wasm_bpf_buffer_poll(own, ring, (int32_t)(uintptr_t)on_record, 0, buf, sizeof(buf), 0));
    P("value_untouched", value == 0);
#undef P
}

int main(int argc, char **argv)
{
    if (argc != 5 && argc != 9) {
        fprintf(stderr, "usage: serve PID TAG ACTION [HANDLE LINK HMAP_FD RING_FD]\n");
        return 2;
    }
    unsigned pid = (unsigned)atoi(argv[2]);
    uint32_t tag = (uint32_t)strtoul(argv[3], 0, 0);
    int foreign = argc == 9;
    uint64_t fh = foreign ? strtoull(argv[5], 0, 0) : 0;
    int64_t flink = foreign ? strtoll(argv[6], 0, 0) : 0;
    int fhmap = foreign ? atoi(argv[7]) : -1, fring = foreign ? atoi(argv[8]) : -1;

    snprintf(action, sizeof(action), "%s", argv[4]);
    if (!strcmp(action, "trap") || !strcmp(action, "exit"))
        budget = 20;
    snprintf(marker, sizeof(marker), "tag%u", tag % 10000);
    if (foreign)
        probe("before", fh, flink, fhmap, fring, 0);

    /* This copy's object: .rodata_magic = TAG, so its records carry TAG too. */
    unsigned char *elf = malloc(sizeof(abi_bpf_obj));
    memcpy(elf, abi_bpf_obj, sizeof(abi_bpf_obj));
    memcpy(elf + ABI_RODATA_MAGIC_OFF, &tag, sizeof(tag));
    want_magic = ABI_REC_MAGIC ^ tag ^ ABI_RODATA_MAGIC;
    uint64_t h = wasm_load_bpf_object(elf, (int)sizeof(abi_bpf_obj));
    int bss = wasm_bpf_map_fd_by_name(h, "abi.bss");
    int hmap = wasm_bpf_map_fd_by_name(h, "hmap");
    int ring = wasm_bpf_map_fd_by_name(h, "rb");
    struct abi_ctl ctl = {.target_pid = pid, .nrec = 1, .ring_limit = 0xffffffffu};
    uint32_t zero = 0;
    OUT("arm", map_update(bss, zero, &ctl));
    OUT("marker_store", map_update(hmap, KEY_MARKER, marker));
    int64_t link = wasm_bpf_attach_link(h, TP, 0);
    if (foreign)
        probe("after", fh, flink, fhmap, fring, h);
    OUT("handle", h);
    OUT("link", link);
    OUT("hmap_fd", hmap);
    OUT("ring_fd", ring);
    OUT("marker_off", (uintptr_t)marker);
    OUT("record_off", (uintptr_t)&record);
    OUT("ready", 1);

    int r;
    long long shown = 0;
    for (;;) {
        r = wasm_bpf_buffer_poll(h, ring, (int32_t)(uintptr_t)on_record, 0, &record, sizeof(record), 100);
        if (r == -EINTR && !strcmp(action, "ignore")) { /* until the host interrupts it */
            usleep(20000);
            continue;
        }
        if (r < 0)
            break;
        if (records != shown)
            OUT("records", shown = records);
        usleep(20000);
    }
    OUT("poll_end", r);
    OUT("records", records);
    OUT("foreign_records", foreign_records);

    char back[8] = {0};
    uint32_t key = KEY_MARKER;
    OUT("marker_lookup", wasm_bpf_map_operate(hmap, WB_LOOKUP, &key, back, 0, 0));
    OUT("marker_roundtrip", memcmp(back, marker, sizeof(marker)) == 0);
    if (!strcmp(action, "badload")) {
        /* r0 = *(u64 *)(r10 + 8): above the stack, the verifier refuses it */
        static const unsigned char insn[8] = {0x79, 0xa0, 0x08, 0x00, 0, 0, 0, 0};
        memcpy(elf + ABI_PROG_OFF, insn, sizeof(insn));
        OUT("badload", wasm_load_bpf_object(elf, (int)sizeof(abi_bpf_obj)));
    }
    if (!strcmp(action, "infoload")) {
        uint64_t info = wasm_load_bpf_object(isolation_bpf_obj, (int)sizeof(isolation_bpf_obj));
        OUT("infoload", info != 0);
        wasm_close_bpf_object(info);
    }
    OUT("link_destroy", wasm_bpf_link_destroy(link));
    OUT("close", wasm_close_bpf_object(h));
    return 0;
}
