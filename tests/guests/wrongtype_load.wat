;; wasm_load_bpf_object declared (i32, i32) -> i32 instead of (i32, i32) -> i64.
(module
  (import "wasm_bpf" "wasm_load_bpf_object" (func $load (param i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start") (drop (call $load (i32.const 0) (i32.const 0)))))
