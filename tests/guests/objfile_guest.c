/* Loads a BPF object from a file (tests/test_limits.py builds or crafts it):
 *   objfile PATH ACTION [MAP ...]
 * prints loaded=0|1, then fd_MAP=1 or the negative errno of wasm_bpf_map_fd_by_name
 * for each MAP, and ends as ACTION says, the object still open:
 *   return  return 0          exit  exit(5)          trap  trap in _start
 *   wait    poll map "rb" until a stop makes the poll fail, then return 0
 *   spin    poll map "rb" forever, ignoring -EINTR (only an interrupt ends it) */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "wasm_bpf_imports.h"

static char obj[1 << 20];

static int on_record(void *ctx, void *data, int size) { return 0; }

int main(int argc, char **argv)
{
    static char buf[16];
    FILE *f = argc > 2 ? fopen(argv[1], "rb") : NULL;
    size_t size = f ? fread(obj, 1, sizeof(obj), f) : 0;
    uint64_t h;

    if (!f) {
        printf("usage: objfile PATH ACTION [MAP ...] (PATH readable)\n");
        return 2;
    }
    fclose(f);
    setvbuf(stdout, NULL, _IOLBF, 0);
    h = wasm_load_bpf_object(obj, (int)size);
    printf("loaded=%d\n", h != 0);
    for (int i = 3; i < argc && h; i++) {
        int fd = wasm_bpf_map_fd_by_name(h, argv[i]);
        printf("fd_%s=%d\n", argv[i], fd < 0 ? fd : 1);
    }
    if (!strcmp(argv[2], "exit"))
        exit(5);
    if (!strcmp(argv[2], "trap"))
        __builtin_trap();
    if ((!strcmp(argv[2], "wait") || !strcmp(argv[2], "spin")) && h) {
        int rb = wasm_bpf_map_fd_by_name(h, "rb"), spin = !strcmp(argv[2], "spin");
        printf("ready=1\n");
        while (wasm_bpf_buffer_poll(h, rb, (int32_t)on_record, 0, buf, sizeof(buf), 50) >= 0 || spin)
            ;
    }
    return 0;
}
