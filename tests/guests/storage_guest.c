/* Cgroup storage guest (tests/test_cgroup_storage.py): storage CGROUP_PATH
 * Attaches cgstorage.bpf.o's cgroup_skb/egress program to CGROUP_PATH, which creates
 * the cgroup's storage; finds its key with get_next_key, writes both storages, waits
 * until stopped (the test sends packets from the cgroup meanwhile), reads them back.
 * Prints raw results as key=value lines. */
#include "libbpf-wasm.h"
#include "cgstorage_bpf_obj.h"

struct storage_key {
    uint64_t cgroup_inode_id;
    uint32_t attach_type;
    uint32_t pad;
};

static int on_record(void *ctx, void *data, int size) { return 0; }

int main(int argc, char **argv)
{
    struct storage_key key = {0}, next = {0}, wrong;
    uint64_t value = 1000, percpu[64] = {0}, sum = 0;
    int ncpus = libbpf_num_possible_cpus();

    if (argc < 2 || ncpus <= 0 || ncpus > 64)
        return 2;
    uint64_t obj = wasm_load_bpf_object(cgstorage_bpf_obj, sizeof(cgstorage_bpf_obj));
    if (!obj)
        return 3;
    int shared = wasm_bpf_map_fd_by_name(obj, "cg_shared"), mine = wasm_bpf_map_fd_by_name(obj, "cg_percpu");
    printf("before_attach=%d\n", bpf_map_get_next_key(shared, NULL, &key));
    printf("attach=%d\n", wasm_attach_bpf_program(obj, "count_egress", argv[1]));
    printf("first_key=%d\n", bpf_map_get_next_key(shared, NULL, &key));
    printf("inode=%llu\nattach_type=%u\n", (unsigned long long)key.cgroup_inode_id, key.attach_type);
    printf("next_key_end=%d\n", bpf_map_get_next_key(shared, &key, &next));
    printf("percpu_first_key=%d\n", bpf_map_get_next_key(mine, NULL, &next));
    printf("percpu_same_key=%d\n", !memcmp(&key, &next, sizeof(key)));
    printf("update=%d\n", bpf_map_update_elem(shared, &key, &value, BPF_ANY));
    for (int c = 0; c < ncpus; c++)
        percpu[c] = 100 * (uint64_t)c;
    printf("percpu_update=%d\n", bpf_map_update_elem(mine, &key, percpu, BPF_ANY));
    wrong = key;
    wrong.cgroup_inode_id++;
    printf("lookup_other_cgroup=%d\n", bpf_map_lookup_elem(shared, &wrong, &value));
    printf("delete=%d\n", bpf_map_delete_elem(shared, &key));
    printf("ready=1\n");
    fflush(stdout);
    {   /* wait for the test's packets: until the host stops us */
        static char buf[8];
        int rb = wasm_bpf_map_fd_by_name(obj, "rb");
        while (wasm_bpf_buffer_poll(obj, rb, (int32_t)on_record, 0, buf, sizeof(buf), 50) >= 0)
            ;
    }
    printf("lookup=%d\n", bpf_map_lookup_elem(shared, &key, &value));
    printf("value=%llu\n", (unsigned long long)value);
    memset(percpu, 0, sizeof(percpu));
    printf("percpu_lookup=%d\n", bpf_map_lookup_elem(mine, &key, percpu));
    for (int c = 0; c < ncpus; c++)
        sum += percpu[c];
    printf("percpu_sum=%llu\nncpus=%d\n", (unsigned long long)sum, ncpus);
    printf("close=%d\n", wasm_close_bpf_object(obj));
    return 0;
}
