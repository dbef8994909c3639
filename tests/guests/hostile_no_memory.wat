;; Hostile: no memory at all. Every import answers -EFAULT (the host has nowhere to
;; read or write): exits with -(num_possible_cpus()) = 21 (WASI EFAULT).
(module
  (import "wasm_bpf_ext" "wasm_bpf_num_possible_cpus" (func $cpus (result i32)))
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (func (export "_start") (call $exit (i32.sub (i32.const 0) (call $cpus)))))
