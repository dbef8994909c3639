"""The HTTP API of `wasm-bpf serve` (FastAPI; the OpenAPI document is at /openapi.json).

Over TCP every request but GET /healthz carries `Authorization: Bearer TOKEN`; on the
unix socket (token None) the kernel has checked the client already (cli.py). Request bodies
are capped (the module, base64-encoded, plus the rest) before they are parsed, and
every refusal is a JSON object {"error": "..."} with one line naming cause and fix."""
import asyncio
import base64
import binascii
import hmac
import json
import sys
from contextlib import asynccontextmanager
from typing import Any, AsyncIterator, Awaitable, Callable, Dict, List, Optional, Union

from fastapi import FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response, StreamingResponse
from pydantic import BaseModel, ConfigDict, Field

from .logs import LogLine
from .manager import InstanceManager, ManagedInstance, ServiceError, Spec, warm_up
from .metrics import enable_bpf_stats, metrics_registry, metrics_text

OPEN_PATHS = ("/healthz",)
BODY_OVERHEAD = 64 * 1024  # bytes of a request besides its base64 module
SSE_IDLE = 0.05  # s between looks at a followed log with nothing new
NAME_MAX = 128  # characters of an instance's or an upload's name (a metrics label)


class StartRequest(BaseModel):
    """A module to run: `path` (inside the daemon's --allow-dir directories),
    `module_base64` (an upload), `ref` (an OCI reference) or `url`, with its arguments,
    environment, preopened directories ("HOST" or "HOST::GUEST"), policy (TOML text)
    and limits."""

    model_config = ConfigDict(extra="forbid")
    path: Optional[str] = None
    module_base64: Optional[str] = None
    ref: Optional[str] = Field(None, max_length=1024, description="REGISTRY/REPOSITORY[:TAG][@DIGEST]")
    url: Optional[str] = Field(None, max_length=4096)
    filename: str = Field("module", max_length=NAME_MAX, description="The uploaded module's name (logs, metrics)")
    name: str = Field("", max_length=NAME_MAX)
    args: List[str] = []
    env: Dict[str, str] = {}
    dirs: List[str] = []
    policy: Optional[str] = None
    limits: Dict[str, Union[int, float]] = {}
    wait: float = Field(5.0, ge=0, le=60, description="Seconds to wait for the programs to attach")


def _error(status: int, message: str) -> JSONResponse:
    return JSONResponse({"error": message}, status_code=status)


def create_app(manager: InstanceManager, token: Optional[str]) -> FastAPI:
    @asynccontextmanager
    async def lifespan(_app: FastAPI) -> AsyncIterator[None]:
        await asyncio.to_thread(warm_up)
        restored, problems = await asyncio.to_thread(manager.restore)  # before the first request
        for problem in problems:
            print(f"wasm-bpf serve: {problem}", file=sys.stderr, flush=True)
        if restored:
            print(f"wasm-bpf serve: restored {restored} instance(s)", file=sys.stderr, flush=True)
        yield
        stopped = await asyncio.to_thread(manager.shutdown)  # SIGTERM: uvicorn ends here; nothing stays attached
        print(f"wasm-bpf serve: stopped {stopped} instance(s); exiting", file=sys.stderr, flush=True)

    app = FastAPI(title="wasm-bpf serve", version="1", lifespan=lifespan)
    app.state.closing = lambda: False  # the server sets its own: followed logs end when it stops
    body_limit = manager.config.max_upload * 4 // 3 + BODY_OVERHEAD
    app.state.bpf_stats = enable_bpf_stats()  # kept open while the daemon runs
    if app.state.bpf_stats is None:
        print("wasm-bpf serve: the kernel refused to enable BPF run-time stats (BPF_ENABLE_STATS needs "
              "CAP_SYS_ADMIN); wasm_bpf_instance_bpf_runs stays 0", file=sys.stderr, flush=True)
    registry = metrics_registry(manager, app.state.bpf_stats is not None)

    @app.middleware("http")
    async def guard(request: Request, call_next: Callable[[Request], Awaitable[Response]]) -> Response:
        if token is not None and request.url.path not in OPEN_PATHS:
            given = request.headers.get("authorization", "")
            if not hmac.compare_digest(given.encode(), f"Bearer {token}".encode()):
                return _error(401, "missing or wrong token: send 'Authorization: Bearer TOKEN' (the daemon's "
                                   "--token-file)")
        length = request.headers.get("content-length")
        if length is not None and (not length.isdigit() or int(length) > body_limit):
            return _error(413, f"request body over {body_limit} bytes: the module is over the daemon's "
                               f"{manager.config.max_upload} bytes (--max-upload)")
        if length not in (None, "0") and request.headers.get("content-type", "").split(";")[0] != "application/json":
            return _error(415, "send the body as JSON with 'Content-Type: application/json' "
                               "(curl: -H 'content-type: application/json')")
        if length is None and "chunked" in request.headers.get("transfer-encoding", "").lower():
            return _error(411, "send a Content-Length (chunked request bodies are refused: they have no size "
                               "to check before reading)")
        return await call_next(request)

    @app.exception_handler(ServiceError)
    async def service_error(_request: Request, exc: ServiceError) -> JSONResponse:
        return _error(exc.status, str(exc))

    @app.exception_handler(RequestValidationError)
    async def bad_request(_request: Request, exc: RequestValidationError) -> JSONResponse:
        problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'][1:]) or 'body'}: {e['msg']}"
                             for e in exc.errors())
        return _error(422, f"bad request: {problems}")

    @app.exception_handler(Exception)
    async def internal(_request: Request, exc: Exception) -> JSONResponse:
        return _error(500, f"internal error: {type(exc).__name__}: {' '.join(str(exc).split())}")

    def spec_of(req: StartRequest) -> Spec:
        if [req.path, req.module_base64, req.ref, req.url].count(None) != 3:
            raise ServiceError(400, "give exactly one of path (a file in an --allow-dir directory), "
                                    "module_base64 (an upload), ref (an OCI reference) and url")
        if req.path is not None:
            source = manager.read_path(req.path)
        elif req.ref is not None or req.url is not None:
            source = manager.read_remote(req.ref, req.url, req.policy)
        else:
            assert req.module_base64 is not None
            if len(req.module_base64) > body_limit:
                raise ServiceError(413, f"module over the daemon's {manager.config.max_upload} bytes (--max-upload)")
            try:
                data = base64.b64decode(req.module_base64, validate=True)
            except (binascii.Error, ValueError):
                raise ServiceError(400, "module_base64 is not base64 (encode the file: base64 -w0 FILE)") from None
            source = manager.check_source(req.filename, data)
        dirs = []
        for item in req.dirs:
            host, sep, guest = item.partition("::")
            dirs.append((host, guest if sep else host))
        return Spec(source, list(req.args), dict(req.env), dirs, req.policy, dict(req.limits))

    @app.get("/healthz")
    def healthz() -> Dict[str, Any]:
        return {"status": "ok", "instances": len(manager.list())}

    @app.post("/instances", status_code=201)
    def start(req: StartRequest) -> Dict[str, Any]:
        """Start an instance; answers once its programs are attached (or `wait` s)."""
        return manager.start(req.name, spec_of(req), req.wait).describe()

    @app.get("/instances")
    def list_instances() -> List[Dict[str, Any]]:
        return [m.describe() for m in manager.list()]

    @app.get("/instances/{instance_id}")
    def inspect(instance_id: str) -> Dict[str, Any]:
        return manager.get(instance_id).describe()

    @app.put("/instances/{instance_id}")
    def update(instance_id: str, req: StartRequest) -> Dict[str, Any]:
        """Update in place: the new version is attached before the old one stops."""
        managed = manager.get(instance_id)
        manager.update(managed, spec_of(req), req.wait)
        return managed.describe()

    @app.post("/instances/{instance_id}/stop")
    def stop(instance_id: str) -> Dict[str, Any]:
        managed = manager.get(instance_id)
        manager.stop(managed)
        return managed.describe()

    @app.post("/instances/{instance_id}/restart")
    def restart(instance_id: str, wait: float = Query(5.0, ge=0, le=60)) -> Dict[str, Any]:
        managed = manager.get(instance_id)
        manager.restart(managed, wait)
        return managed.describe()

    @app.delete("/instances/{instance_id}")
    def delete(instance_id: str) -> Dict[str, Any]:
        """Stop the instance and forget it (its log too)."""
        manager.delete(manager.get(instance_id))
        return {"deleted": instance_id}

    @app.get("/instances/{instance_id}/stats")
    def stats(instance_id: str) -> Dict[str, Any]:
        return manager.get(instance_id).stats()

    @app.get("/instances/{instance_id}/logs")
    def logs(instance_id: str, cursor: int = Query(0, ge=0),
             limit: int = Query(1000, ge=1, le=10000)) -> Dict[str, Any]:
        """Lines from `cursor` on; `next` is the cursor of the following read."""
        lines, next_cursor = manager.get(instance_id).log.read(cursor, limit)
        return {"lines": [_line(line) for line in lines], "next": next_cursor}

    @app.get("/instances/{instance_id}/logs/stream")
    async def stream(instance_id: str, request: Request, cursor: int = Query(0, ge=0)) -> StreamingResponse:
        """Server-Sent Events: one `data:` JSON line per log line, from `cursor` (or the
        Last-Event-ID a reconnecting client sends) until the instance ends."""
        managed = manager.get(instance_id)
        resume = request.headers.get("last-event-id", "")
        start_at = int(resume) + 1 if resume.isdigit() else cursor
        return StreamingResponse(_follow(managed, start_at, request), media_type="text/event-stream")

    @app.get("/metrics")
    def metrics() -> Response:
        body, content_type = metrics_text(registry)
        return Response(body, media_type=content_type)

    return app


def _line(line: LogLine) -> Dict[str, Any]:
    return {"seq": line.seq, "time": line.time, "stream": line.stream, "text": line.text}


async def _follow(managed: ManagedInstance, cursor: int, request: Request) -> AsyncIterator[str]:
    while not await request.is_disconnected() and not request.app.state.closing():
        lines, cursor = managed.log.read(cursor)
        for line in lines:
            yield f"id: {line.seq}\ndata: {json.dumps(_line(line))}\n\n"
        if not lines:
            run = managed.run
            if run is not None and run.done.is_set() and managed.log.read(cursor)[0] == []:
                yield "event: end\ndata: {}\n\n"
                return
            await asyncio.sleep(SSE_IDLE)
