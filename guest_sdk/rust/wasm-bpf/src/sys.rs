//! The raw host imports, exactly as host_abi/ABI.md types them. Pointers are guest
//! memory offsets (i32 on wasm32), handles i64. Every call returns a negative
//! (WASI-numbered) errno on failure; the safe layer turns that into `io::Error`.
use std::os::raw::{c_char, c_void};

#[link(wasm_import_module = "wasm_bpf")]
extern "C" {
    /// Opens and loads a BPF ELF object; 0 when the host refuses it (reason on its stderr).
    pub fn wasm_load_bpf_object(obj_buf: *const u8, obj_buf_sz: i32) -> u64;
    /// Attaches program `name`, with `target` (NULL or "": auto-attach by SEC()).
    pub fn wasm_attach_bpf_program(obj: u64, name: *const c_char, target: *const c_char) -> i32;
    /// The fd of map `name` (also `.rodata`, `.bss`... by section suffix).
    pub fn wasm_bpf_map_fd_by_name(obj: u64, name: *const c_char) -> i32;
    /// Calls table entry `sample_func(ctx, data, size)` for every record, inside the call.
    pub fn wasm_bpf_buffer_poll(obj: u64, fd: i32, sample_func: i32, ctx: u32, data: *mut u8,
                                max_size: i32, timeout_ms: i32) -> i32;
    /// A `BPF_MAP_*_ELEM` command (1 lookup, 2 update, 3 delete, 4 next key, 21 lookup and delete).
    pub fn wasm_bpf_map_operate(fd: i32, cmd: i32, key: *const c_void, value: *mut c_void,
                                next_key: *mut c_void, flags: u64) -> i32;
    /// Detaches every link of the object and closes it.
    pub fn wasm_close_bpf_object(obj: u64) -> i32;
}

#[link(wasm_import_module = "wasm_bpf_ext")]
extern "C" {
    /// `wasm_load_bpf_object` without the NUL-separated programs of `no_load`.
    pub fn wasm_load_bpf_object_ex(obj_buf: *const u8, obj_buf_sz: i32, no_load: *const u8,
                                   no_load_sz: i32) -> u64;
    /// One call of `batch_func(ctx, data, used, count)` per batch of whole records.
    pub fn wasm_bpf_buffer_poll_batch(obj: u64, fd: i32, batch_func: i32, ctx: u32, data: *mut u8,
                                      max_size: i32, timeout_ms: i32) -> i32;
    /// Attaches like `wasm_attach_bpf_program`; returns a link handle (> 0) or -errno.
    pub fn wasm_bpf_attach_link(obj: u64, name: *const c_char, target: *const c_char) -> i64;
    /// Detaches one link.
    pub fn wasm_bpf_link_destroy(link: i64) -> i32;
    /// The next bytes of iterator program `prog`; 0 at the end of an iteration.
    pub fn wasm_bpf_iter_read(obj: u64, prog: *const c_char, buf: *mut u8, len: i32) -> i32;
    /// The fd of program `name`, for prog-array and devmap values.
    pub fn wasm_bpf_prog_fd_by_name(obj: u64, name: *const c_char) -> i32;
    /// Slots in a per-CPU map value.
    pub fn wasm_bpf_num_possible_cpus() -> i32;
    /// `BPF_MAP_*_BATCH` (24 lookup, 25 lookup and delete, 26 update, 27 delete).
    pub fn wasm_bpf_map_batch(fd: i32, cmd: i32, in_batch: *const c_void, out_batch: *mut c_void,
                              keys: *mut c_void, values: *mut c_void, count: *mut u32,
                              elem_flags: u64, flags: u64) -> i32;
    /// Publishes one record to a `BPF_MAP_TYPE_USER_RINGBUF`.
    pub fn wasm_bpf_user_ringbuf_submit(fd: i32, data: *const u8, size: i32) -> i32;
}
