"""`wasm-bpf ctl`: the command line of a `wasm-bpf serve` daemon's API (docs/service.md),
over the daemon's unix socket by default, or TCP with its token (--url)."""
import base64
import json
import os
import ssl
import sys
from pathlib import Path
from typing import Any, Dict, Iterator, Optional, Tuple

import click
import httpx

from ..cli import _parse_env
from ..distribution.reference import is_url, looks_like_oci
from ..errors import WasmBpfError
from .cli import DEFAULT_SOCKET, DEFAULT_TOKEN_FILE

TIMEOUT = 90  # s: a start waits for the programs to attach (at most 60 s)


class CtlError(click.ClickException, WasmBpfError):
    """The daemon's refusal (or no daemon), printed as every wasm-bpf error is; click
    ends the command with it (status 1)."""

    def show(self, file: Any = None) -> None:
        click.echo(f"wasm-bpf: error: {self.message}", err=True)


class Api:
    def __init__(self, socket_path: str, url: Optional[str], token_file: str) -> None:
        if url is None:
            self.where, self.hint = f"unix:{socket_path}", "--socket, or --url for a TCP daemon"
            self.client = httpx.Client(transport=httpx.HTTPTransport(uds=socket_path), base_url="http://wasm-bpf",
                                       timeout=TIMEOUT)
            return
        try:
            token = Path(token_file).read_text().strip()
        except OSError as exc:
            raise click.UsageError(f"cannot read the token file {token_file}: {exc.strerror} "
                                   "(--token-file; the daemon's, readable by root)") from None
        self.where, self.hint = url, "--url"
        # The system's CAs (and SSL_CERT_FILE), as every other wasm-bpf download.
        self.client = httpx.Client(base_url=url.rstrip("/"), timeout=TIMEOUT, verify=ssl.create_default_context(),
                                   headers={"Authorization": f"Bearer {token}"})

    def _send(self, method: str, path: str, body: Optional[Dict[str, Any]] = None, stream: bool = False
              ) -> httpx.Response:
        try:
            answer = self.client.send(self.client.build_request(method, path, json=body), stream=stream)
        except httpx.TransportError as exc:
            raise CtlError(f"cannot reach the daemon at {self.where}: {exc or type(exc).__name__} "
                           f"(is `wasm-bpf serve` running? {self.hint})") from None
        if answer.is_error:
            answer.read()
            try:
                message = answer.json()["error"]
            except (ValueError, KeyError, TypeError):
                message = f"HTTP {answer.status_code}"
            raise CtlError(message)
        return answer

    def call(self, method: str, path: str, body: Optional[Dict[str, Any]] = None) -> Any:
        return self._send(method, path, body).json()

    def events(self, path: str) -> Iterator[Dict[str, Any]]:
        """The `data:` objects of a Server-Sent Events stream, until it ends."""
        answer = self._send("GET", path, stream=True)
        try:
            for line in answer.iter_lines():
                if line.startswith("event: end"):
                    return
                if line.startswith("data: "):
                    yield json.loads(line[6:])
        finally:
            answer.close()


def _body(module: str, upload: bool, args: Tuple[str, ...], name: str, env: Tuple[str, ...],
          dirs: Tuple[str, ...], policy: Optional[str]) -> Dict[str, Any]:
    body: Dict[str, Any] = {"args": list(args[1:] if args[:1] == ("--",) else args),
                            "env": _parse_env(env), "dirs": list(dirs), "name": name}
    if upload:
        try:
            body["module_base64"] = base64.b64encode(Path(module).read_bytes()).decode()
        except OSError as exc:
            raise click.UsageError(f"cannot read {module}: {exc.strerror}") from None
        body["filename"] = os.path.basename(module)
    elif is_url(module):
        body["url"] = module
    elif looks_like_oci(module) and not os.path.exists(module):  # as `wasm-bpf run REF` tells them apart
        body["ref"] = module
    else:
        body["path"] = os.path.abspath(module)  # the daemon's file system: the same machine
    if policy is not None:
        body["policy"] = Path(policy).read_text()
    return body


def _show(instance: Dict[str, Any]) -> None:
    attach = f"{instance['attach_ms']} ms" if instance.get("attach_ms") is not None else "-"
    click.echo(f"{instance['id']}  {instance['name']:20} {instance['kind']:11} {instance['state']:8} "
               f"links {instance['links']:<3} attach {attach}"
               + (f"  error: {instance['error']}" if instance.get("error") else ""))


@click.group(short_help="Drive a `wasm-bpf serve` daemon: start, list, logs, stop.")
@click.option("--socket", "socket_path", default=DEFAULT_SOCKET, show_default=True, envvar="WASM_BPF_SOCKET",
              help="The daemon's unix socket (WASM_BPF_SOCKET).")
@click.option("--url", envvar="WASM_BPF_URL",
              help="A daemon listening on TCP instead, e.g. http://127.0.0.1:7878 (WASM_BPF_URL).")
@click.option("--token-file", default=DEFAULT_TOKEN_FILE, show_default=True, envvar="WASM_BPF_TOKEN_FILE",
              type=click.Path(dir_okay=False), help="With --url: the daemon's token file (WASM_BPF_TOKEN_FILE).")
@click.pass_context
def ctl(ctx: click.Context, socket_path: str, url: Optional[str], token_file: str) -> None:
    """Drive the daemon of `wasm-bpf serve` through its HTTP API."""
    api = Api(socket_path, url, token_file)
    ctx.call_on_close(api.client.close)
    ctx.obj = api


def _module_options(command: Any) -> Any:
    for option in reversed([
        click.option("--upload", is_flag=True, help="Send the module's bytes (else the daemon reads the path, "
                                                    "or pulls an OCI reference or a URL)."),
        click.option("--name", default="", help="The instance's name."),
        click.option("--env", multiple=True, metavar="KEY=VALUE", help="Guest environment (repeatable)."),
        click.option("--dir", "dirs", multiple=True, metavar="HOST[::GUEST]", help="A preopen (repeatable)."),
        click.option("--policy", type=click.Path(dir_okay=False, exists=True), metavar="FILE",
                     help="A policy file sent with the request."),
        click.argument("module"), click.argument("args", nargs=-1, type=click.UNPROCESSED)]):
        command = option(command)
    return command


@ctl.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@_module_options
@click.pass_obj
def start(api: Api, module: str, args: Tuple[str, ...], upload: bool, name: str, env: Tuple[str, ...],
          dirs: Tuple[str, ...], policy: Optional[str]) -> None:
    """Start MODULE [-- ARGS]; prints the instance once its programs are attached."""
    _show(api.call("POST", "/instances", _body(module, upload, args, name, env, dirs, policy)))


@ctl.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False})
@click.argument("instance")
@_module_options
@click.pass_obj
def update(api: Api, instance: str, module: str, args: Tuple[str, ...], upload: bool, name: str,
           env: Tuple[str, ...], dirs: Tuple[str, ...], policy: Optional[str]) -> None:
    """Update INSTANCE in place to MODULE [-- ARGS] (attached before the old one stops)."""
    _show(api.call("PUT", f"/instances/{instance}", _body(module, upload, args, name, env, dirs, policy)))


@ctl.command("list")
@click.pass_obj
def list_instances(api: Api) -> None:
    """One line per instance."""
    for instance in api.call("GET", "/instances"):
        _show(instance)


@ctl.command()
@click.argument("instance")
@click.option("-f", "--follow", is_flag=True, help="Keep printing lines as they come, until the instance ends.")
@click.pass_obj
def logs(api: Api, instance: str, follow: bool) -> None:
    """The log of INSTANCE (stdout, stderr and the host's messages)."""
    lines = api.events(f"/instances/{instance}/logs/stream") if follow else \
        api.call("GET", f"/instances/{instance}/logs?limit=10000")["lines"]
    for line in lines:
        click.echo(line["text"], err=line["stream"] != "stdout")
        sys.stdout.flush()


@ctl.command()
@click.argument("instance")
@click.pass_obj
def stop(api: Api, instance: str) -> None:
    """Stop INSTANCE (it and its log stay until `rm`)."""
    _show(api.call("POST", f"/instances/{instance}/stop"))


@ctl.command()
@click.argument("instance")
@click.pass_obj
def rm(api: Api, instance: str) -> None:
    """Stop INSTANCE and forget it."""
    api.call("DELETE", f"/instances/{instance}")
