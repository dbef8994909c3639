;; Hostile: calls the host from its start function, while it is being instantiated,
;; before _start: the call is answered as any other (-EINVAL for handle 1: exit 28).
(module
  (import "wasm_bpf" "wasm_close_bpf_object" (func $close (param i64) (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func $early (call $exit (i32.sub (i32.const 0) (call $close (i64.const 1)))))
  (start $early)
  (func (export "_start") unreachable))
