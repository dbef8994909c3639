/* Guest of tests/test_sdk_runtime.py: the skeleton lifecycle, the .rodata/.data/.bss
 * mirrors, autoload/autoattach, buffer polling and the map API, one key=value line
 * per fact. */
#include <time.h>
#include <unistd.h>
#include "globals.skel.h"

static int records, last_size;

static int on_event(void *ctx, void *data, size_t size) {
    (void)ctx;
    (void)data;
    records++;
    last_size = (int)size;
    return 0;
}

static long long now_ms(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return ts.tv_sec * 1000LL + ts.tv_nsec / 1000000;
}

/* Refresh .bss until the BPF program has reported `want` as seen_bss. */
static int wait_seen_bss(struct globals_bpf *skel, long want) {
    for (int i = 0; i < 500; i++) {
        int err = bpf_map__refresh(skel->maps.bss);
        if (err)
            return err;
        if (skel->bss->hits > 0 && skel->bss->seen_bss == want)
            return 0;
        usleep(10000);
    }
    return -ETIMEDOUT;
}

int main(void) {
    struct globals_bpf *skel = globals_bpf__open();
    struct bpf_buffer *buf;
    uint32_t key = 1, next = 0;
    uint64_t value = 5, out = 0;
    uint16_t short_key = 1;
    long long t0;
    int err;

    if (!skel) {
        printf("open=%d\n", -errno);
        return 1;
    }
    /* Before load: initial values from the ELF image. */
    printf("pre_ro_all_l=%lld\n", (long long)skel->rodata->ro_all.l);
    printf("pre_data_bits_c=%d\n", skel->data->data_all.bits.c);
    printf("pre_data_name=%s\n", skel->data->data_all.name);
    skel->rodata->ro_long = 42;
    skel->data->data_long = 78;
    skel->bss->bss_all.l = 99;
    printf("set_autoload=%d\n", bpf_program__set_autoload(skel->progs.rejected, false));
    bpf_program__set_autoattach(skel->progs.needs_target, false);

    err = globals_bpf__load(skel);
    printf("load=%d\n", err);
    if (err)
        return 1;
    printf("set_autoload_after_load=%d\n", bpf_program__set_autoload(skel->progs.on_getppid, false));
    printf("bss_all_l=%lld\n", (long long)skel->bss->bss_all.l);
    printf("data_long=%ld\n", (long)skel->data->data_long);
    printf("kver=%u\n", skel->kconfig->LINUX_KERNEL_VERSION);
    printf("bpf_syscall=%d\n", skel->kconfig->CONFIG_BPF_SYSCALL);

    buf = bpf_buffer__open(skel->maps.events, on_event, NULL);
    printf("buffer=%d\n", buf ? 0 : -errno);
    if (!buf)
        return 1;
    printf("record_size=%d\n", bpf_buffer__set_record_size(buf, 8));
    t0 = now_ms();
    printf("poll0=%d\n", bpf_buffer__poll(buf, 0)); /* not attached yet: nothing to wait for */
    printf("poll0_ms=%lld\n", now_ms() - t0);

    printf("attach=%d\n", globals_bpf__attach(skel));
    printf("wait=%d\n", wait_seen_bss(skel, 99));
    printf("seen_ro=%ld\n", (long)skel->bss->seen_ro);
    printf("seen_data=%ld\n", (long)skel->bss->seen_data);

    skel->bss->bss_all.l = 1234;
    printf("writeback=%d\n", bpf_map__writeback(skel->maps.bss));
    printf("wait_writeback=%d\n", wait_seen_bss(skel, 1234));
    printf("rodata_writeback=%d\n", bpf_map__writeback(skel->maps.rodata));

    printf("poll=%d\n", bpf_buffer__poll(buf, 1000));
    printf("records=%d\n", records);
    printf("last_size=%d\n", last_size);

    printf("update_short_key=%d\n", bpf_map__update_elem(skel->maps.table, &short_key,
                                                          sizeof(short_key), &value, sizeof(value), BPF_ANY));
    printf("update=%d\n", bpf_map__update_elem(skel->maps.table, &key, sizeof(key), &value,
                                                sizeof(value), BPF_ANY));
    printf("lookup=%d\n", bpf_map__lookup_elem(skel->maps.table, &key, sizeof(key), &out, sizeof(out), 0));
    printf("value=%llu\n", (unsigned long long)out);
    printf("next=%d\n", bpf_map__get_next_key(skel->maps.table, NULL, &next, sizeof(next)));
    printf("next_key=%u\n", next);
    printf("delete=%d\n", bpf_map__delete_elem(skel->maps.table, &key, sizeof(key), 0));
    printf("lookup_deleted=%d\n", bpf_map__lookup_elem(skel->maps.table, &key, sizeof(key), &out, sizeof(out), 0));
    printf("errno=%d\n", errno);

    bpf_buffer__free(buf);
    globals_bpf__destroy(skel);
    printf("done=1\n");
    return 0;
}
