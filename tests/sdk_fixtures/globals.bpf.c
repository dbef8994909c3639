/* Globals of every kind of type in .rodata, .data, .bss and .kconfig, and programs
 * that let the tests check what the kernel sees. */
#include <stddef.h>
#include <linux/types.h>
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
#include "layouts.h"

#define LT_PTR(v) ((void *)(v))
#define LT_FPTR(v) ((void (*)(int))(v))
#include "layouts_init.h"

typedef __kernel_pid_t pid_t;

const volatile struct lt_all ro_all = LT_ALL_INIT;
const volatile long ro_long = -5;
const volatile unsigned long ro_ulong = 7;
const volatile pid_t ro_pid = 0;
const volatile _Bool ro_flag = 1;
const volatile __u64 ro_u64 = 1;
const volatile char ro_name[16] = "rodata";
const volatile enum lt_small ro_small = LT_S_B;

struct lt_all data_all = LT_ALL_INIT;
long data_long = 77;
char *data_ptr = (char *)0x1234;

struct lt_all bss_all;
struct lt_bits bss_bits;
union lt_num bss_num;
enum lt_color bss_color;
lt_pair_t bss_pairs[3];
__u64 bss_u64;
long seen_ro, seen_data, seen_bss, hits;
static long hidden_counter;

extern unsigned long CONFIG_HZ __kconfig __weak;
extern unsigned int LINUX_KERNEL_VERSION __kconfig;
extern _Bool CONFIG_BPF_SYSCALL __kconfig __weak;
extern _Bool CONFIG_BPF_JIT __kconfig __weak;

struct event {
    __u64 seq;
    __u64 magic;
};

struct {
    __uint(type, BPF_MAP_TYPE_RINGBUF);
    __uint(max_entries, 64 * 1024);
} events SEC(".maps");

struct {
    __uint(type, BPF_MAP_TYPE_HASH);
    __uint(max_entries, 8);
    __type(key, __u32);
    __type(value, __u64);
} table SEC(".maps");

SEC("tp/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
    struct event *e;

    seen_ro = ro_long;
    seen_data = data_long;
    seen_bss = bss_all.l;
    hits++;
    hidden_counter += CONFIG_HZ + LINUX_KERNEL_VERSION + CONFIG_BPF_SYSCALL + CONFIG_BPF_JIT;
    e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
    if (e) {
        e->seq = hits;
        e->magic = 0x1122334455667788ULL;
        bpf_ringbuf_submit(e, 0);
    }
    return 0;
}

/* The verifier refuses this one (context read out of bounds): loading works only
 * with its autoload turned off. */
SEC("tp/syscalls/sys_enter_getppid")
int rejected(void *ctx)
{
    return *(volatile long *)((char *)ctx + 4096);
}

/* Auto-attach cannot attach XDP without an interface: attach works only with its
 * autoattach turned off. */
SEC("xdp")
int needs_target(struct xdp_md *ctx)
{
    return XDP_PASS;
}

char LICENSE[] SEC("license") = "GPL";
