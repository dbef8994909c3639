/* wasm_bpf_map_operate imported as (i32, i32, i64, i64, i64, i64) -> i32, the shape
 * the upstream Go and Rust guest SDKs declare.  Prints key=value lines. */
#define WB_MAP_OPERATE_I64 1
#include <errno.h>
#include <stdio.h>
#include <string.h>

#include "abi_bpf_obj.h"
#include "wasm_bpf_imports.h"

#define OUT(k, v) printf("%s=%lld\n", (k), (long long)(v))
#define P(x) ((uint64_t)OFF(x))

int main(void)
{
    uint64_t h = wasm_load_bpf_object(abi_bpf_obj, (int)sizeof(abi_bpf_obj));
    int fd = wasm_bpf_map_fd_by_name(h, "hmap");
    uint32_t key = 3, next = 0, cur;
    uint64_t val = 0, got = 0;
    const uint64_t above4g = 1ull << 32;

    OUT("fd_ok", fd >= 0);
    OUT("fd_9999", wasm_bpf_map_operate64(9999, WB_LOOKUP, P(&key), P(&val), 0, 0));
    OUT("fd_0", wasm_bpf_map_operate64(0, WB_LOOKUP, P(&key), P(&val), 0, 0));
    OUT("cmd_77", wasm_bpf_map_operate64(fd, 77, P(&key), P(&val), 0, 0));
    OUT("lookup_missing", wasm_bpf_map_operate64(fd, WB_LOOKUP, P(&key), P(&val), 0, 0));
    OUT("key_null", wasm_bpf_map_operate64(fd, WB_LOOKUP, 0, P(&val), 0, 0));
    OUT("key_outside", wasm_bpf_map_operate64(fd, WB_LOOKUP, mem_size() - 2, P(&val), 0, 0));
    /* the same offset with a high bit set is not the same pointer */
    OUT("key_above_4g", wasm_bpf_map_operate64(fd, WB_LOOKUP, P(&key) + above4g, P(&val), 0, 0));
    OUT("value_above_4g", wasm_bpf_map_operate64(fd, WB_LOOKUP, P(&key), P(&val) | (1ull << 63), 0, 0));
    val = 0x77aa55;
    OUT("update", wasm_bpf_map_operate64(fd, WB_UPDATE, P(&key), P(&val), 0, 0));
    OUT("update_noexist", wasm_bpf_map_operate64(fd, WB_UPDATE, P(&key), P(&val), 0, 1));
    OUT("lookup", wasm_bpf_map_operate64(fd, WB_LOOKUP, P(&key), P(&got), 0, 0));
    OUT("roundtrip", got == 0x77aa55);
    cur = 8;
    val = 1;
    wasm_bpf_map_operate64(fd, WB_UPDATE, P(&cur), P(&val), 0, 0);
    {
        int r = wasm_bpf_map_operate64(fd, WB_NEXT_KEY, 0, 0, P(&next), 0);
        unsigned count = 0, mask = 0;
        OUT("next_first", r);
        while (r == 0 && count < 10) {
            mask |= 1u << (next & 31);
            count++;
            cur = next;
            r = wasm_bpf_map_operate64(fd, WB_NEXT_KEY, P(&cur), 0, P(&next), 0);
        }
        OUT("next_end", r);
        OUT("next_count", count);
        OUT("next_mask", mask);
    }
    OUT("delete", wasm_bpf_map_operate64(fd, WB_DELETE, P(&key), 0, 0, 0));
    OUT("lookup_deleted", wasm_bpf_map_operate64(fd, WB_LOOKUP, P(&key), P(&got), 0, 0));
    OUT("close", wasm_close_bpf_object(h));
    OUT("after_close", wasm_bpf_map_operate64(fd, WB_LOOKUP, P(&key), P(&got), 0, 0));
    OUT("EBADF", EBADF);
    return 0;
}
