;; wasm_bpf_buffer_poll declared with the callback-wrapper shape (6 params) under
;; module wasm_bpf, where the host expects 7.
(module
  (import "wasm_bpf" "wasm_bpf_buffer_poll"
    (func $poll (param i64 i32 i32 i32 i32 i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")))
