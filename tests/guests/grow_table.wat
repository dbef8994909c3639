;; Grows a table 65536 elements at a time until the store refuses (exit 3) or the
;; table holds 64 Mi elements, 512 MiB in wasmtime (exit 4). tests/test_limits.py
(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (table $t 0 funcref)
  (func (export "_start")
    (loop $grow
      (if (i32.eq (table.grow $t (ref.null func) (i32.const 65536)) (i32.const -1))
        (then (call $exit (i32.const 3))))
      (br_if $grow (i32.lt_u (table.size $t) (i32.const 0x4000000))))
    (call $exit (i32.const 4))))
