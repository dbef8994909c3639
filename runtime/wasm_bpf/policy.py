"""The capability policy: which BPF program types, attach kinds and targets, map
operations and host directories a module may use (docs/policy.md).

A policy is a small TOML file (``wasm-bpf run --policy FILE``, ``RunConfig.policy``);
without one the built-in DEFAULT applies. Every check raises PolicyRefusal, whose
text is the one line printed to the user: the rule that refused and how to allow it.
The guest receives -EPERM (a failed load: handle 0)."""
from __future__ import annotations

import fnmatch
import os
import re
from dataclasses import dataclass, field
from typing import Any, Dict, FrozenSet, Iterable, List, Optional, Sequence, Tuple, Union, cast

from ._native import ffi, lib
from .attach import KINDS
from .attach.targets import BINARY_KINDS
from .errors import HostCallUnwind, WasmBpfError
from .helpers import OUTSIDE_TRACING_IDS, helper_name, helper_names

ANY = "*"
BPFFS = "/sys/fs/bpf"
_PIN_NAME = re.compile(r"[A-Za-z0-9_][A-Za-z0-9_.]*")  # no "/", and not "." or ".."
READ_ONLY, READ_WRITE = "read-only", "read-write"
ATTACH_KINDS = ("auto", "iter", *(kind.name for kind in KINDS))
# Commands that change a map: update, delete, and the lookups that delete.
WRITE_COMMANDS = {
    lib.BPF_MAP_UPDATE_ELEM: "update", lib.BPF_MAP_DELETE_ELEM: "delete",
    lib.BPF_MAP_LOOKUP_AND_DELETE_ELEM: "lookup-and-delete", lib.BPF_MAP_LOOKUP_AND_DELETE_BATCH:
    "batch lookup-and-delete", lib.BPF_MAP_UPDATE_BATCH: "batch update", lib.BPF_MAP_DELETE_BATCH: "batch delete",
}

# The built-in default policy, as a policy file reads once parsed (docs/policy.md shows
# it as TOML): every program type, attach kind and map operation, so every shipped
# example runs as documented. Host paths (cgroups, uprobe and USDT binaries) are still
# confined to what --dir grants: that holds under every policy. Python data, so that
# a run without --policy imports no TOML parser.
DEFAULT: Dict[str, Dict[str, Any]] = {
    "programs": {"types": ["*"]},
    "attach": {"kinds": ["*"],
               "processes": []},  # a socket filter's PID:FD target: no other process's sockets
    "helpers": {"allowed": ["*"]},  # every helper but those acting outside tracing (OUTSIDE_TRACING)
    "maps": {"access": READ_WRITE},
}

# section -> key -> "names" (a list of strings), "level" (read-only | read-write) or
# "bpffs" (one directory below BPFFS)
_SCHEMA: Dict[str, Dict[str, str]] = {
    "programs": {"types": "names"},
    "attach": {"kinds": "names", "interfaces": "names", "cgroups": "names", "binaries": "names",
               "processes": "names"},
    "maps": {"types": "names", "access": "level", READ_ONLY: "names", READ_WRITE: "names", "pin_root": "bpffs"},
    "files": {"dirs": "names"},
    "helpers": {"allowed": "names"},
    "registries": {"allow": "names", "signed": "names", "keys": "names"},  # OCI references (docs/oci.md)
}
# Helpers that act outside the traced event (signal a process, change a return value,
# write user memory, run bpf() or close()): allowed only by name, never by "*" or a
# missing key.
OUTSIDE_TRACING = tuple(OUTSIDE_TRACING_IDS.values())


class PolicyError(WasmBpfError):
    """The policy file itself is wrong (syntax, unknown key, unknown name)."""


class PolicyRefusal(HostCallUnwind):
    """The policy refused something the guest asked for; str() is the user's line."""


def _libbpf_names(to_str) -> Tuple[str, ...]:
    names, i = [], 0
    while (s := to_str(i)) != ffi.NULL:
        names.append(ffi.string(s).decode())
        i += 1
    return tuple(names)


PROGRAM_TYPES = _libbpf_names(lib.libbpf_bpf_prog_type_str)
MAP_TYPES = _libbpf_names(lib.libbpf_bpf_map_type_str)


def program_type_name(prog_type: int) -> str:
    return PROGRAM_TYPES[prog_type] if 0 <= prog_type < len(PROGRAM_TYPES) else str(prog_type)


def map_type_name(map_type: int) -> str:
    return MAP_TYPES[map_type] if 0 <= map_type < len(MAP_TYPES) else str(map_type)


def policy_map_name(name: str, internal: bool) -> str:
    """The name a policy uses for a map: internal maps by their section (".bss"),
    since libbpf prefixes them with the object's name."""
    return name[name.index("."):] if internal and "." in name else name


def _matches(value: str, patterns: Iterable[str], below: bool = False) -> bool:
    """Shell-style patterns; with `below`, a pattern also covers the paths under it."""
    for pattern in patterns:
        if fnmatch.fnmatchcase(value, pattern):
            return True
        if below and fnmatch.fnmatchcase(value, pattern.rstrip("/") + "/*"):
            return True
    return False


@dataclass(frozen=True)
class Policy:
    """What a module may do. A list that is None allows anything of its kind."""

    source: str
    program_types: Optional[FrozenSet[str]] = None
    attach_kinds: Optional[FrozenSet[str]] = None
    interfaces: Optional[Tuple[str, ...]] = None
    cgroups: Optional[Tuple[str, ...]] = None
    binaries: Optional[Tuple[str, ...]] = None
    processes: Optional[Tuple[str, ...]] = None  # pids or command names of other processes (socket PID:FD)
    map_types: Optional[FrozenSet[str]] = None
    map_access: str = READ_WRITE
    read_only: FrozenSet[str] = field(default_factory=frozenset)
    read_write: FrozenSet[str] = field(default_factory=frozenset)
    dirs: Optional[Tuple[str, ...]] = None
    pin_root: Optional[str] = None  # the directory of the maps the module pins; None: no pinning
    helpers: Optional[FrozenSet[str]] = None  # None: all but OUTSIDE_TRACING
    registries: Optional[Tuple[str, ...]] = None  # REGISTRY/REPOSITORY patterns a run may pull from
    signed: Tuple[str, ...] = ()                  # those that must carry a signature by one of `keys`
    keys: Tuple[str, ...] = ()

    # ---- reading --------------------------------------------------------------------
    @classmethod
    def load(cls, path: Union[str, os.PathLike]) -> "Policy":
        """Reads a policy file; raises PolicyError naming the file and the problem."""
        try:
            with open(path, "rb") as f:
                text = f.read().decode()
        except (OSError, UnicodeDecodeError) as exc:
            raise PolicyError(f"cannot read policy {path}: {getattr(exc, 'strerror', None) or exc}") from None
        return cls.parse(text, os.fspath(path))

    @classmethod
    def default(cls) -> "Policy":
        return cls._from_document(DEFAULT, "(built-in default)")

    @classmethod
    def parse(cls, text: str, source: str) -> "Policy":
        import tomllib

        try:
            doc = tomllib.loads(text)
        except tomllib.TOMLDecodeError as exc:
            raise PolicyError(f"policy {source} is not valid TOML: {exc}") from None
        return cls._from_document(doc, source)

    @classmethod
    def _from_document(cls, doc: Dict[str, Any], source: str) -> "Policy":
        """A policy file as parsed (section -> key -> value)."""
        values = _validated(doc, source)

        def names(section: str, key: str, known: Sequence[str] = ()) -> Optional[Tuple[str, ...]]:
            items = values.get((section, key))
            if items is None or ANY in items:
                return None
            for item in items:
                if known and item not in known:
                    raise PolicyError(f"policy {source}: [{section}] {key} has unknown name {item!r}; "
                                      f"known: {', '.join(known)}")
            return tuple(items)

        def paths(section: str, key: str) -> Optional[Tuple[str, ...]]:
            items = names(section, key)
            if items is not None:
                for item in items:
                    if not item.startswith("/"):
                        raise PolicyError(f"policy {source}: [{section}] {key} entry {item!r} is not an "
                                          "absolute host path")
            return items

        frozen = lambda t: None if t is None else frozenset(t)  # noqa: E731
        processes = names("attach", "processes")
        if processes is not None and "self" in processes:
            raise PolicyError(f"policy {source}: [attach] processes no longer takes \"self\": the host's own "
                              "sockets are the ones an embedding application hands over (RunConfig.sockets)")
        helpers = cast(Optional[List[str]], values.get(("helpers", "allowed")))
        named = [name for name in helpers or () if name != ANY]
        known_helpers = set(helper_names().values()) if named else set()  # the kernel's BTF: read only if needed
        for name in named:
            if known_helpers and name not in known_helpers:
                raise PolicyError(f"policy {source}: [helpers] allowed has unknown helper {name!r} "
                                  "(names as in bpf_helpers.h: \"bpf_send_signal\")")
        read_only, read_write = names("maps", READ_ONLY) or (), names("maps", READ_WRITE) or ()
        both = sorted(set(read_only) & set(read_write))
        if both:
            raise PolicyError(f"policy {source}: map {both[0]!r} is both in [maps] read-only and read-write")
        return cls(
            source=source,
            program_types=frozen(names("programs", "types", PROGRAM_TYPES)),
            attach_kinds=frozen(names("attach", "kinds", ATTACH_KINDS)),
            interfaces=names("attach", "interfaces"),
            cgroups=paths("attach", "cgroups"),
            binaries=paths("attach", "binaries"),
            processes=processes,
            map_types=frozen(names("maps", "types", MAP_TYPES)),
            map_access=values.get(("maps", "access"), READ_WRITE),
            read_only=frozenset(read_only), read_write=frozenset(read_write),
            dirs=paths("files", "dirs"),
            pin_root=values.get(("maps", "pin_root")),
            helpers=None if helpers is None else frozenset(helpers),
            registries=names("registries", "allow"),
            signed=tuple(cast(Optional[List[str]], values.get(("registries", "signed"))) or ()),
            keys=paths("registries", "keys") or (),
        )

    # ---- checks ---------------------------------------------------------------------
    def _refuse(self, what: str, rule: str, value: str) -> PolicyRefusal:
        return PolicyRefusal(f"policy {self.source}: {what} is not in {rule}; add \"{value}\" to allow it")

    def check_program(self, name: str, prog_type: str) -> None:
        if self.program_types is not None and prog_type not in self.program_types:
            raise self._refuse(f"program '{name}' type {prog_type}", "[programs] types", prog_type)

    def check_map_type(self, name: str, map_type: str) -> None:
        if self.map_types is not None and map_type not in self.map_types:
            raise self._refuse(f"map '{name}' type {map_type}", "[maps] types", map_type)

    def check_helpers(self, prog: str, helper_ids: Iterable[int]) -> None:
        """helper_ids: the helpers program `prog` calls (helpers.helper_ids_of). Their
        names come from the kernel's BTF only under a list without "*"; otherwise only
        those allowed by name alone matter, and they are known without it."""
        if self.helpers is not None and ANY not in self.helpers:
            helpers = sorted(helper_name(i) for i in helper_ids)
        else:
            helpers = sorted(OUTSIDE_TRACING_IDS[i] for i in helper_ids if i in OUTSIDE_TRACING_IDS)
        for helper in helpers:
            named = self.helpers is not None and helper in self.helpers
            if helper in OUTSIDE_TRACING and not named:
                raise PolicyRefusal(f"policy {self.source}: program '{prog}' calls {helper}, which acts outside "
                                    f"tracing and is allowed only by name; add \"{helper}\" to [helpers] allowed "
                                    "to allow it")
            if not named and self.helpers is not None and ANY not in self.helpers:
                raise self._refuse(f"program '{prog}' helper {helper}", "[helpers] allowed", helper)

    def check_attach(self, prog: str, kind: str, interface: Optional[str] = None,
                     cgroup: Sequence[str] = (), binary: Sequence[str] = (), process: Sequence[str] = ()) -> None:
        """kind: attach/kind_of(); the host paths as named and as resolved (symlinks
        followed): a policy entry may match either. process: the pid and command of
        another process whose socket a PID:FD target names."""
        if self.attach_kinds is not None and kind not in self.attach_kinds:
            raise self._refuse(f"program '{prog}' attach kind {kind}", "[attach] kinds", kind)
        if interface is not None and self.interfaces is not None and not _matches(interface, self.interfaces):
            raise self._refuse(f"program '{prog}' interface {interface}", "[attach] interfaces", interface)
        if cgroup and self.cgroups is not None and not any(_matches(p, self.cgroups, below=True) for p in cgroup):
            raise self._refuse(f"program '{prog}' cgroup {cgroup[0]}", "[attach] cgroups", cgroup[0])
        if binary and self.binaries is not None and not any(_matches(p, self.binaries) for p in binary):
            raise self._refuse(f"program '{prog}' binary {binary[0]}", "[attach] binaries", binary[0])
        if process and self.processes is not None and not any(_matches(p, self.processes) for p in process):
            pid, command = process
            raise self._refuse(f"program '{prog}' socket of process {pid} ({command})", "[attach] processes",
                               command)

    def access_of(self, map_name: str) -> str:
        if map_name in self.read_write:
            return READ_WRITE
        if map_name in self.read_only:
            return READ_ONLY
        return self.map_access

    def check_map_write(self, map_name: str, what: str) -> None:
        """what: the write, as the refusal names it ("update", "submit"...)."""
        if self.access_of(map_name) == READ_ONLY:
            listed = "is in [maps] read-only" if map_name in self.read_only else "is read-only ([maps] access)"
            raise PolicyRefusal(f"policy {self.source}: map '{map_name}' {listed}, so {what} is "
                                f"refused; add \"{map_name}\" to [maps] read-write to allow it")

    def pin_path(self, map_name: str) -> str:
        """Where map `map_name`, pinned by name (LIBBPF_PIN_BY_NAME), is pinned: in
        the granted pin_root, never below it."""
        if self.pin_root is None:
            raise PolicyRefusal(f"policy {self.source}: map '{map_name}' is pinned by name (LIBBPF_PIN_BY_NAME) "
                                "and the policy grants no pin directory; set [maps] pin_root = "
                                "\"/sys/fs/bpf/NAME\" to allow it")
        if not _PIN_NAME.fullmatch(map_name):
            raise PolicyRefusal(f"policy {self.source}: map name {map_name!r} cannot be a pin name: a pin is a file "
                                "directly in [maps] pin_root, named with letters, digits, '_' and '.'")
        return os.path.join(self.pin_root, map_name)

    def check_registry(self, name: str) -> None:
        """name: REGISTRY/REPOSITORY of an OCI reference about to be run."""
        if self.registries is not None and not _matches(name, self.registries):
            raise self._refuse(f"{name}", "[registries] allow", name)

    def needs_signature(self, name: str) -> bool:
        return _matches(name, self.signed)

    def check_dirs(self, hosts: Iterable[str]) -> None:
        """Every --dir must be a policy directory or below one (raised before the run)."""
        if self.dirs is None:
            return
        allowed = [os.path.realpath(d) for d in self.dirs]
        for host in hosts:
            real = os.path.realpath(host)
            if not any(real == d or real.startswith(d.rstrip("/") + "/") for d in allowed):
                raise PolicyError(f"policy {self.source}: --dir {host} is not in [files] dirs; "
                                  f"add \"{real}\" to allow it")


def _validated(doc: dict, source: str) -> Dict[Tuple[str, str], Any]:
    """(section, key) -> value, after checking every key, type and placeholder."""
    values: Dict[Tuple[str, str], Any] = {}  # a str or a list of str, as _SCHEMA says
    for section, table in doc.items():
        keys = _SCHEMA.get(section)
        if keys is None or not isinstance(table, dict):
            raise PolicyError(f"policy {source}: unknown section [{section}]; sections: "
                              + ", ".join(f"[{s}]" for s in _SCHEMA))
        for key, value in table.items():
            shape = keys.get(key)
            if shape is None:
                raise PolicyError(f"policy {source}: unknown key {key!r} in [{section}]; keys: {', '.join(keys)}")
            if shape == "level":
                if value not in (READ_ONLY, READ_WRITE):
                    raise PolicyError(f"policy {source}: [{section}] {key} must be \"{READ_ONLY}\" or \"{READ_WRITE}\"")
            elif shape == "bpffs":
                if not isinstance(value, str) or not os.path.normpath(value).startswith(BPFFS + "/"):
                    raise PolicyError(f"policy {source}: [{section}] {key} must be a directory below {BPFFS} "
                                      f"(the BPF filesystem): \"{BPFFS}/NAME\"")
                value = os.path.normpath(value)
            elif not isinstance(value, list) or not all(isinstance(v, str) for v in value):
                raise PolicyError(f"policy {source}: [{section}] {key} must be a list of strings")
            else:
                holder = next((v for v in value if v.startswith("<") and v.endswith(">")), None)
                if holder:
                    raise PolicyError(f"policy {source}: [{section}] {key} still holds the placeholder "
                                      f"{holder!r}: replace it with the real value")
            values[(section, key)] = value
    return values



# Maps a guest cannot meaningfully write: event buffers (kernel to guest) and constants.
READ_ONLY_MAP_TYPES = ("ringbuf", "perf_event_array")
INTERFACE_KINDS = ("xdp", "tc", "socket")


def policy_template(module: str, programs: Sequence[Any], maps: Sequence[Any], helpers: Iterable[str]) -> str:
    """A policy allowing exactly what a module's objects declare (objspec.DeclaredProgram
    and DeclaredMap, the helpers its loaded programs call; `wasm-bpf inspect
    --policy-template`); targets are placeholders the user replaces (a policy with one
    left is refused)."""
    loaded = [p for p in programs if p.autoload]
    kinds = sorted({p.kind for p in loaded})
    read_only = sorted({m.name for m in maps if m.type in READ_ONLY_MAP_TYPES or m.name.startswith(".rodata")})
    read_write = sorted({m.name for m in maps} - set(read_only))
    import json

    q = lambda items: "[" + ", ".join(json.dumps(i) for i in items) + "]"  # noqa: E731
    out = [f"# Policy for {module}, from `wasm-bpf inspect --policy-template`.",
           "# Replace each <...> placeholder with what the module may use.", "",
           "[programs]", f"types = {q(sorted({p.type for p in loaded}))}", "",
           "[attach]", f"kinds = {q(kinds)}"]
    if any(k in INTERFACE_KINDS for k in kinds):
        out.append('interfaces = ["<INTERFACE>"]      # e.g. "eth0", "veth*"')
    if "socket" in kinds:
        out.append('processes = []                    # other processes whose sockets PID:FD may name: pids, commands')
    if "cgroup" in kinds:
        out.append('cgroups = ["<CGROUP_DIR>"]        # host path; the cgroups below it too')
    if any(k in BINARY_KINDS for k in kinds):
        out.append('binaries = ["<BINARY_PATH>"]      # host paths of probed programs and libraries')
    out += ["", "[helpers]", f"allowed = {q(sorted(set(helpers)))}", "",
            "[maps]", f'access = "{READ_ONLY}"',
            f"{READ_WRITE} = {q(read_write)}   # remove the maps the module only reads", "",
            "[files]"]
    if "cgroup" in kinds or any(k in BINARY_KINDS for k in kinds):
        out.append('dirs = ["<DIR>"]                  # what --dir may grant: the cgroups, the binaries')
    else:
        out.append("dirs = []                         # what --dir may grant (e.g. \"/proc\"); none")
    return "\n".join(out) + "\n"
