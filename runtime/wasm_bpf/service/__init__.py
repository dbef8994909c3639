"""`wasm-bpf serve`: a daemon that runs many instances (Wasm modules and kernel-only
programs) behind an HTTP API, with Prometheus metrics (docs/service.md).

  logs.py      the bounded log of one instance, read with a cursor or followed live
  manager.py   the instances: start, stop, restart, update in place, their threads
  metrics.py   /metrics: per-instance state, events, CPU; the programs' own maps
  app.py       the HTTP API (FastAPI), its auth and its JSON errors
  cli.py       the `serve` command (uvicorn)
  ctl.py       `wasm-bpf ctl`: the API's command line
"""
