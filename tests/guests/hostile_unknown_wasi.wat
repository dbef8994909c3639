;; Hostile: imports a WASI function that does not exist.
(module
  (import "wasi_snapshot_preview1" "no_such_function" (func (param i32) (result i32)))
  (memory (export "memory") 1)
  (func (export "_start")))
