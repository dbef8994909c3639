/* Map API guest (tests/test_map_api.py): maps NCPUS PID
 * Runs the guest SDK's map functions (libbpf-wasm.h) on every map of maps.bpf.o and
 * prints what came back as key=value lines, named MAP.CHECK. Values the test can
 * recompute are printed raw; the guest does not decide what is right. */
#include "libbpf-wasm.h"
#include "maps_bpf_obj.h"

/* maps.bpf.c's .bss */
struct maps_ctl {
    uint32_t target_pid, pad;
    uint64_t counter, seen_inner, tail_hits, user_records, user_sum;
};

static int ncpus;
static uint64_t obj;

static void out(const char *map, const char *what, long long v) { printf("%s.%s=%lld\n", map, what, v); }

static int on_record(void *ctx, void *data, int size) { return 0; }

static int fd_of(const char *name) { return wasm_bpf_map_fd_by_name(obj, name); }

/* hash-like and array maps: key u32, value u64 (per CPU: ncpus slots of 8 bytes). */
static void kv_map(const char *name, int percpu, int is_array, int n)
{
    int fd = fd_of(name), slots = percpu ? ncpus : 1, err, cnt;
    uint64_t vals[64 * 16], v[16];
    uint32_t keys[64], key, next, count, out_batch;
    long long sum = 0;

    for (int k = 0; k < n; k++) {
        for (int c = 0; c < slots; c++)
            v[c] = (uint64_t)k * 100 + c;
        if ((err = bpf_map_update_elem(fd, &k, v, BPF_ANY)))
            break;
    }
    out(name, "update", err);
    for (int k = 0; k < n; k++) {
        memset(v, 0, sizeof(v));
        if ((err = bpf_map_lookup_elem(fd, &k, v)))
            break;
        for (int c = 0; c < slots; c++)
            sum += (long long)v[c];
    }
    out(name, "lookup", err);
    out(name, "sum", sum);
    cnt = 0;
    for (err = bpf_map_get_next_key(fd, NULL, &next); !err; err = bpf_map_get_next_key(fd, &key, &next)) {
        key = next;
        cnt++;
    }
    out(name, "next_key_end", err);
    out(name, "keys", cnt);
    key = 1;
    memset(v, 0, sizeof(v));
    err = bpf_map_lookup_and_delete_elem(fd, &key, v);
    out(name, "lookup_and_delete", err);
    out(name, "lookup_and_delete_value", err ? -1 : (long long)v[0]);
    out(name, "after_lookup_and_delete", bpf_map_lookup_elem(fd, &key, v));
    key = 2;
    out(name, "delete", bpf_map_delete_elem(fd, &key));
    out(name, "after_delete", bpf_map_lookup_elem(fd, &key, v));

    /* batches: update every key again, read them all back in batches of 3 */
    for (int k = 0; k < n; k++) {
        keys[k] = k;
        for (int c = 0; c < slots; c++)
            vals[k * slots + c] = (uint64_t)k * 100 + c + 1;
    }
    count = n;
    out(name, "update_batch", bpf_map_update_batch(fd, keys, vals, &count, NULL));
    out(name, "update_batch_count", count);
    memset(keys, 0xff, sizeof(keys));
    memset(vals, 0, sizeof(vals));
    cnt = 0;
    sum = 0;
    for (void *in = NULL;; in = &out_batch) {
        count = 3;
        err = bpf_map_lookup_batch(fd, in, &out_batch, keys + cnt, vals + cnt * slots, &count, NULL);
        cnt += count;
        if (err || cnt >= n)
            break;
    }
    for (int i = 0; i < cnt * slots; i++)
        sum += (long long)vals[i];
    out(name, "lookup_batch_end", err);
    out(name, "lookup_batch_count", cnt);
    out(name, "lookup_batch_sum", sum);
    if (!is_array) {
        count = 2;
        keys[0] = 3, keys[1] = 4;
        out(name, "delete_batch", bpf_map_delete_batch(fd, keys, &count, NULL));
        out(name, "delete_batch_count", count);
        count = 64;
        err = bpf_map_lookup_and_delete_batch(fd, NULL, &out_batch, keys, vals, &count, NULL);
        out(name, "lookup_and_delete_batch", err);
        out(name, "lookup_and_delete_batch_count", count);
        out(name, "empty", bpf_map_get_next_key(fd, NULL, &next));
    }
}

static void queue_like(const char *name)
{
    int fd = fd_of(name);
    uint64_t v, order = 0;
    int err = 0;
    for (v = 1; v <= 5 && !err; v++)
        err = bpf_map_update_elem(fd, NULL, &v, BPF_ANY);
    out(name, "push", err);
    out(name, "peek", bpf_map_lookup_elem(fd, NULL, &v));
    out(name, "peek_value", v);
    while (!(err = bpf_map_lookup_and_delete_elem(fd, NULL, &v)))
        order = order * 10 + v;
    out(name, "pop_order", order);
    out(name, "pop_end", err);
}

static void bloom(void)
{
    int fd = fd_of("m_bloom"), err = 0;
    uint64_t v;
    for (v = 10; v < 20 && !err; v++)
        err = bpf_map_update_elem(fd, NULL, &v, BPF_ANY);
    out("m_bloom", "push", err);
    v = 15;
    out("m_bloom", "has_15", bpf_map_lookup_elem(fd, NULL, &v));
    v = 1000;
    out("m_bloom", "has_1000", bpf_map_lookup_elem(fd, NULL, &v));
}

static void lpm(void)
{
    struct { uint32_t prefixlen; uint8_t addr[4]; } k = {8, {10, 0, 0, 0}};
    int fd = fd_of("m_lpm");
    uint64_t v = 8;
    out("m_lpm", "update8", bpf_map_update_elem(fd, &k, &v, BPF_ANY));
    k.prefixlen = 24, k.addr[1] = 1, k.addr[2] = 2, v = 24;
    out("m_lpm", "update24", bpf_map_update_elem(fd, &k, &v, BPF_ANY));
    k.prefixlen = 32, k.addr[3] = 3, v = 0;
    out("m_lpm", "lookup_10_1_2_3", bpf_map_lookup_elem(fd, &k, &v));
    out("m_lpm", "match_10_1_2_3", v);
    k.addr[1] = 9, v = 0;
    bpf_map_lookup_elem(fd, &k, &v);
    out("m_lpm", "match_10_9_2_3", v);
}

static void map_in_map(const char *name)
{
    int fd = fd_of(name), inner_a = fd_of("inner_a"), bogus = 1;
    uint32_t zero = 0, key = 1, id = 0;
    uint64_t seven = 7;
    out(name, "inner_update", bpf_map_update_elem(inner_a, &zero, &seven, BPF_ANY));
    out(name, "update", bpf_map_update_elem(fd, &zero, &inner_a, BPF_ANY));
    out(name, "update_foreign_fd", bpf_map_update_elem(fd, &key, &bogus, BPF_ANY));
    out(name, "lookup", bpf_map_lookup_elem(fd, &zero, &id));
    out(name, "inner_id_nonzero", id != 0);
}

/* devmap / devmap_hash / cpumap: plain values work, program fds are refused. */
static void redirect_maps(void)
{
    int fd = fd_of("m_devmap"), hfd = fd_of("m_devmap_hash"), cfd = fd_of("m_cpumap");
    uint32_t zero = 0, key = 5, next = 99, ifindex = 1 /* lo */, got = 0, qsize = 192;
    struct { uint32_t ifindex; int32_t prog_fd; } hv = {1, 0}, hgot = {0, 0};

    out("m_devmap", "update", bpf_map_update_elem(fd, &zero, &ifindex, BPF_ANY));
    out("m_devmap", "lookup", bpf_map_lookup_elem(fd, &zero, &got));
    out("m_devmap", "value", got);
    out("m_devmap", "next_key", bpf_map_get_next_key(fd, NULL, &next));
    out("m_devmap", "first_key", next);
    out("m_devmap", "delete", bpf_map_delete_elem(fd, &zero));
    out("m_devmap_hash", "update", bpf_map_update_elem(hfd, &key, &hv, BPF_ANY));
    out("m_devmap_hash", "lookup", bpf_map_lookup_elem(hfd, &key, &hgot));
    out("m_devmap_hash", "value", hgot.ifindex);
    hv.prog_fd = 3;
    out("m_devmap_hash", "update_prog_fd", bpf_map_update_elem(hfd, &key, &hv, BPF_ANY));
    out("m_devmap_hash", "delete", bpf_map_delete_elem(hfd, &key));
    out("m_cpumap", "update", bpf_map_update_elem(cfd, &zero, &qsize, BPF_ANY));
    got = 0;
    out("m_cpumap", "lookup", bpf_map_lookup_elem(cfd, &zero, &got));
    out("m_cpumap", "value", got);
    out("m_cpumap", "delete", bpf_map_delete_elem(cfd, &zero));
}

/* A prog array takes the fds of the guest's own programs (bpf_program__fd); any
 * other number is refused. The tail call itself is counted by the program. */
static void prog_array(void)
{
    struct bpf_object o = {.handle = obj};
    struct bpf_program tail = {.obj = &o, .name = "tail"}, none = {.obj = &o, .name = "no_such_prog"};
    int fd = fd_of("m_prog_array"), tail_fd = bpf_program__fd(&tail), map_fd = fd_of("m_hash");
    uint32_t zero = 0, one = 1, count = 1, id = 0;

    out("m_prog_array", "prog_fd_ok", tail_fd > 0);
    out("m_prog_array", "no_such_prog", bpf_program__fd(&none));
    out("m_prog_array", "update_map_fd", bpf_map_update_elem(fd, &zero, &map_fd, BPF_ANY));
    out("m_prog_array", "update", bpf_map_update_elem(fd, &zero, &tail_fd, BPF_ANY));
    out("m_prog_array", "lookup", bpf_map_lookup_elem(fd, &zero, &id));
    out("m_prog_array", "prog_id_nonzero", id != 0);
    out("m_prog_array", "update_batch", bpf_map_update_batch(fd, &one, &tail_fd, &count, NULL));
    out("m_prog_array", "prog_fd_as_map", bpf_map_lookup_elem(tail_fd, &zero, &id));
}

/* maps of socket, perf event, cgroup fds: a guest has none to give (a map fd is
 * not one), so the host refuses */
static void fd_valued_maps(void)
{
    static const char *names[] = {"m_perf_event_array", "m_cgroup_array", "m_sockmap", "m_sockhash",
                                  "m_xskmap", "m_reuseport_sockarray"};
    uint32_t key = 0, map_fd = (uint32_t)fd_of("m_hash");
    for (int i = 0; i < 6; i++)
        out(names[i], "update", bpf_map_update_elem(fd_of(names[i]), &key, &map_fd, BPF_ANY));
}

/* maps keyed by fds: a guest has none to give, so the host refuses */
static void fd_keyed_maps(void)
{
    static const char *names[] = {"m_task_storage", "m_sk_storage", "m_inode_storage", "m_cgrp_storage"};
    int key = 3;
    uint64_t v = 1;
    for (int i = 0; i < 4; i++) {
        out(names[i], "update", bpf_map_update_elem(fd_of(names[i]), &key, &v, BPF_ANY));
        out(names[i], "lookup", bpf_map_lookup_elem(fd_of(names[i]), &key, &v));
    }
}

/* Three records for `count` to drain (their sum is printed by the program's .bss),
 * then a ring nobody drains, filled until it refuses. */
static void user_ringbuf(void)
{
    struct user_ring_buffer *rb = user_ring_buffer__new(fd_of("m_user_rb"), NULL);
    struct user_ring_buffer *full = user_ring_buffer__new(fd_of("m_user_rb_full"), NULL);
    static char big[8192];
    uint64_t v = 1, *sample;
    int err = 0, n = 0;

    for (uint64_t i = 1; i <= 3 && !err; i++) {
        sample = user_ring_buffer__reserve(rb, sizeof(*sample));
        *sample = i * 10;
        err = user_ring_buffer__submit(rb, sample);
    }
    out("m_user_rb", "submit", err);
    sample = user_ring_buffer__reserve(rb, sizeof(*sample));
    user_ring_buffer__discard(rb, sample); /* never reaches the ring */
    while (n < 100000 && !(err = user_ring_buffer__submit(full, memcpy(user_ring_buffer__reserve(full, 8), &v, 8))))
        n++;
    out("m_user_rb_full", "submitted", n);
    out("m_user_rb_full", "full", err);
    out("m_user_rb", "too_big", wasm_bpf_user_ringbuf_submit(fd_of("m_user_rb"), big, sizeof(big)));
    out("m_user_rb", "empty", wasm_bpf_user_ringbuf_submit(fd_of("m_user_rb"), big, 0));
    out("m_user_rb", "not_user_ringbuf", wasm_bpf_user_ringbuf_submit(fd_of("m_hash"), &v, 8));
    out("m_user_rb", "foreign_fd", wasm_bpf_user_ringbuf_submit(1, &v, 8));
    user_ring_buffer__free(rb);
    user_ring_buffer__free(full);
}

int main(int argc, char **argv)
{
    struct maps_ctl ctl = {0};
    uint32_t zero = 0;
    uint64_t step = 5;

    if (argc < 3)
        return 2;
    ncpus = atoi(argv[1]);
    obj = wasm_load_bpf_object(maps_bpf_obj, sizeof(maps_bpf_obj));
    if (!obj)
        return 3;
    kv_map("m_hash", 0, 0, 8);
    kv_map("m_lru_hash", 0, 0, 8);
    kv_map("m_percpu_hash", 1, 0, 8);
    kv_map("m_lru_percpu_hash", 1, 0, 8);
    kv_map("m_array", 0, 1, 8);
    kv_map("m_percpu_array", 1, 1, 8);
    queue_like("m_queue");
    queue_like("m_stack");
    bloom();
    lpm();
    map_in_map("m_array_of_maps");
    map_in_map("m_hash_of_maps");
    redirect_maps();
    prog_array();
    fd_valued_maps();
    fd_keyed_maps();
    user_ringbuf();

    /* .bss/.data after load: arm, let the program run (the test calls getppid), read back */
    int bss = fd_of("maps.bss"), data = fd_of("maps.data");
    ctl.target_pid = (uint32_t)atoi(argv[2]);
    out("bss", "write", bpf_map_update_elem(bss, &zero, &ctl, BPF_ANY));
    out("data", "write", bpf_map_update_elem(data, &zero, &step, BPF_ANY));
    out("bss", "attach", wasm_attach_bpf_program(obj, "count", NULL));
    fflush(stdout);
    /* a live mirror of .bss: refreshed by the host at the end of every host call */
    static struct maps_ctl live;
    out("mirror", "hash", wasm_bpf_map_mirror(fd_of("m_hash"), &live, sizeof(live)));
    out("mirror", "wrong_size", wasm_bpf_map_mirror(bss, &live, 8));
    out("mirror", "bss", wasm_bpf_map_mirror(bss, &live, sizeof(live)));
    out("mirror", "initial_pid_ok", live.target_pid == ctl.target_pid);
    printf("ready=1\n");
    fflush(stdout);
    {   /* wait for the test's getppid() calls: until the host stops us */
        static char buf[8];
        int rb = fd_of("rb");
        while (wasm_bpf_buffer_poll(obj, rb, (int32_t)on_record, 0, buf, sizeof(buf), 50) >= 0)
            ;
    }
    out("mirror", "live_counter", (long long)live.counter);   /* no lookup: the mirror */
    out("bss", "read", bpf_map_lookup_elem(bss, &zero, &ctl));
    out("bss", "counter", (long long)ctl.counter);
    out("bss", "seen_inner", (long long)ctl.seen_inner);
    out("bss", "tail_hits", (long long)ctl.tail_hits);
    out("bss", "user_records", (long long)ctl.user_records);
    out("bss", "user_sum", (long long)ctl.user_sum);
    out("obj", "close", wasm_close_bpf_object(obj));
    return 0;
}
