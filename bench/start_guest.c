/* Cold start / hot load: a guest that loads and attaches the benchmark object and
 * exits (what the native `load` mode does). */
#include <stdio.h>
#include "bench.skel.h"

int main(void)
{
    struct bench_bpf *skel = bench_bpf__open_and_load();
    int err = !skel || bench_bpf__attach(skel);
    bench_bpf__destroy(skel);
    return err;
}
