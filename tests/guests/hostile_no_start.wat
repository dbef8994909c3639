;; Hostile: no _start export (a WASI reactor, or no command at all).
(module
  (memory (export "memory") 1)
  (func (export "main")))
