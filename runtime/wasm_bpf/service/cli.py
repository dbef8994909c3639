"""`wasm-bpf serve`: the daemon (uvicorn serving app.py)."""
import ipaddress
import os
import secrets
import socket
from pathlib import Path
from typing import Any, Optional, Tuple

import click

from ..cli import _load_policy

DEFAULT_TOKEN_FILE = "/run/wasm-bpf/serve.token"
SHUTDOWN_WAIT = 2  # s


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def read_or_create_token(path: Path) -> str:
    """The token in `path`, or a new random one written there (0600, directory 0700)."""
    if path.exists():
        if path.stat().st_mode & 0o077:
            raise click.UsageError(f"token file {path} is readable by others: chmod 600 {path}")
        token = path.read_text().strip()
        if len(token) < 16:
            raise click.UsageError(f"token file {path} holds fewer than 16 characters: delete it for a new one")
        return token
    path.parent.mkdir(mode=0o700, parents=True, exist_ok=True)
    token = secrets.token_urlsafe(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "w") as f:
        f.write(token + "\n")
    return token


@click.command(short_help="Run instances behind an HTTP API, with Prometheus metrics.")
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=7878, show_default=True, type=click.IntRange(0, 65535), help="TCP port.")
@click.option("--token-file", default=DEFAULT_TOKEN_FILE, show_default=True, type=click.Path(dir_okay=False),
              help="The bearer token clients send; created (0600) with a random one when missing.")
@click.option("--allow-dir", "allow_dirs", multiple=True, type=click.Path(file_okay=False, exists=True),
              metavar="DIR", help="A directory clients may load modules from by path (repeatable).")
@click.option("--grant-dir", "grant_dirs", multiple=True, type=click.Path(file_okay=False, exists=True),
              metavar="DIR", help="A directory requests may give a guest as a WASI preopen, read and write "
                                  "(repeatable; none by default).")
@click.option("--policy", type=click.Path(dir_okay=False), metavar="FILE", callback=_load_policy,
              help="The policy of every Wasm instance (docs/policy.md); requests may then send none. "
                   "Without it a request may send its own, else the built-in default applies.")
@click.option("--allow-kernel-only", is_flag=True,
              help="Accept kernel-only programs (.bpf.o, packages): they run with no policy or limits.")
@click.option("--max-instances", default=32, show_default=True, type=click.IntRange(1), help="Instances kept.")
@click.option("--max-upload", default="16M", show_default=True, metavar="SIZE", help="Largest module accepted.")
@click.option("--log-lines", default=10000, show_default=True, type=click.IntRange(1),
              help="Log lines kept per instance.")
@click.option("--tls-cert", type=click.Path(dir_okay=False, exists=True), help="Serve HTTPS with this certificate.")
@click.option("--tls-key", type=click.Path(dir_okay=False, exists=True), help="The certificate's key.")
@click.option("--insecure-http", is_flag=True, help="Allow plain HTTP on a non-loopback address.")
def serve(host: str, port: int, token_file: str, allow_dirs: Tuple[str, ...], grant_dirs: Tuple[str, ...],
          policy: Any,
          allow_kernel_only: bool,
          max_instances: int, max_upload: str, log_lines: int, tls_cert: Optional[str], tls_key: Optional[str],
          insecure_http: bool) -> None:
    """Run a daemon that starts, updates and stops wasm-bpf instances on request.

    \b
    Every request but GET /healthz needs 'Authorization: Bearer TOKEN' (the token
    file). The API is described at /docs and /openapi.json; metrics at /metrics.
    SIGTERM or Ctrl-C stops every instance and releases its programs.
    Example: wasm-bpf serve --allow-dir /opt/bpf --port 7878
    """
    import uvicorn

    from ..limits import parse_size
    from .app import create_app
    from .manager import InstanceManager, ServiceConfig

    if not _is_loopback(host) and not tls_cert and not insecure_http:
        raise click.UsageError(f"--host {host} is reachable from other machines: give --tls-cert/--tls-key "
                               "(the token would cross the network in clear otherwise), or --insecure-http")
    if bool(tls_cert) != bool(tls_key):
        raise click.UsageError("--tls-cert and --tls-key go together")
    try:
        upload = parse_size(max_upload)
    except ValueError:
        raise click.BadParameter(f"{max_upload!r} is not a size (e.g. 16M)", param_hint="--max-upload") from None
    token = read_or_create_token(Path(token_file))
    manager = InstanceManager(ServiceConfig(allowed_dirs=allow_dirs, grant_dirs=grant_dirs, max_instances=max_instances,
                                            max_upload=upload, log_lines=log_lines,
                                            allow_kernel_only=allow_kernel_only, policy=policy))
    listener = _listen(host, port)
    bound = listener.getsockname()[1]
    app = create_app(manager, token)
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning", ssl_certfile=tls_cert, ssl_keyfile=tls_key,
                                           timeout_graceful_shutdown=SHUTDOWN_WAIT))
    # Followed logs (SSE) end when the server is asked to stop; then app.py's lifespan
    # stops every instance. uvicorn re-raises SIGTERM at the end: the exit status says it.
    app.state.closing = lambda: server.should_exit
    click.echo(f"wasm-bpf serve: listening on {'https' if tls_cert else 'http'}://{host}:{bound}; "
               f"token in {token_file}", err=True)
    server.run(sockets=[listener])


def _listen(host: str, port: int) -> socket.socket:
    """The listening socket, bound here so that a busy port is a one-line error and
    --port 0 prints the port it got."""
    try:
        family, kind, proto, _name, address = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0]
        listener = socket.socket(family, kind, proto)
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind(address)
        listener.listen(128)
    except OSError as exc:
        raise click.UsageError(f"cannot listen on {host}:{port}: {exc.strerror or exc} (--host, --port)") from None
    return listener
