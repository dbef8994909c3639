;; Hostile: a data segment past the end of its memory: instantiation traps.
(module
  (memory (export "memory") 1)
  (data (i32.const 65535) "ab")
  (func (export "_start")))
