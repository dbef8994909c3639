"""`wasm-bpf serve`: a daemon that runs many instances (Wasm modules and kernel-only
programs) behind an HTTP API, with Prometheus metrics (docs/service.md).

  logs.py      the bounded log of one instance, read with a cursor or followed live
  manager.py   the instances: start, stop, restart, update in place, their threads
  state.py     the state directory: the instances a restarted daemon starts again
  metrics.py   /metrics: per-instance state, events, CPU; the programs' own maps
  app.py       the HTTP API (FastAPI), its auth and its JSON errors
  cli.py       the `serve` command (uvicorn): its unix socket or TCP listener
  ctl.py       `wasm-bpf ctl`: the API's command line
"""
