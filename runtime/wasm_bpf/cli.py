"""The wasm-bpf command line: ``wasm-bpf run MODULE [-- ARGS]`` and the SDK tools."""
from __future__ import annotations

import importlib
import os
import sys
from typing import Any, List, NoReturn, Optional, Tuple

import click

from . import __version__


def _parse_env(values: Tuple[str, ...]) -> dict:
    env = {}
    for item in values:
        key, sep, value = item.partition("=")
        if not sep or not key:
            raise click.BadParameter(f"{item!r} is not KEY=VALUE", param_hint="--env")
        env[key] = value
    return env


def _parse_dirs(values: Tuple[str, ...]) -> List[Tuple[str, str]]:
    dirs = []
    for item in values:
        host, sep, guest = item.partition("::")
        dirs.append((host, guest if sep else host))
    return dirs


def _load_policy(ctx: click.Context, param: click.Parameter, path: Optional[str]) -> Any:
    if path is None:
        return None
    from .policy import Policy, PolicyError
    try:
        return Policy.load(path)
    except PolicyError as exc:
        raise click.BadParameter(str(exc), param_hint="--policy") from None


class Limit(click.ParamType):
    """A limit: a size ("512M", "2G") or a number, or "unlimited"."""

    def __init__(self, kind: str) -> None:
        assert kind in ("size", "seconds", "count")
        self.kind = self.name = kind

    def convert(self, value: Any, param: Optional[click.Parameter], ctx: Optional[click.Context]) -> Any:
        if value is None or not isinstance(value, str):
            return value
        if value.strip().lower() in ("unlimited", "none"):
            return None
        try:
            if self.kind == "size":
                from .limits import parse_size
                number: float = parse_size(value)
            else:
                number = float(value) if self.kind == "seconds" else int(value)
        except ValueError:
            self.fail(f"{value!r} is not a {self.name} or 'unlimited'", param, ctx)
        if number <= 0:
            self.fail(f"{value!r} must be above 0 (or 'unlimited')", param, ctx)
        return number


def _limit_defaults() -> dict:
    """Limits()'s defaults as the flags take them ("1G", "5", "unlimited")."""
    from dataclasses import asdict

    from .limits import GiB, Limits

    def text(value: Optional[float]) -> str:
        if value is None:
            return "unlimited"
        return f"{value // GiB}G" if value >= GiB and value % GiB == 0 else f"{value:g}"

    return {name: text(value) for name, value in asdict(Limits()).items()}


class LazyGroup(click.Group):
    """A group whose commands from other modules are imported only when invoked, so
    `wasm-bpf run` does not pay for the SDK tools at start-up (and vice versa)."""

    lazy_commands = {"gen": "wasm_bpf_sdk.cli:gen", "build": "wasm_bpf_sdk.cli:build",
                     "probe": "wasm_bpf.probe:probe_command", "inspect": "wasm_bpf.inspect:inspect_command"}

    lazy_commands["package"] = "wasm_bpf.kernel_only.cli:package"  # kernel-only programs
    lazy_commands.update({name: f"wasm_bpf.distribution.cli:{name}" for name in ("push", "pull", "images", "sign")})
    lazy_commands["serve"] = "wasm_bpf.service.cli:serve"  # the daemon (docs/service.md)
    lazy_commands["ctl"] = "wasm_bpf.service.ctl:ctl"  # its API's command line

    def list_commands(self, ctx: click.Context) -> List[str]:
        return sorted([*super().list_commands(ctx), *self.lazy_commands])

    def get_command(self, ctx: click.Context, name: str) -> Optional[click.Command]:
        if name in self.lazy_commands:
            module, _, attr = self.lazy_commands[name].partition(":")
            return getattr(importlib.import_module(module), attr)
        return super().get_command(ctx, name)


_LIMITS = _limit_defaults()


@click.group(cls=LazyGroup, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, "--version", prog_name="wasm-bpf")
@click.option("-v", "--verbose", is_flag=True, help="Same as the sub-command's -v (wasm-bpf -v run X).")
@click.pass_context
def main(ctx: click.Context, verbose: bool) -> None:
    """Run eBPF programs whose user-space half is a WebAssembly module."""
    if verbose:  # the default of every sub-command's own --verbose
        assert isinstance(ctx.command, click.Group)
        ctx.default_map = {name: {"verbose": True} for name in ctx.command.list_commands(ctx)}


@main.command(context_settings={"ignore_unknown_options": True, "allow_interspersed_args": False},
              short_help="Run a wasm-bpf module, or a kernel-only BPF program.")
@click.option("--env", "env", multiple=True, metavar="KEY=VALUE", help="Set a variable in the guest's environment (repeatable).")
@click.option("--dir", "dirs", multiple=True, metavar="HOST[::GUEST]", help="Give the guest a host directory, at GUEST (default: the same path).")
@click.option("--policy", type=click.Path(dir_okay=False), metavar="FILE", callback=_load_policy,
              help="What the module may do (TOML, docs/policy.md); replaces the built-in default.")
@click.option("--timeout", type=click.FloatRange(min=0), metavar="S", help="Stop the guest after S seconds.")
@click.option("--grace-period", type=click.FloatRange(min=0), default=2.0, show_default=True, metavar="S",
              help="Seconds a stopping guest gets to return before it is interrupted.")
@click.option("--callback-module", default="callback-wrapper", show_default=True, help="Import module of the export-callback poll (TinyGo guests).")
@click.option("--callback-export", default="go-callback", show_default=True, help="Export called by that poll.")
@click.option("--max-memory", type=Limit("size"), default=_LIMITS["max_memory"], show_default=True,
              help="Wasm memory and tables, together, the guest may grow to.")
@click.option("--cpu-limit", type=Limit("seconds"), default=_LIMITS["cpu_limit"], show_default=True, metavar="S",
              help="CPU seconds the guest may use in all; then it is stopped (exit status 152).")
@click.option("--callback-limit", type=Limit("seconds"), default=_LIMITS["callback_limit"], show_default=True,
              metavar="S", help="CPU seconds one event callback may use before it is stopped (152).")
@click.option("--max-objects", type=Limit("count"), default=_LIMITS["max_objects"], show_default=True,
              help="BPF objects the guest may have loaded at once.")
@click.option("--max-links", type=Limit("count"), default=_LIMITS["max_links"], show_default=True,
              help="Programs the guest may have attached at once.")
@click.option("--max-map-memory", type=Limit("size"), default=_LIMITS["max_map_memory"], show_default=True,
              help="Estimated kernel memory of one BPF object's maps.")
@click.option("--stdin", "stdin", default="-", show_default=True, metavar="FILE|-|none",
              help="The guest's stdin: a file, this process's stdin (-), or none (end of input at once).")
@click.option("--stats", is_flag=True, help="At exit, print the records each event buffer delivered and lost.")
@click.option("-v", "--verbose", is_flag=True, help="Show libbpf's log and host details.")
@click.option("--no-cache", "no_cache", is_flag=True,
              help="Compile MODULE even if the compiled-module cache holds it, and do not store it there.")
@click.option("--plain-http", is_flag=True, help="MODULE is in a registry without TLS (a local one).")
@click.option("--verify-key", "verify_keys", multiple=True, type=click.Path(exists=True, dir_okay=False),
              metavar="PUB", help="Run MODULE (an OCI reference) only if signed by this key (repeatable).")
@click.option("--yes", "assume_yes", is_flag=True,
              help="Run a pulled MODULE that asks for more than tracing without asking (no --policy given).")
@click.argument("module", type=click.Path(dir_okay=False))
@click.argument("args", nargs=-1, type=click.UNPROCESSED)
def run(env: Tuple[str, ...], dirs: Tuple[str, ...], policy: Any, timeout: Optional[float], grace_period: float,
        callback_module: str, callback_export: str, stdin: str, stats: bool, verbose: bool, no_cache: bool,
        plain_http: bool,
        verify_keys: Tuple[str, ...], assume_yes: bool, module: str, args: Tuple[str, ...], **limits: Any) -> None:
    """Run MODULE, a WASI command that uses the wasm_bpf imports, with ARGS.
    MODULE may be a file, an http(s) URL or an OCI reference (REGISTRY/REPO:TAG, @sha256:...).

    \b
    Ctrl-C makes the guest's next buffer poll return -EINTR; a guest that has not
    returned after the grace period is interrupted (exit status 130).
    Example: wasm-bpf run bootstrap.wasm -- -d 100

    \b
    MODULE may also be a kernel-only program, with no user-space code
    (docs/kernel-only.md): X.bpf.o, X.bpf.c (compiled first) or a JSON package
    from `wasm-bpf package`. Its programs are attached and its ring buffer / perf
    records and histograms printed. Its options go before or after it, e.g.:
      --json | --csv        JSON lines, or CSV with a header (default: a table)
      --interval S          print maps every S seconds (default: a map's
                            /// @sample interval, else 1)
      --map NAME            also print this map (repeatable; .bss: the globals)
      --only/--skip PROG    choose the programs (default: one variant per event)
      --attach PROG=TARGET  attach target of a program (interface, cgroup...)
      --map-size NAME=N     max_entries of a map that user space would size
      -I DIR, --cflags F    build options of a .bpf.c
      --timeout S, -v       as above
    and one flag per `const volatile` global of the program.
    `wasm-bpf run X.bpf.o --help` lists every option that program takes. Example:
      wasm-bpf run --json opensnoop.bpf.o --min-pid 100
    """
    from .distribution import run_input
    module = run_input(module, plain_http=plain_http, verify_keys=verify_keys, policy=policy, assume_yes=assume_yes)
    from .errors import HostCallUnwind, WasmBpfError
    from .instance import Instance, RunConfig
    from .limits import Limits

    from .kernel_only import is_kernel_only_input
    if module.startswith("-"):  # kernel-only options before the program: `run --json x.bpf.o`
        items = [module, *args]
        program = next((a for a in items if not a.startswith("-") and is_kernel_only_input(a)), None)
        if program is None:
            raise click.UsageError(f"no such option: {module} (a Wasm module's own options go after it: "
                                   "run MODULE -- ARGS)")
        items.remove(program)
        module, args = program, tuple(items)
    if is_kernel_only_input(module):  # prog.bpf.o / prog.bpf.c / prog.json: no guest (kernel_only/)
        if policy is not None:
            raise click.UsageError("--policy applies to Wasm modules; a kernel-only run loads your own program")
        from .kernel_only.runner import run as run_kernel_only
        sys.exit(run_kernel_only(module, list(args), timeout=timeout, verbose=verbose))

    if args[:1] == ("--",):  # `run MODULE -- ARGS`: the separator is ours, not the guest's
        args = args[1:]

    config = RunConfig(env=_parse_env(env), dirs=_parse_dirs(dirs), timeout=timeout,
                       grace_period=grace_period, callback_module=callback_module,
                       callback_export=callback_export, verbose=verbose, handle_signals=True, policy=policy,
                       limits=Limits(**limits), stdin={"-": "inherit"}.get(stdin, stdin),
                       compile_cache=not no_cache)
    try:
        with Instance(module, list(args), config=config) as inst:
            code = inst.run()
            for line in inst.buffer_stats if stats else ():
                click.echo(f"wasm-bpf: stats: {line}", err=True)
    except HostCallUnwind:  # one out of a host call is a bug: its traceback
        raise
    except WasmBpfError as exc:
        if verbose:
            raise
        click.echo(f"wasm-bpf: error: {exc}", err=True)
        exit_now(1)
    exit_now(code)


def exit_now(code: int) -> NoReturn:
    """Ends a finished run's process with `code`, skipping the interpreter's teardown:
    freeing every object of every module takes ~20 ms, a fifth of a short run's start-up
    cost over a native loader (issue 19). What that teardown does and a run can see is
    done first: the atexit handlers (weakref.finalize's too) and the buffered output of
    Python and of C. Any doubt (a non-daemon thread still running, output that cannot
    be flushed) takes the interpreter's own exit instead, which reports it as ever."""
    import atexit
    import threading

    if any(t.is_alive() and not t.daemon for t in threading.enumerate() if t is not threading.main_thread()):
        sys.exit(code)
    atexit._run_exitfuncs()
    try:
        for stream in (sys.stdout, sys.stderr):
            if stream is not None:
                stream.flush()
    except (OSError, ValueError):
        sys.exit(code)
    import ctypes

    ctypes.CDLL(None).fflush(None)  # C's stdio (libbpf's, the shim's): all its streams
    os._exit(code)
