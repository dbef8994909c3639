"""ecc's source annotations: `///` comments on the declarations of a .bpf.c, read once
from the source (or from a package that carries them) and checked against the object.

  /// @description TEXT           before `char LICENSE[] SEC("license")` or alone at
                                  file level: the program; before a global or map: its help
  /// plain text                  the same as @description
  /// @cmdarg {"default": 0, "long": "pid", "short": "p", "help": "..."}
                                  on a `const volatile` global: its flag
  /// @sample {"interval": 1000, "type": "log2_hist", "clear_map": true, "unit": "usecs"}
                                  on a map: how and how often it is printed
  /// @tchook {"ifindex": 1, "attach_point": "BPF_TC_INGRESS"}
  /// @tcopts {"handle": 1, "priority": 1}
                                  on a SEC("tc") function: where it attaches
  /// @ifindex 1  /// @flags 2  /// @xdpopts {"old_prog_fd": 0}
                                  on a SEC("xdp") function: where and how it attaches

Attach annotations in a block that documents no function (at the top of the file,
before a #include) apply to every tc / XDP program that has none of its own. Each
value keeps where it was written ("prog.bpf.c:12"), so an error names the line; a
package stores those places beside ecc's own keys (package.py)."""
from __future__ import annotations

import json
import re
import socket
from dataclasses import dataclass, field
from typing import Any, Dict, List, Optional, Tuple

from wasm_bpf._native import lib

from .spec import ObjectSpec, ProgramSpec, SpecError

ATTACH_KEYS = ("tchook", "tcopts", "ifindex", "flags", "xdpopts")
_JSON_KEYS = ("cmdarg", "sample", "tchook", "tcopts", "xdpopts", "ifindex", "flags")
TC_POINTS = {"BPF_TC_INGRESS": "ingress", "BPF_TC_EGRESS": "egress"}
SAMPLE_TYPES = ("log2_hist", "linear_hist", "default_kv")
# linux/if_link.h: XDP_FLAGS_UPDATE_IF_NOEXIST (a link never replaces a program anyway), HW_MODE
_XDP_NOEXIST, _XDP_HW = 1, 8
_SHORT = re.compile(r"[A-Za-z]")
_LONG = re.compile(r"[A-Za-z0-9][A-Za-z0-9_-]*")
_EXAMPLE = {
    "cmdarg": '{"default": 0, "long": "pid", "short": "p", "help": "trace this PID only"}',
    "sample": '{"interval": 1000, "type": "log2_hist", "clear_map": true}',
    "tchook": '{"ifindex": 1, "attach_point": "BPF_TC_INGRESS"}',
    "tcopts": '{"handle": 1, "priority": 1}', "xdpopts": '{"old_prog_fd": 0}', "ifindex": "1", "flags": "2",
}


@dataclass
class Note:
    """One annotation's value, and where it was written."""
    value: Any
    where: str


@dataclass
class Annotations:
    description: str = ""
    programs: Dict[str, Dict[str, Note]] = field(default_factory=dict)
    variables: Dict[str, Dict[str, Note]] = field(default_factory=dict)
    maps: Dict[str, Dict[str, Note]] = field(default_factory=dict)
    file_level: Dict[str, Note] = field(default_factory=dict)  # attach notes for every tc/XDP program
    attached_functions: Dict[str, str] = field(default_factory=dict)  # a function with attach notes -> where

    def samples(self) -> Dict[str, Dict[str, Any]]:
        return {m: n["sample"].value for m, n in self.maps.items() if "sample" in n}

    def flag_overrides(self) -> Dict[str, Dict[str, Any]]:
        """Global -> {"long", "short", "help"} (cmdarg's, else the description as help)."""
        out: Dict[str, Dict[str, Any]] = {}
        for name, notes in self.variables.items():
            cmd = notes["cmdarg"].value if "cmdarg" in notes else {}
            over = {k: cmd[k] for k in ("long", "short", "help") if cmd.get(k)}
            if "help" not in over and "description" in notes:
                over["help"] = notes["description"].value
            if over:
                out[name] = over
        return out

    def defaults(self) -> Dict[str, Tuple[Any, str]]:
        """Global -> (its cmdarg default, where)."""
        return {name: (n["cmdarg"].value["default"], n["cmdarg"].where)
                for name, n in self.variables.items() if "cmdarg" in n and "default" in n["cmdarg"].value}

    def attach_notes(self, prog: str) -> Dict[str, Note]:
        """The attach annotations of a program: its own, else the file-level ones."""
        own = {k: n for k, n in self.programs.get(prog, {}).items() if k in ATTACH_KEYS}
        return own or dict(self.file_level)


# ---- reading a source ------------------------------------------------------------------
_COMMENTS = re.compile(r'//[^\n]*|/\*.*?\*/|"(?:[^"\\\n]|\\.)*"', re.S)
_SEC = re.compile(r'\bSEC\s*\(\s*"([^"]*)"\s*\)')
_ATTRIBUTE = re.compile(r"__attribute__\s*\(\(.*?\)\)")
_CALL = re.compile(r"\b(\w+)\s*\(")
_MACRO_PROG = re.compile(r"BPF_[A-Z0-9_]+")  # BPF_PROG(name, ...), BPF_KPROBE(name, ...)
_VAR_NAME = re.compile(r"(\w+)\s*(?:\[[^\]]*\]\s*)*(?:=.*)?$", re.S)


def parse_source(text: str, what: str) -> Annotations:
    """The annotations of a .bpf.c's text; `what` names it in errors (prog.bpf.c)."""
    ann = Annotations()
    lines = text.splitlines()
    i = 0
    while i < len(lines):
        if not _is_doc(lines[i]):
            i += 1
            continue
        start = i
        while i < len(lines) and _is_doc(lines[i]):
            i += 1
        block = [(what, n + 1, lines[n].strip()[3:].strip()) for n in range(start, i)]
        kind, name = _documented(lines, i)
        _file_block(ann, kind, name, _commands(block))
    return ann


def _is_doc(line: str) -> bool:
    s = line.lstrip()
    return s.startswith("///") and not s.startswith("////")


def _documented(lines: List[str], i: int) -> Tuple[str, str]:
    """("prog"|"var"|"map"|"license"|"type"|"", name) of the declaration that starts
    after line i ("" when a preprocessor line or another comment comes first)."""
    while i < len(lines) and not lines[i].strip():
        i += 1
    if i >= len(lines) or lines[i].lstrip().startswith(("#", "//", "/*")):
        return "", ""
    rest = _COMMENTS.sub(lambda m: m.group() if m.group().startswith('"') else " ", "\n".join(lines[i:i + 200]))
    decl, function = _declaration(rest)
    sec = _SEC.search(decl)
    flat = " ".join(_ATTRIBUTE.sub(" ", decl).split())
    bare = " ".join(_SEC.sub(" ", flat).split())
    if function:
        for call in _CALL.finditer(bare):
            if _MACRO_PROG.fullmatch(call.group(1)):
                inner = re.match(r"\s*(\w+)", bare[call.end():])
                return ("prog", inner.group(1)) if inner else ("", "")
            return "prog", call.group(1)
        return "", ""
    if sec is not None and sec.group(1) == "license":
        return "license", ""
    if sec is not None and sec.group(1) == ".maps":
        tail = re.search(r"\}[^}]*?(\w+)$", bare)  # } NAME, } __weak NAME
        return ("map", tail.group(1)) if tail else ("", "")
    head = bare.split("=", 1)[0].strip()
    if head.startswith("typedef") or (head.startswith(("struct", "union", "enum")) and (
            head.endswith("}") or re.fullmatch(r"\w+\s+\w+", head))):  # a type, or its declaration
        return "type", ""
    var = _VAR_NAME.search(head)
    return ("var", var.group(1)) if var else ("", "")


def _declaration(text: str) -> Tuple[str, bool]:
    """(the text of the first declaration, whether it is a function definition): up to
    `;` at depth 0, or to a function's `{`."""
    depth = 0
    for pos, ch in enumerate(text):
        if ch == "{":
            if depth == 0 and text[:pos].rstrip().endswith(")"):
                return text[:pos].strip(), True
            depth += 1
        elif ch == "}":
            depth -= 1
        elif ch == ";" and depth == 0:
            return text[:pos].strip(), False
    return text.strip(), False


def _commands(block: List[Tuple[str, int, str]]) -> Dict[str, Note]:
    """`@name ARG` lines (an argument may go on over the next lines), plain text as
    the description. Commands other than ecc's (@brief, @param...) are ignored."""
    out: Dict[str, Note] = {}
    pieces: List[Tuple[str, List[str], str]] = []  # (command, its text, where)
    for what, line, content in block:
        command = re.match(r"@(\w+)\s*(.*)", content)
        if command is not None:
            pieces.append((command.group(1), [command.group(2)], f"{what}:{line}"))
        elif pieces:
            pieces[-1][1].append(content)
        else:
            pieces.append(("description", [content], f"{what}:{line}"))
    for key, text, where in pieces:
        body = " ".join(t for t in text if t)
        if key == "description" and body:
            out[key] = Note(body, where)
        elif key in _JSON_KEYS:
            out[key] = Note(_json(key, body, where), where)
    return out


def _json(key: str, text: str, where: str) -> Any:
    try:
        return json.loads(text)
    except ValueError as e:
        raise SpecError(f"{where}: /// @{key} {text}: not JSON ({e}); write e.g. /// @{key} {_EXAMPLE[key]}") from None


def _file_block(ann: Annotations, kind: str, name: str, notes: Dict[str, Note]) -> None:
    attach = {k: n for k, n in notes.items() if k in ATTACH_KEYS}
    if kind == "prog":
        ann.programs.setdefault(name, {}).update(notes)
        if attach:
            ann.attached_functions[name] = next(iter(attach.values())).where
        return
    for key in ("cmdarg", "sample"):
        if key in notes and kind != {"cmdarg": "var", "sample": "map"}[key]:
            want = "a const volatile global" if key == "cmdarg" else "a map (struct {...} NAME SEC(\".maps\"))"
            raise SpecError(f"{notes[key].where}: /// @{key} must come right before {want}")
    if kind == "var":
        ann.variables.setdefault(name, {}).update(notes)
    elif kind == "map":
        ann.maps.setdefault(name, {}).update(notes)
    if kind in ("license", "") and "description" in notes and not ann.description:
        ann.description = notes["description"].value
    if kind != "prog":
        ann.file_level.update(attach)


# ---- checking against the object -------------------------------------------------------
def prog_net_kind(p: ProgramSpec) -> str:
    """"tc", "xdp" or "" from the section (libbpf's names for those program types)."""
    sec = p.section
    if sec in ("xdp", "xdp.frags"):  # not xdp/devmap, xdp/cpumap: those run from a map, on no interface
        return "xdp"
    if sec in ("tc", "classifier", "action") or sec.startswith(("tc/", "classifier/", "action/")):
        return "tc"
    return ""


def check(ann: Annotations, spec: ObjectSpec) -> None:
    """Every annotation names something the object has, and holds values the runner
    can use; SpecError names the annotation and its line."""
    progs = {p.name: p for p in spec.programs}
    for name, where in ann.attached_functions.items():
        if name not in progs:
            raise SpecError(f"{where}: attach annotations on {name}(), which is not a BPF program of the "
                            "object (no SEC(...)); put them before a SEC(\"tc\") or SEC(\"xdp\") function")
    for name, notes in ann.programs.items():
        if name in progs:
            _check_attach(notes, progs[name], own=True)
    for p in spec.programs:
        if prog_net_kind(p) and not any(k in ann.programs.get(p.name, {}) for k in ATTACH_KEYS):
            _check_attach(ann.file_level, p, own=False)
    rodata = {g.name for g in spec.globals}
    for name, notes in ann.variables.items():
        if "cmdarg" in notes:
            if name not in rodata:
                raise SpecError(f"{notes['cmdarg'].where}: /// @cmdarg on {name}, which is not a const volatile "
                                "global of .rodata (only those become flags)")
            _check_cmdarg(notes["cmdarg"])
    _check_flag_names(ann)
    maps = {m.name for m in spec.maps}
    for name, notes in ann.maps.items():
        if "sample" in notes:
            if name not in maps:
                raise SpecError(f"{notes['sample'].where}: /// @sample on {name}, which is not a map of the object")
            _check_sample(notes["sample"])


def _bad(note: Note, key: str, why: str) -> SpecError:
    return SpecError(f"{note.where}: /// @{key} {json.dumps(note.value)}: {why} (e.g. /// @{key} {_EXAMPLE[key]})")


_KIND = {int: "a number", float: "a number", str: "a string", bool: "true or false"}


def _object(note: Note, key: str, fields: Dict[str, Any]) -> Dict[str, Any]:
    """note.value, a JSON object whose keys are among fields (key -> a type, or a tuple)."""
    if not isinstance(note.value, dict):
        raise _bad(note, key, "expected a JSON object")
    for k, v in note.value.items():
        if k not in fields:
            raise _bad(note, key, f"unknown key {k!r} (keys: {', '.join(fields)})")
        want = fields[k] if isinstance(fields[k], tuple) else (fields[k],)
        if not isinstance(v, want) or (bool not in want and isinstance(v, bool)):
            raise _bad(note, key, f"{k} must be {_KIND.get(want[0], 'a JSON value')}")
    return note.value


def _uint(note: Note, key: str, value: Any, what: str, top: int) -> int:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= top:
        raise _bad(note, key, f"{what} must be a number in 0..{top}")
    return value


def _check_attach(notes: Dict[str, Note], p: ProgramSpec, own: bool) -> None:
    kind = prog_net_kind(p)
    for key, note in notes.items():
        if key not in ATTACH_KEYS:
            continue
        wants = "tc" if key in ("tchook", "tcopts") else "xdp"
        if kind != wants:
            if own:
                raise SpecError(f"{note.where}: /// @{key} is for SEC(\"{wants}\") programs; {p.name} is "
                                f"SEC(\"{p.section}\")")
            continue  # a file-level note for the other kind
        if key == "tchook":
            hook = _object(note, key, {"ifindex": int, "attach_point": str})
            _uint(note, key, hook.get("ifindex", 1), "ifindex", (1 << 31) - 1)
            point = hook.get("attach_point", "BPF_TC_INGRESS")
            if point not in TC_POINTS:
                raise _bad(note, key, f"attach_point {point!r} is not BPF_TC_INGRESS or BPF_TC_EGRESS"
                           + (" (BPF_TC_CUSTOM needs a parent qdisc, which ecc cannot name)"
                              if point == "BPF_TC_CUSTOM" else ""))
        elif key == "tcopts":
            opts = _object(note, key, {"handle": int, "priority": int})
            _uint(note, key, opts.get("handle", 1), "handle", (1 << 32) - 1)
            _uint(note, key, opts.get("priority", 1), "priority", 0xFFFF)
        elif key == "xdpopts":
            opts = _object(note, key, {"old_prog_fd": int})
            if opts.get("old_prog_fd", 0) != 0:
                raise _bad(note, key, "old_prog_fd must be 0: a file descriptor of another process means nothing here")
        elif key == "ifindex":
            _uint(note, key, note.value, "the interface index", (1 << 31) - 1)
        elif key == "flags":
            flags = _uint(note, key, note.value, "the XDP flags", 0xFF)
            if flags & ~(_XDP_NOEXIST | lib.XDP_FLAGS_SKB_MODE | lib.XDP_FLAGS_DRV_MODE):
                raise _bad(note, key, "only XDP_FLAGS_UPDATE_IF_NOEXIST (1), XDP_FLAGS_SKB_MODE (2, generic) and "
                           "XDP_FLAGS_DRV_MODE (4, native) are supported" + (": no hardware offload here"
                                                                             if flags & _XDP_HW else ""))
            if flags & lib.XDP_FLAGS_SKB_MODE and flags & lib.XDP_FLAGS_DRV_MODE:
                raise _bad(note, key, "generic (2) and native (4) exclude each other")


def _check_cmdarg(note: Note) -> None:
    cmd = _object(note, "cmdarg", {"default": (int, str, bool, float), "long": str, "short": str, "help": str})
    if "long" in cmd and not _LONG.fullmatch(cmd["long"]):
        raise _bad(note, "cmdarg", f"long {cmd['long']!r} is not a flag name (letters, digits, - and _)")
    if "short" in cmd and not _SHORT.fullmatch(cmd["short"]):
        raise _bad(note, "cmdarg", f"short {cmd['short']!r} must be one letter")
    if cmd.get("short") in ("h", "v"):
        raise _bad(note, "cmdarg", f"short {cmd['short']!r} is wasm-bpf run's own -{cmd['short']}; "
                   "choose another letter")


def _check_flag_names(ann: Annotations) -> None:
    seen: Dict[str, str] = {}
    for name, over in ann.flag_overrides().items():
        for spelling in (over.get("long"), over.get("short")):
            if spelling is None:
                continue
            if spelling in seen:
                note = ann.variables[name]["cmdarg"]
                raise SpecError(f"{note.where}: /// @cmdarg of {name} uses {spelling!r}, as {seen[spelling]} does")
            seen[spelling] = name


def _check_sample(note: Note) -> None:
    sample = _object(note, "sample", {"interval": (int, float), "type": str, "clear_map": bool, "unit": str})
    if "interval" in sample and not 0 < sample["interval"] <= 86_400_000:
        raise _bad(note, "sample", "interval is in milliseconds, 1..86400000")
    if sample.get("type", "default_kv") not in SAMPLE_TYPES:
        raise _bad(note, "sample", f"type must be one of {', '.join(SAMPLE_TYPES)}")


# ---- attach targets --------------------------------------------------------------------
def interface_name(index: int, where: str) -> str:
    try:
        return socket.if_indextoname(index)
    except OSError:
        raise SpecError(f"{where}: no network interface has index {index} (here: {_interfaces()}); "
                        "give --ifname NAME or --ifindex N") from None


def _interfaces(most: int = 8) -> str:
    names = [f"{name}={i}" for i, name in socket.if_nameindex()]
    return ", ".join(names[:most]) + (f" and {len(names) - most} more" if len(names) > most else "")


def override_interface(ifname: Optional[str], ifindex: Optional[int]) -> Optional[str]:
    """The interface --ifname / --ifindex names (checked here, so the error names the flag)."""
    if ifindex is not None:
        return interface_name(ifindex, f"--ifindex {ifindex}")
    if ifname is not None:
        try:
            socket.if_nametoindex(ifname)
        except OSError:
            raise SpecError(f"--ifname {ifname}: no such network interface (here: {_interfaces()})") from None
    return ifname


def net_targets(ann: Annotations, spec: ObjectSpec, interface: Optional[str]) -> Dict[str, Tuple[str, str]]:
    """Program -> (--attach TARGET, why) for each tc / XDP program that its annotations
    or --ifname/--ifindex (`interface`) place; others are left to --attach."""
    out = {}
    for p in spec.programs:
        kind = prog_net_kind(p)
        notes = ann.attach_notes(p.name)
        if not kind or not (interface or any(_applies(k, kind) for k in notes)):
            continue
        if kind == "tc":
            hook = notes["tchook"].value if "tchook" in notes else {}
            opts = notes["tcopts"].value if "tcopts" in notes else {}
            where = notes["tchook"].where if "tchook" in notes else ""
            ifname = interface or interface_name(hook.get("ifindex", 1), f"{where}: /// @tchook ifindex")
            target = f"{ifname}:{TC_POINTS[hook.get('attach_point', 'BPF_TC_INGRESS')]}"
            if opts:
                target += f",handle={opts.get('handle', 1)},priority={opts.get('priority', 1)}"
        else:
            where = notes["ifindex"].where if "ifindex" in notes else ""
            ifname = interface or interface_name(notes["ifindex"].value if "ifindex" in notes else 1,
                                                 f"{where}: /// @ifindex")
            flags = notes["flags"].value if "flags" in notes else 0
            mode = ("generic" if flags & lib.XDP_FLAGS_SKB_MODE else
                    "native" if flags & lib.XDP_FLAGS_DRV_MODE else "")
            target = ifname + (f",mode={mode}" if mode else "")
        why = "--ifname/--ifindex" if interface else \
            ", ".join(f"@{k} at {n.where}" for k, n in notes.items() if _applies(k, kind))
        out[p.name] = (target, why)
    return out


def _applies(key: str, kind: str) -> bool:
    return key in (("tchook", "tcopts") if kind == "tc" else ("ifindex", "flags", "xdpopts"))


# ---- packages (ecc's package.json keys) ------------------------------------------------
def to_meta(ann: Annotations, skel: Dict[str, Any]) -> Dict[str, str]:
    """Writes the annotations into an ecc bpf_skel (progs[], maps[], data_sections'
    variables, doc); returns "progs.NAME.KEY" -> where, kept in the package."""
    places: Dict[str, str] = {}

    def put(entry: Dict[str, Any], section: str, name: str, notes: Dict[str, Note]) -> None:
        for key, note in notes.items():
            if key == "cmdarg":
                entry.setdefault("cmdarg", {}).update(note.value)
            else:
                entry[key] = note.value
            places[f"{section}.{name}.{key}"] = note.where

    for prog in skel.get("progs", []):
        kind = prog_net_kind(ProgramSpec(prog["name"], prog["attach"]))
        own = {k: n for k, n in ann.programs.get(prog["name"], {}).items() if k not in ATTACH_KEYS}
        attach = {k: n for k, n in ann.attach_notes(prog["name"]).items() if kind and _applies(k, kind)}
        put(prog, "progs", prog["name"], {**own, **attach})
    for m in skel.get("maps", []):
        put(m, "maps", m["name"], ann.maps.get(m["name"], {}))
    for sec in skel.get("data_sections", []):
        for var in sec.get("variables", []):
            put(var, "variables", var["name"], ann.variables.get(var["name"], {}))
    if ann.description:
        skel["doc"] = {"description": ann.description}
    return places


def from_meta(doc: Dict[str, Any], what: str) -> Annotations:
    """The annotations of a package (ecc's or ours), `doc` already checked by schema.py."""
    meta = doc.get("meta") or {}
    skel = meta.get("bpf_skel") or {}
    places = (doc.get("wasm_bpf") or {}).get("annotations") or {}
    ann = Annotations(description=str((skel.get("doc") or {}).get("description") or ""))

    def notes(section: str, entry: Dict[str, Any], keys: Tuple[str, ...]) -> Dict[str, Note]:
        name = entry.get("name", "")
        return {k: Note(entry[k], places.get(f"{section}.{name}.{k}") or f"{what}: {section}[{name}].{k}")
                for k in keys if k in entry}

    for prog in skel.get("progs") or []:
        found = notes("progs", prog, ATTACH_KEYS + ("description",))
        if found:
            ann.programs[prog.get("name", "")] = found
    for m in skel.get("maps") or []:
        found = notes("maps", m, ("sample", "description"))
        if found:
            ann.maps[m.get("name", "")] = found
    for sec in skel.get("data_sections") or []:
        for var in sec.get("variables") or []:
            found = notes("variables", var, ("cmdarg", "description"))
            if "value" in var:  # ecc's initial value is the flag's default
                cmd = found.get("cmdarg", Note({}, f"{what}: variables[{var.get('name')}].value"))
                found["cmdarg"] = Note({**cmd.value, "default": var["value"]}, cmd.where)
            if found:
                ann.variables[var.get("name", "")] = found
    return ann
