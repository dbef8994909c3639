"""Network kinds: XDP (generic/native), tc (clsact filters), tcx (kernel links, which
libbpf 1.1 has no API for), socket filters, sk_msg/sk_skb on a sockmap (a link where
the kernel has sockmap links)."""
import ctypes
import errno
import os
import socket
import threading
from typing import Any, Dict

from .._native import ffi, lib
from ..errors import HostCallError
from .common import check_rc, ifindex, prog_fd, shim_link, split_options
from .links import CallbackLink, FdLink, Link

XDP_MODES = {"generic": lib.XDP_FLAGS_SKB_MODE, "skb": lib.XDP_FLAGS_SKB_MODE,
             "native": lib.XDP_FLAGS_DRV_MODE, "drv": lib.XDP_FLAGS_DRV_MODE}


# ---- XDP ------------------------------------------------------------------------------
def claims_xdp(section: str) -> bool:
    return section == "xdp" or section.startswith("xdp/") or section.startswith("xdp.")


def attach_xdp(prog: Any, target: str, obj: Any = None) -> Link:
    """IFNAME[,mode=generic|native]."""
    ifname, opts = split_options(target, ["mode"])
    index = ifindex(ifname)
    if "mode" not in opts:
        return shim_link(lib.wbpf_attach_xdp, prog, index, what=f"XDP attach to {ifname}")
    if opts["mode"] not in XDP_MODES:
        raise HostCallError(errno.EINVAL, f"XDP mode {opts['mode']!r} is not generic or native")
    link_opts = ffi.new("struct bpf_link_create_opts *")
    link_opts.sz = ffi.sizeof("struct bpf_link_create_opts")
    link_opts.flags = XDP_MODES[opts["mode"]]
    fd = check_rc(lib.bpf_link_create(prog_fd(prog), index, lib.BPF_XDP, link_opts),
                  f"XDP ({opts['mode']}) attach to {ifname}")
    return FdLink(fd)


# ---- tc and tcx -----------------------------------------------------------------------
def claims_tc(section: str) -> bool:
    return section in ("tc", "classifier") or section.startswith(("tc/", "tcx", "classifier/"))


_DIRECTIONS = {"ingress": 0, "egress": 1}
# clsact qdiscs this process created, per ifindex: how many of our filters use them.
# Instances attach and detach in their own threads: a qdisc's creation or removal and
# its count change together under the lock, or one instance's detach could remove the
# qdisc (and the filters on it) that another one has just started to use.
_clsact_users: Dict[int, int] = {}
_clsact_lock = threading.Lock()


def attach_tc(prog: Any, target: str, obj: Any = None) -> Link:
    """IFNAME:ingress|egress (a filter on the clsact qdisc) or tcx:IFNAME:ingress|egress."""
    parts = target.split(":")
    tcx = parts[0] == "tcx"
    if tcx:
        parts = parts[1:]
    if len(parts) != 2 or parts[1] not in _DIRECTIONS or not parts[0]:
        raise HostCallError(errno.EINVAL, f"tc target {target!r} is not '[tcx:]ifname:ingress|egress'")
    ifname, direction = parts
    index = ifindex(ifname)
    if tcx:
        attach_type = lib.WBPF_TCX_INGRESS if direction == "ingress" else lib.WBPF_TCX_EGRESS
        fd = check_rc(lib.bpf_link_create(prog_fd(prog), index, attach_type, ffi.NULL), f"tcx attach to {target}")
        return FdLink(fd)
    return _tc_filter(prog, index, ifname, direction)


def _tc_hook(index: int, point: int) -> Any:
    hook = ffi.new("struct bpf_tc_hook *")
    hook.sz = ffi.sizeof("struct bpf_tc_hook")
    hook.ifindex = index
    hook.attach_point = point
    return hook


def _tc_filter(prog: Any, index: int, ifname: str, direction: str) -> Link:
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


def claims_socket(section: str) -> bool:
    return section == "socket" or section.startswith("socket/")


def _foreign_socket(pid: int, fd: int) -> socket.socket:
    """A duplicate of fd `fd` of process `pid` (pidfd_getfd), as a socket object."""
    try:
        pidfd = os.pidfd_open(pid)
    except OSError as exc:
        raise HostCallError(exc.errno or errno.ESRCH, f"no process {pid}: {exc.strerror}") from None
    try:
        dup = _libc.syscall(lib.SYS_pidfd_getfd, pidfd, fd, 0)
        if dup < 0:
            code = ctypes.get_errno()
            raise HostCallError(code, f"cannot get fd {fd} of process {pid}: {os.strerror(code)}")
    finally:
        os.close(pidfd)
    try:
        return socket.socket(fileno=dup)
    except OSError as exc:
        os.close(dup)
        raise HostCallError(errno.ENOTSOCK, f"fd {fd} of process {pid} is not a socket") from exc


def attach_socket(prog: Any, target: str, obj: Any = None) -> Link:
    """PID:FD (a socket of a running process) or IFNAME (a raw packet socket the host
    opens on that interface and keeps until detach)."""
    pid_s, sep, fd_s = target.partition(":")
    if sep:
        if not (pid_s.isdigit() and fd_s.isdigit()) or max(int(pid_s), int(fd_s)) >= 1 << 31:
            raise HostCallError(errno.EINVAL, f"socket target {target!r} is not 'pid:fd' or an interface")
        sock = _foreign_socket(int(pid_s), int(fd_s))
    else:
        ifindex(target)  # -ENODEV for an interface that does not exist
        sock = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(lib.ETH_P_ALL))
        try:
            sock.bind((target, 0))
        except OSError as exc:
            sock.close()
            raise HostCallError(exc.errno or errno.EINVAL, f"cannot bind a raw socket to {target}") from None
    try:
        sock.setsockopt(socket.SOL_SOCKET, lib.SO_ATTACH_BPF, prog_fd(prog))
    except OSError as exc:
        sock.close()
        raise HostCallError(exc.errno or errno.EINVAL, f"SO_ATTACH_BPF on {target}: {exc.strerror}") from None

    def detach() -> None:
        try:
            sock.setsockopt(socket.SOL_SOCKET, lib.SO_DETACH_BPF, 0)
        except OSError:
            pass  # the socket was closed meanwhile
        sock.close()

    return CallbackLink(detach)


# ---- sk_msg / sk_skb ------------------------------------------------------------------
def claims_sockmap(section: str) -> bool:
    return section.startswith(("sk_msg", "sk_skb"))


def attach_sockmap(prog: Any, target: str, obj: Any = None) -> Link:
    """MAP: a sockmap or sockhash of the same object."""
    if obj is None:
        raise HostCallError(errno.EINVAL, "sockmap attach needs the program's object")
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
