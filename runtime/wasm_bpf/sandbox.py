"""The guard of one guest: its capability policy (policy.py) and its granted host
directories (hostpaths.py), applied where the host acts for the guest: before an
object is loaded (no bpf() call has been made yet), before each attach, and on each
map command."""
from __future__ import annotations

import contextlib
import errno
import os
import stat
from typing import TYPE_CHECKING, Any, ContextManager, FrozenSet, Iterable, Iterator, List, Optional, Sequence, Tuple, Union

from ._native import lib
from .attach import kind_of_program, section_of
from .attach.cgroup import resolve_cgroup
from .attach.targets import (BINARY_KINDS, Cgroup, PacketSocket, ProcessSocket, Target, Tc, Uprobe, Usdt, Xdp,
                             parse)
from .errors import HostCallError, WasmBpfError
from .helpers import helper_ids_of
from .hostpaths import HostPaths, open_own
from .limits import Limits
from .objspec import maps_of, programs_of
from .policy import WRITE_COMMANDS, Policy, policy_map_name

if TYPE_CHECKING:
    import socket

SocketGrant = Union[int, "socket.socket"]


class Sandbox:
    """policy None: the built-in default. dirs None: paths and sockets are the host's
    own (the host attaching for itself, as kernel-only runs do); a sequence, even
    empty, confines every guest-given path to those grants, and the host's own
    sockets to `sockets` (RunConfig.sockets). limits None: the defaults."""

    def __init__(self, policy: Optional[Policy] = None, dirs: Optional[Sequence[Tuple[str, str]]] = None,
                 limits: Optional[Limits] = None, sockets: Iterable[SocketGrant] = ()) -> None:
        self.policy = policy or Policy.default()
        self.limits = limits or Limits()
        self.links_alive = 0  # of all this guest's objects, kept by BpfObject
        self.paths = None if dirs is None else HostPaths(dirs)
        if dirs is not None:
            self.policy.check_dirs(host for host, _ in dirs)
        self.sockets = None if dirs is None else _socket_identities(sockets)

    def check_object(self, obj: Any, elf: bytes) -> None:
        """obj: a struct bpf_object * opened, not loaded, from the ELF bytes `elf`.
        Programs that will not be loaded (autoload off) are not the module's to use.
        Helpers are a guest's rule: the host loading its own object calls any."""
        helpers = helper_ids_of(obj, elf) if self.paths is not None else {}
        for prog in programs_of(obj):
            if prog.autoload:
                self.policy.check_program(prog.name, prog.type)
                self.policy.check_helpers(prog.name, helpers.get(prog.name, ()))
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

    def attach_target(self, name: str, prog: Any, text: str) -> ContextManager[Target]:
        """check_target() for program `name` (a struct bpf_program *)."""
        return self.check_target(name, kind_of_program(prog), section_of(prog), text)

    @contextlib.contextmanager
    def check_target(self, name: str, kind: str, section: str, text: str) -> Iterator[Target]:
        """Parses the target of a program of attach kind `kind`, checks it against the
        grants and the policy, and yields the value to attach with: host files
        replaced by what was opened here, which stays open until the attach is done
        (the link then holds its own reference)."""
        if kind in BINARY_KINDS and not text and "/" in section and self.paths is not None:
            # SEC("uprobe//usr/bin/app:main") names a host path too: attach it explicitly.
            text = section.split("/", 1)[1]
        target = parse(kind, text)
        with contextlib.ExitStack() as opened:
            target, names = self._open(target, opened)
            self.policy.check_attach(name, kind, interface=_interface(target),
                                     cgroup=names if isinstance(target, Cgroup) else (),
                                     binary=names if isinstance(target, (Uprobe, Usdt)) else (),
                                     process=names if isinstance(target, ProcessSocket) else ())
            try:
                yield target
            except HostCallError as exc:
                if not names or not isinstance(target, (Uprobe, Usdt)):
                    raise
                raise HostCallError(exc.errno, str(exc).replace(target.binary, names[0])) from None

    def _open(self, target: Target, opened: contextlib.ExitStack) -> Tuple[Target, List[str]]:
        """The target with its host object opened once, and the names the policy may
        give that object (a path as named and resolved; a process's names)."""
        if isinstance(target, Cgroup):
            if self.paths is None:
                path = resolve_cgroup(target.path)
                fd = open_own(path, "cgroup", directory=True)
                opened.callback(os.close, fd)
                return target._replace(fd=fd), [path]
            cgroup = self.paths.open_cgroup(target.path)
            opened.callback(cgroup.close)
            return target._replace(fd=cgroup.fd), [cgroup.path, cgroup.real]
        if isinstance(target, (Uprobe, Usdt)) and self.paths is not None:
            binary = self.paths.open_binary(target.binary)
            opened.callback(binary.close)
            return target._replace(binary=binary.proc_path), [binary.path, binary.real]
        if isinstance(target, ProcessSocket):
            names: List[str] = []

            def check(dup: int) -> None:
                if _is_host(target.pid):
                    self._check_own_socket(target, dup)
                else:
                    names.extend(_process_names(target.pid))
            from .attach.net import take_socket  # network kinds only: net.py imports socket

            sock = take_socket(target.pid, target.fd, check)
            opened.callback(sock.close)
            return target._replace(sock=sock), names
        return target, []

    def _check_own_socket(self, target: ProcessSocket, dup: int) -> None:
        """A socket of the host itself must be one handed to the guest: checked on
        the duplicate that will be attached, so a reused fd number is no way in."""
        if self.sockets is not None and _identity(dup) not in self.sockets:
            raise HostCallError(errno.EACCES, f"socket {target.pid}:{target.fd} is the host's own and was not "
                                "handed to the module: an embedding application grants a socket with "
                                "RunConfig(sockets=[sock])")


def _is_host(pid: int) -> bool:
    """Is pid this process, or one of its threads (a thread id names it too)?"""
    if pid == os.getpid():
        return True
    try:
        with open(f"/proc/{pid}/status") as f:
            return any(line.split() == ["Tgid:", str(os.getpid())] for line in f)
    except OSError:
        return False  # ended meanwhile: take_socket says so


def _process_names(pid: int) -> List[str]:
    """The names a policy may give another process whose socket a PID:FD target
    names: its pid and command."""
    try:
        with open(f"/proc/{pid}/comm") as f:
            return [str(pid), f.read().strip()]
    except OSError:
        return [str(pid), "?"]  # ended meanwhile: take_socket says so


def _identity(fd: int) -> Tuple[int, int]:
    st = os.fstat(fd)
    return st.st_dev, st.st_ino


def _socket_identities(sockets: Iterable[SocketGrant]) -> FrozenSet[Tuple[int, int]]:
    """The sockets an embedding application handed to the guest, by inode: a socket,
    not an fd number that may be closed and reused."""
    found = set()
    for sock in sockets:
        fd = sock if isinstance(sock, int) else sock.fileno()
        try:
            st = os.fstat(fd)
        except OSError:
            st = None
        if st is None or not stat.S_ISSOCK(st.st_mode):
            raise WasmBpfError(f"RunConfig.sockets: fd {fd} is not an open socket")
        found.add((st.st_dev, st.st_ino))
    return frozenset(found)


def _interface(target: Target) -> Optional[str]:
    """The network interface an xdp, tc or socket target names (None: none)."""
    return target.ifname if isinstance(target, (Xdp, Tc, PacketSocket)) else None
