;; Hostile: a memory but no __indirect_function_table: a poll's callback index names
;; nothing, exits with -(wasm_bpf_buffer_poll(...)) = 28 (WASI EINVAL).
(module
  (import "wasm_bpf" "wasm_bpf_buffer_poll"
    (func $poll (param i64 i32 i32 i32 i32 i32 i32) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start")
    (call $exit (i32.sub (i32.const 0)
      (call $poll (i64.const 1) (i32.const 3) (i32.const 1) (i32.const 0) (i32.const 64)
                  (i32.const 64) (i32.const 0))))))
