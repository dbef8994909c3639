"""`wasm-bpf serve`: the daemon (uvicorn serving app.py).

It listens on one socket: a unix socket by default, whose clients are authenticated
by the kernel (the socket's mode and SO_PEERCRED: root or the daemon's own uid), or
TCP when --host/--port is given, where every request but /healthz carries the token."""
import ipaddress
import os
import secrets
import socket
import stat
import struct
from pathlib import Path
from typing import Any, List, Optional, Tuple

import click

from ..cli import _load_policy
from ..errors import WasmBpfError
from .state import private_dir

DEFAULT_SOCKET = "/run/wasm-bpf/serve.sock"
DEFAULT_STATE_DIR = "/var/lib/wasm-bpf"
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
@click.option("--socket", "socket_path", default=DEFAULT_SOCKET, show_default=True, type=click.Path(dir_okay=False),
              help="The unix socket to listen on (the default): mode 0600, root and the daemon's uid only, no token.")
@click.option("--host", help="Listen on TCP at this address instead (127.0.0.1 with --port alone); requests then "
                             "need the token.")
@click.option("--port", type=click.IntRange(0, 65535), help="Listen on this TCP port instead (7878 with --host alone).")
@click.option("--token-file", default=DEFAULT_TOKEN_FILE, show_default=True, type=click.Path(dir_okay=False),
              help="TCP: the bearer token clients send; created (0600) with a random one when missing.")
@click.option("--state-dir", default=DEFAULT_STATE_DIR, show_default=True, type=click.Path(file_okay=False),
              help="Where the instances are kept (0700): a restarted daemon starts them again.")
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
@click.option("--plain-http", is_flag=True, help="Modules by OCI reference come from registries without TLS.")
def serve(socket_path: str, host: Optional[str], port: Optional[int], token_file: str, state_dir: str,
          allow_dirs: Tuple[str, ...],
          grant_dirs: Tuple[str, ...], policy: Any, allow_kernel_only: bool, max_instances: int, max_upload: str,
          log_lines: int, tls_cert: Optional[str], tls_key: Optional[str], insecure_http: bool,
          plain_http: bool) -> None:
    """Run a daemon that starts, updates and stops wasm-bpf instances on request.

    \b
    It listens on a unix socket (root only) unless --host/--port asks for TCP,
    where every request but GET /healthz needs 'Authorization: Bearer TOKEN' (the
    token file). The API is described at /docs and /openapi.json; metrics at
    /metrics. SIGTERM or Ctrl-C stops every instance and releases its programs.
    Example: wasm-bpf serve --allow-dir /opt/bpf; wasm-bpf ctl list
    """
    import uvicorn

    from ..limits import parse_size
    from .app import create_app
    from .manager import InstanceManager, ServiceConfig

    tcp = host is not None or port is not None
    host = host or "127.0.0.1"
    if tcp and not _is_loopback(host) and not tls_cert and not insecure_http:
        raise click.UsageError(f"--host {host} is reachable from other machines: give --tls-cert/--tls-key "
                               "(the token would cross the network in clear otherwise), or --insecure-http")
    if bool(tls_cert) != bool(tls_key):
        raise click.UsageError("--tls-cert and --tls-key go together")
    if tls_cert and not tcp:
        raise click.UsageError("--tls-cert is for TCP (--host/--port): the unix socket is local")
    try:
        upload = parse_size(max_upload)
    except ValueError:
        raise click.BadParameter(f"{max_upload!r} is not a size (e.g. 16M)", param_hint="--max-upload") from None
    token = read_or_create_token(Path(token_file)) if tcp else None
    try:
        manager = InstanceManager(ServiceConfig(allowed_dirs=allow_dirs, grant_dirs=grant_dirs,
                                                max_instances=max_instances, max_upload=upload, log_lines=log_lines,
                                                allow_kernel_only=allow_kernel_only, policy=policy,
                                                state_dir=state_dir, plain_http=plain_http))
    except WasmBpfError as exc:
        raise click.UsageError(str(exc)) from None
    listener = _listen(host, port if port is not None else 7878) if tcp else _listen_unix(Path(socket_path))
    inode = None if tcp else os.stat(socket_path).st_ino
    app = create_app(manager, token)

    class Server(uvicorn.Server):
        async def shutdown(self, sockets: Optional[List[socket.socket]] = None) -> None:
            await super().shutdown(sockets)
            if inode is not None:  # here: after this, uvicorn re-raises SIGTERM and the process ends
                _remove_socket(Path(socket_path), inode)

    server = Server(uvicorn.Config(app, log_level="warning", ssl_certfile=tls_cert, ssl_keyfile=tls_key,
                                   timeout_graceful_shutdown=SHUTDOWN_WAIT,
                                   http=_peer_checked() if not tcp else "auto"))
    # Followed logs (SSE) end when the server is asked to stop; then app.py's lifespan
    # stops every instance. uvicorn re-raises SIGTERM at the end: the exit status says it.
    app.state.closing = lambda: server.should_exit
    if tcp:
        click.echo(f"wasm-bpf serve: listening on {'https' if tls_cert else 'http'}://{host}:"
                   f"{listener.getsockname()[1]}; token in {token_file}", err=True)
    else:
        click.echo(f"wasm-bpf serve: listening on unix:{socket_path} (root and uid {os.geteuid()})", err=True)
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


def _listen_unix(path: Path) -> socket.socket:
    """The unix socket, mode 0600 in a directory only its owner may write: a live
    daemon's socket is refused, a stale one (nobody answers) replaced."""
    try:
        private_dir(path.parent)  # else another user could replace the socket
    except WasmBpfError as exc:
        raise click.UsageError(str(exc)) from None
    try:
        mode = path.lstat().st_mode
    except FileNotFoundError:
        mode = None
    if mode is not None:
        if not stat.S_ISSOCK(mode):
            raise click.UsageError(f"{path} exists and is not a socket; remove it or give --socket another path")
        with socket.socket(socket.AF_UNIX, socket.SOCK_STREAM) as probe:
            try:
                probe.connect(str(path))
                raise click.UsageError(f"another daemon answers on {path}; stop it, or give --socket another path")
            except ConnectionRefusedError:  # its daemon is gone
                path.unlink()
            except OSError as exc:
                raise click.UsageError(f"cannot check the socket {path}: {exc.strerror or exc}") from None
    listener = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
    old_umask = os.umask(0o177)  # created 0600: no moment when others may connect
    try:
        listener.bind(str(path))
    except OSError as exc:
        listener.close()
        raise click.UsageError(f"cannot listen on {path}: {exc.strerror or exc} (--socket)") from None
    finally:
        os.umask(old_umask)
    listener.listen(128)
    return listener


def _remove_socket(path: Path, inode: int) -> None:
    """The socket file, if it is still the one bound (a later daemon may have replaced it)."""
    try:
        if path.lstat().st_ino == inode:
            path.unlink()
    except OSError:
        pass


def peer_refusal(sock: Any) -> Optional[str]:
    """Why the process at the other end of a unix socket may not use the daemon, or
    None: root and the daemon's own uid may (SO_PEERCRED: its uid at connect time)."""
    _pid, uid, _gid = struct.unpack("3i", sock.getsockopt(socket.SOL_SOCKET, socket.SO_PEERCRED,
                                                          struct.calcsize("3i")))
    if uid in (0, os.geteuid()):
        return None
    return (f"uid {uid} may not use this daemon: its unix socket serves root and uid {os.geteuid()} only "
            "(run the client as root)")


def _peer_checked() -> type:
    """uvicorn's HTTP protocol (on the unix socket), answering 403 to a peer that
    peer_refusal() refuses: the socket's mode already keeps others out, unless an
    operator loosens it."""
    import json

    from uvicorn.protocols.http.auto import AutoHTTPProtocol

    class PeerChecked(AutoHTTPProtocol):  # type: ignore[misc, valid-type]
        refusal: Optional[str] = None

        def connection_made(self, transport: Any) -> None:
            super().connection_made(transport)
            self.refusal = peer_refusal(transport.get_extra_info("socket"))

        def data_received(self, data: bytes) -> None:
            if self.refusal is None:
                return super().data_received(data)
            # Answered once the request has come (a client that is still sending would
            # see its connection reset instead), and never handed to the app.
            body = json.dumps({"error": self.refusal}).encode()
            self.transport.write(b"HTTP/1.1 403 Forbidden\r\ncontent-type: application/json\r\n"
                                 b"content-length: %d\r\nconnection: close\r\n\r\n%s" % (len(body), body))
            self.transport.close()

    return PeerChecked
