"""Network kinds: XDP (generic/native), tc (clsact filters), tcx (kernel links, which
libbpf 1.1 has no API for), socket filters, sk_msg/sk_skb on a sockmap (a link where
the kernel has sockmap links)."""
from __future__ import annotations

import ctypes
import errno
import os
import signal
import socket
import threading
from typing import Any, Callable, Dict, Union

from .._native import ffi, lib
from ..errors import HostCallError
from .common import check_rc, ifindex, prog_fd, shim_link
from .links import CallbackLink, FdLink, Link
from .targets import PacketSocket, ProcessSocket, Sockmap, Tc, Xdp

XDP_MODES = {"generic": lib.XDP_FLAGS_SKB_MODE, "skb": lib.XDP_FLAGS_SKB_MODE,
             "native": lib.XDP_FLAGS_DRV_MODE, "drv": lib.XDP_FLAGS_DRV_MODE}  # targets.py checks the names


# ---- XDP ------------------------------------------------------------------------------
def attach_xdp(prog: Any, target: Xdp, obj: Any = None) -> Link:
    index = ifindex(target.ifname)
    if target.mode is None:
        return shim_link(lib.wbpf_attach_xdp, prog, index, what=f"XDP attach to {target.ifname}")
    link_opts = ffi.new("struct bpf_link_create_opts *")
    link_opts.sz = ffi.sizeof("struct bpf_link_create_opts")
    link_opts.flags = XDP_MODES[target.mode]
    fd = check_rc(lib.bpf_link_create(prog_fd(prog), index, lib.BPF_XDP, link_opts),
                  f"XDP ({target.mode}) attach to {target.ifname}")
    return FdLink(fd)


# ---- tc and tcx -----------------------------------------------------------------------
# clsact qdiscs this process created, per ifindex: how many of our filters use them.
# Instances attach and detach in their own threads: a qdisc's creation or removal and
# its count change together under the lock, or one instance's detach could remove the
# qdisc (and the filters on it) that another one has just started to use.
_clsact_users: Dict[int, int] = {}
_clsact_lock = threading.Lock()


def attach_tc(prog: Any, target: Tc, obj: Any = None) -> Link:
    """A filter on the clsact qdisc, or a tcx link."""
    index = ifindex(target.ifname)
    if target.tcx:
        attach_type = lib.WBPF_TCX_INGRESS if target.direction == "ingress" else lib.WBPF_TCX_EGRESS
        fd = check_rc(lib.bpf_link_create(prog_fd(prog), index, attach_type, ffi.NULL),
                      f"tcx attach to {target.ifname} {target.direction}")
        return FdLink(fd)
    return _tc_filter(prog, index, target)


def _tc_hook(index: int, point: int) -> Any:
    hook = ffi.new("struct bpf_tc_hook *")
    hook.sz = ffi.sizeof("struct bpf_tc_hook")
    hook.ifindex = index
    hook.attach_point = point
    return hook


def _tc_filter(prog: Any, index: int, target: Tc) -> Link:
    ifname, direction = target.ifname, target.direction
    point = lib.BPF_TC_INGRESS if direction == "ingress" else lib.BPF_TC_EGRESS
    with _clsact_lock:
        rc = lib.bpf_tc_hook_create(_tc_hook(index, point))
        if rc < 0 and rc != -errno.EEXIST:
            check_rc(rc, f"creating the clsact qdisc on {ifname}")
        if rc == 0:
            _clsact_users[index] = 0
        if index in _clsact_users:
            _clsact_users[index] += 1
    hook = _tc_hook(index, point)
    opts = ffi.new("struct bpf_tc_opts *")
    opts.sz = ffi.sizeof("struct bpf_tc_opts")
    opts.prog_fd = prog_fd(prog)
    opts.handle, opts.priority = target.handle, target.priority
    try:
        check_rc(lib.bpf_tc_attach(hook, opts), f"tc attach to {ifname} {direction}")
    except HostCallError:
        _release_clsact(index)
        raise
    handle, priority = opts.handle, opts.priority

    def detach() -> None:
        detach_opts = ffi.new("struct bpf_tc_opts *")
        detach_opts.sz = ffi.sizeof("struct bpf_tc_opts")
        detach_opts.handle, detach_opts.priority = handle, priority
        lib.bpf_tc_detach(hook, detach_opts)
        _release_clsact(index)

    return CallbackLink(detach)


def _release_clsact(index: int) -> None:
    """Removes the clsact qdisc when the last filter of ours on it goes (never one that
    existed before us)."""
    with _clsact_lock:
        if index not in _clsact_users:
            return
        _clsact_users[index] -= 1
        if _clsact_users[index] <= 0:
            del _clsact_users[index]
            lib.bpf_tc_hook_destroy(_tc_hook(index, lib.BPF_TC_INGRESS | lib.BPF_TC_EGRESS))


# ---- socket filters -------------------------------------------------------------------
_libc = ctypes.CDLL(None, use_errno=True)


def take_socket(pid: int, fd: int, check: Callable[[int], None]) -> socket.socket:
    """A duplicate of fd `fd` of process `pid` (pidfd_getfd), as a socket object.
    check(duplicate) runs first and may refuse it (then nothing is said of the fd);
    the process is still alive after it, so what check read of /proc/PID was that
    process's and not of another one that reused the pid."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError as exc:
        raise HostCallError(exc.errno or errno.ESRCH, f"no process {pid}: {exc.strerror}") from None
    dup = -1
    try:
        dup = _libc.syscall(lib.SYS_pidfd_getfd, pidfd, fd, 0)
        if dup < 0:
            code = ctypes.get_errno()
            raise HostCallError(code, f"cannot get fd {fd} of process {pid}: {os.strerror(code)}")
        check(dup)
        signal.pidfd_send_signal(pidfd, 0)  # ESRCH: it ended meanwhile
        sock = socket.socket(fileno=dup)
    except OSError as exc:
        if dup >= 0:
            os.close(dup)
        if exc.errno == errno.ESRCH:
            raise HostCallError(errno.ESRCH, f"process {pid} ended while its fd {fd} was taken") from None
        raise HostCallError(errno.ENOTSOCK, f"fd {fd} of process {pid} is not a socket") from None
    except BaseException:
        if dup >= 0:
            os.close(dup)
        raise
    finally:
        os.close(pidfd)
    return sock


def attach_socket(prog: Any, target: Union[ProcessSocket, PacketSocket], obj: Any = None) -> Link:
    """A socket of a process, through the duplicate the sandbox took and checked
    (target.sock; the link keeps a duplicate of its own), or a raw packet socket the
    host opens on an interface and keeps until detach."""
    if isinstance(target, ProcessSocket):
        if target.sock is None:
            raise HostCallError(errno.EBADF, f"socket {target.pid}:{target.fd} was not taken")
        where, sock = f"{target.pid}:{target.fd}", target.sock.dup()
    else:
        where = target.ifname
        ifindex(where)  # -ENODEV for an interface that does not exist
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(lib.ETH_P_ALL))
        try:
            sock.bind((where, 0))
        except OSError as exc:
            sock.close()
            raise HostCallError(exc.errno or errno.EINVAL, f"cannot bind a raw socket to {where}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, lib.SO_ATTACH_BPF, prog_fd(prog))
    except OSError as exc:
        sock.close()
        raise HostCallError(exc.errno or errno.EINVAL, f"SO_ATTACH_BPF on {where}: {exc.strerror}") from None

    def detach() -> None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, lib.SO_DETACH_BPF, 0)
        except OSError:
            pass  # the socket was closed meanwhile
        sock.close()

    return CallbackLink(detach)


# ---- sk_msg / sk_skb ------------------------------------------------------------------
def attach_sockmap(prog: Any, sockmap: Sockmap, obj: Any = None) -> Link:
    """A sockmap or sockhash of the same object."""
    if obj is None:
        raise HostCallError(errno.EINVAL, "sockmap attach needs the program's object")
    target = sockmap.map_name
    bpf_map = lib.bpf_object__find_map_by_name(obj, target.encode())
    if bpf_map == ffi.NULL:
        raise HostCallError(errno.ENOENT, f"no map named {target!r} in the object")
    map_fd = int(lib.bpf_map__fd(bpf_map))
    attach_type = int(lib.bpf_program__expected_attach_type(prog))
    if attach_type not in (lib.BPF_SK_SKB_STREAM_PARSER, lib.BPF_SK_SKB_STREAM_VERDICT, lib.BPF_SK_MSG_VERDICT,
                           lib.BPF_SK_SKB_VERDICT):
        attach_type = lib.BPF_SK_SKB_STREAM_VERDICT  # plain SEC("sk_skb")
    fd = prog_fd(prog)
    # A sockmap link (kernel >= 6.10) is an fd: it goes with the process however that
    # ends. Older kernels refuse it with EINVAL: there the program is attached to the map.
    link = lib.bpf_link_create(fd, map_fd, attach_type, ffi.NULL)
    if link >= 0:
        return FdLink(link)
    if link != -errno.EINVAL:
        check_rc(link, f"sockmap link to {target}")
    check_rc(lib.bpf_prog_attach(fd, map_fd, attach_type, 0), f"attach to sockmap {target}")
    return CallbackLink(lambda: lib.bpf_prog_detach2(fd, map_fd, attach_type))
