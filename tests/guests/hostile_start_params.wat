;; Hostile: its _start takes a parameter the host cannot give.
(module
  (memory (export "memory") 1)
  (func (export "_start") (param i32)))
