;; Hostile: its export "memory" is a global, not a memory: as without memory, exits
;; with -(wasm_close_bpf_object(1)) = 21 (WASI EFAULT).
(module
  (import "wasm_bpf" "wasm_close_bpf_object" (func $close (param i64) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (global (export "memory") i32 (i32.const 0))
  (func (export "_start") (call $exit (i32.sub (i32.const 0) (call $close (i64.const 1))))))
