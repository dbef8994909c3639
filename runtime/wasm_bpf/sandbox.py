"""The guard of one guest: its capability policy (policy.py) and its granted host
directories (hostpaths.py), applied where the host acts for the guest: before an
object is loaded (no bpf() call has been made yet), before each attach, and on each
map command."""
import contextlib
import os
from typing import Any, Iterator, List, Optional, Sequence, Tuple

from ._native import lib
from .attach import kind_of
from .attach.common import split_options
from .errors import HostCallError
from .hostpaths import HostPaths, Opened
from .limits import Limits
from .objspec import maps_of, programs_of
from .policy import WRITE_COMMANDS, Policy, policy_map_name

BINARY_KINDS = ("uprobe", "uretprobe", "usdt")


class Sandbox:
    """policy None: the built-in default. dirs None: paths are the host's own (the
    host attaching for itself, as kernel-only runs do); a sequence, even empty,
    confines every guest-given path to those grants. limits None: the defaults."""

    def __init__(self, policy: Optional[Policy] = None, dirs: Optional[Sequence[Tuple[str, str]]] = None,
                 limits: Optional[Limits] = None) -> None:
        self.policy = policy or Policy.default()
        self.limits = limits or Limits()
        self.links_alive = 0  # of all this guest's objects, kept by BpfObject
        self.paths = None if dirs is None else HostPaths(dirs)
        if dirs is not None:
            self.policy.check_dirs(host for host, _ in dirs)

    def check_object(self, obj: Any) -> None:
        """obj: a struct bpf_object * opened, not loaded. Programs that will not be
        loaded (autoload off) are not the module's to use."""
        for prog in programs_of(obj):
            if prog.autoload:
                self.policy.check_program(prog.name, prog.type)
        maps = maps_of(obj)
        for m in maps:
            self.policy.check_map_type(m.name, m.type)
        self.limits.check_map_memory(maps)

    def check_map_command(self, maps: Iterator[Tuple[str, Any]], fd: int, cmd: int) -> None:
        """maps: (name, struct bpf_map *) of the object that owns map fd."""
        if cmd in WRITE_COMMANDS:
            self.check_map_write(maps, fd, WRITE_COMMANDS[cmd])

    def check_map_write(self, maps: Iterator[Tuple[str, Any]], fd: int, what: str) -> None:
        for name, m in maps:
            if lib.bpf_map__fd(m) == fd:
                self.policy.check_map_write(policy_map_name(name, lib.bpf_map__is_internal(m)), what)
                return

    @contextlib.contextmanager
    def attach_target(self, prog: str, section: str, target: str) -> Iterator[str]:
        """Checks an attach against the policy and yields the target to attach with:
        host paths in it opened inside the grants and replaced by /proc/self/fd/N."""
        kind = kind_of(section)
        if kind in BINARY_KINDS and not target and "/" in section and self.paths is not None:
            # SEC("uprobe//usr/bin/app:main") names a host path too: attach it explicitly.
            target = section.split("/", 1)[1]
        opened: Optional[Opened] = None
        attach_with = target
        try:
            if kind == "cgroup" and target and self.paths is not None:
                opened = self.paths.open_cgroup(target)
                attach_with = opened.proc_path
            elif kind in BINARY_KINDS and self.paths is not None:
                binary, rest = _split_binary(kind, target)
                if binary:
                    opened = self.paths.open_binary(binary)
                    attach_with = opened.proc_path + rest
            self.policy.check_attach(prog, kind, interface=_interface(kind, target),
                                     cgroup=_names(opened) if kind == "cgroup" else (),
                                     binary=_names(opened) if kind in BINARY_KINDS else (),
                                     process=_socket_process(kind, target))
            try:
                yield attach_with
            except HostCallError as exc:
                if opened is None:
                    raise
                raise HostCallError(exc.errno, str(exc).replace(opened.proc_path, opened.path)) from None
        finally:
            if opened is not None:
                opened.close()  # the link holds the cgroup or the probed inode itself


def _names(opened: Optional[Opened]) -> List[str]:
    return [] if opened is None else [opened.path, opened.real]


def _split_binary(kind: str, target: str) -> Tuple[str, str]:
    """(BINARY, the rest of the target) when the target is well formed, else ("", "")
    and the attach kind reports the malformed target itself."""
    spec, sep, options = target.partition(",")
    if kind == "usdt":
        parts = spec.rsplit(":", 2)
        binary, rest = (parts[0], ":" + ":".join(parts[1:])) if len(parts) == 3 and all(parts) else ("", "")
    else:
        binary, colon, func = spec.rpartition(":")
        binary, rest = (binary, colon + func) if binary and func else ("", "")
    return (binary, rest + sep + options) if binary else ("", "")


def _socket_process(kind: str, target: str) -> List[str]:
    """The names a policy may give the process of a socket filter's PID:FD target:
    "self" for the host itself, the pid, and the command (/proc/PID/comm)."""
    pid, sep, fd = target.partition(":")
    if kind != "socket" or not sep or not (pid.isdigit() and fd.isdigit()) or max(int(pid), int(fd)) >= 1 << 31:
        return []  # an interface, or a malformed target attach_socket reports itself
    names = ["self"] if int(pid) == os.getpid() else []
    try:
        with open(f"/proc/{int(pid)}/comm") as f:
            names += [pid, f.read().strip()]
    except OSError:
        names.append(pid)  # no such process: the attach says so
    return names


def _interface(kind: str, target: str) -> Optional[str]:
    """The network interface an xdp, tc or socket target names (None: none)."""
    if not target:
        return None
    if kind == "xdp":
        return split_options(target, ["mode"])[0]
    if kind == "tc":
        return target.removeprefix("tcx:").rpartition(":")[0] or None
    if kind == "socket" and ":" not in target:
        return target
    return None
