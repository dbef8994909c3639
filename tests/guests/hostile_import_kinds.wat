;; Hostile: imports host functions as a global and as a memory.
(module
  (import "wasm_bpf" "wasm_close_bpf_object" (global i32))
  (import "wasm_bpf_ext" "wasm_bpf_num_possible_cpus" (memory 1))
  (func (export "_start")))
