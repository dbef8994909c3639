;; wasm_close_bpf_object declared (i32) -> i32 instead of (i64) -> i32.
(module
  (import "wasm_bpf" "wasm_close_bpf_object" (func $close (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start") (drop (call $close (i32.const 1)))))
