"""Host paths a guest names (cgroup directories, uprobe and USDT binaries) are reached
only through the directories the user granted with ``--dir HOST[::GUEST]``
(RunConfig.dirs), never through the host's whole file system (upstream wasm-bpf
issue 48).

A guest path is read in the guest's own namespace, as WASI reads it: the grant whose
GUEST path is the longest prefix of it maps it to HOST, and the rest is opened
beneath HOST with openat2(RESOLVE_BENEATH), so neither `..` nor a symlink leads out
of the grant. Each grant is opened once, when the sandbox is made, and every lookup
starts from that fd, so renaming or replacing the granted directory later changes
nothing. The attach uses the file opened here (/proc/self/fd/N, or the fd): the path
is looked up once. A path outside every grant is refused with EACCES."""
from __future__ import annotations

import ctypes
import errno
import os
import weakref
from dataclasses import dataclass
from typing import List, NamedTuple, Optional, Sequence, Tuple

from ._native import lib
from .attach.cgroup import cgroup2_mount, resolve_cgroup
from .errors import HostCallError

# Where a library name is usually found on the host: only used to suggest a --dir.
LIBRARY_DIRS = ("/lib/x86_64-linux-gnu", "/usr/lib/x86_64-linux-gnu", "/lib64", "/usr/lib64",
                "/lib", "/usr/lib", "/usr/local/lib")


class _OpenHow(ctypes.Structure):
    _fields_ = [("flags", ctypes.c_uint64), ("mode", ctypes.c_uint64), ("resolve", ctypes.c_uint64)]


_libc = ctypes.CDLL(None, use_errno=True)
_libc.syscall.restype = ctypes.c_long


def open_beneath(dir_fd: int, rel: str, flags: int) -> int:
    """openat2(dir_fd, rel, RESOLVE_BENEATH): an fd, or OSError (EXDEV when rel would
    leave the directory through `..`, an absolute path or a symlink)."""
    how = _OpenHow(flags | os.O_CLOEXEC, 0, lib.RESOLVE_BENEATH | lib.RESOLVE_NO_MAGICLINKS)
    fd = _libc.syscall(lib.SYS_openat2, dir_fd, (rel or ".").encode(), ctypes.byref(how), ctypes.sizeof(how))
    if fd < 0:
        code = ctypes.get_errno()
        raise OSError(code, os.strerror(code))
    return int(fd)


def open_own(path: str, what: str, directory: bool) -> int:
    """A path of the host's own (a kernel-only run's target, not a guest's): opened
    as it is, so the attach uses this fd like a guest's."""
    try:
        return os.open(path, os.O_RDONLY | os.O_CLOEXEC | (os.O_DIRECTORY if directory else 0))
    except OSError as exc:
        raise HostCallError(exc.errno or errno.ENOENT, f"cannot open {what} {path}: {exc.strerror}") from None


class Grant(NamedTuple):
    host: str   # the host directory as the user named it
    guest: str  # its name in the guest
    real: str   # the host directory with symlinks resolved, when it was opened
    fd: int     # the directory, opened once (O_PATH); -1 if it could not be opened

    @classmethod
    def open(cls, host: str, guest: str) -> "Grant":
        try:
            fd = os.open(host, os.O_PATH | os.O_DIRECTORY | os.O_CLOEXEC)
        except OSError:
            return cls(os.path.abspath(host), guest, os.path.realpath(host), -1)
        return cls(os.path.abspath(host), guest, os.readlink(f"/proc/self/fd/{fd}"), fd)

    @property
    def flag(self) -> str:
        return f"--dir {self.host}" if self.guest == self.host else f"--dir {self.host}::{self.guest}"

    def covers(self, real_path: str) -> bool:
        return real_path == self.real or real_path.startswith(self.real.rstrip("/") + "/")


@dataclass
class Opened:
    """An open host file for an attach: `path` as the guest's path maps to the host,
    `real` with every symlink resolved; attach through `proc_path`."""

    fd: int
    path: str
    real: str
    grant: Grant

    @property
    def proc_path(self) -> str:
        return f"/proc/self/fd/{self.fd}"

    def close(self) -> None:
        if self.fd >= 0:
            os.close(self.fd)
            self.fd = -1


def _close_all(fds: List[int]) -> None:
    for fd in fds:
        os.close(fd)


def _parts(path: str) -> List[str]:
    return [p for p in path.split("/") if p not in ("", ".")]


class HostPaths:
    """The directories granted to one guest."""

    def __init__(self, dirs: Sequence[Tuple[str, str]]) -> None:
        self.grants = [Grant.open(host, guest) for host, guest in dirs]
        weakref.finalize(self, _close_all, [g.fd for g in self.grants if g.fd >= 0])  # they live as long as the guest

    def _grant_of(self, path: str) -> Optional[Tuple[Grant, List[str]]]:
        """The grant with the longest GUEST prefix of path, and the rest of path."""
        best: Optional[Tuple[Grant, List[str]]] = None
        parts, absolute = _parts(path), path.startswith("/")
        for grant in self.grants:
            prefix = _parts(grant.guest)
            if grant.guest.startswith("/") != absolute or parts[:len(prefix)] != prefix:
                continue
            if best is None or len(prefix) > len(_parts(best[0].guest)):
                best = (grant, parts[len(prefix):])
        return best

    def _open(self, grant: Grant, rest: List[str], shown: str, what: str, directory: bool) -> Opened:
        rel = "/".join(rest)
        host_path = os.path.join(grant.host, rel) if rel else grant.host
        flags = os.O_RDONLY | (os.O_DIRECTORY if directory else 0)
        try:
            if grant.fd < 0:
                raise FileNotFoundError(errno.ENOENT, f"the granted directory {grant.host} could not be opened")
            fd = open_beneath(grant.fd, rel, flags)
        except OSError as exc:
            if exc.errno in (errno.EXDEV, errno.ELOOP):
                raise HostCallError(errno.EACCES, f"{what} {shown!r} leads out of {grant.flag} (through '..' "
                                    "or a symlink): only paths inside granted directories are reachable") from None
            raise HostCallError(exc.errno or errno.ENOENT, f"cannot open {what} {shown!r} "
                                f"({host_path}): {exc.strerror}") from None
        return Opened(fd, os.path.normpath(host_path), os.readlink(f"/proc/self/fd/{fd}"), grant)

    def _outside(self, what: str, path: str, suggest: str, note: str = "") -> HostCallError:
        granted = ", ".join(g.flag for g in self.grants) or "none"
        return HostCallError(errno.EACCES, f"{what} {path!r}{note} is outside every directory granted to the module "
                             f"(granted: {granted}); grant it with --dir {suggest}")

    def open_path(self, path: str, what: str, directory: bool) -> Opened:
        found = self._grant_of(path)
        if found is None:
            suggest = path if directory else (os.path.dirname(path.rstrip("/")) or path)
            raise self._outside(what, path, suggest)
        return self._open(*found, path, what, directory)

    def open_binary(self, name: str) -> Opened:
        """A uprobe/USDT binary: a path, or a library name (no '/'), which is looked
        for in each granted directory in --dir order."""
        if "/" in name:
            return self.open_path(name, "binary", directory=False)
        for grant in self.grants:
            try:
                return self._open(grant, [name], name, "binary", directory=False)
            except HostCallError as exc:
                if exc.errno != errno.ENOENT:
                    raise
        where = next((d for d in LIBRARY_DIRS if os.path.isfile(os.path.join(d, name))), "DIR_OF_THE_LIBRARY")
        raise self._outside("library", name, where)

    def open_cgroup(self, path: str) -> Opened:
        """A cgroup v2 directory. A relative path is relative to the cgroup v2 root
        (a grant must cover that root); on hybrid systems a path under /sys/fs/cgroup
        that is not cgroup v2 means the same path under the v2 root, within the same
        grant, so upstream's "/sys/fs/cgroup/" with --dir /sys/fs/cgroup is the root."""
        root = cgroup2_mount()
        if root is None:
            raise HostCallError(errno.ENOENT, "cgroup v2 is not mounted (mount -t cgroup2 none /sys/fs/cgroup/unified)")
        root = os.path.realpath(root)
        if path.startswith("/"):
            opened = self.open_path(path, "cgroup", directory=True)
        else:
            grant = next((g for g in self.grants if g.covers(root)), None)
            if grant is None:
                raise self._outside("cgroup", path, root, f" (relative to the cgroup v2 root {root})")
            opened = self._open(grant, _parts(os.path.relpath(root, grant.real)) + path.split("/"),
                                path, "cgroup", directory=True)
        if os.fstat(opened.fd).st_dev == os.stat(root).st_dev:
            return opened
        opened.close()
        v2 = resolve_cgroup(opened.real)
        if not opened.grant.covers(v2):
            raise HostCallError(errno.EACCES, f"cgroup {path!r} is not cgroup v2 and its v2 counterpart {v2} is "
                                f"outside {opened.grant.flag}; grant it with --dir {v2}")
        return self._open(opened.grant, _parts(os.path.relpath(v2, opened.grant.real)), path, "cgroup",
                          directory=True)
