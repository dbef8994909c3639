"""Which types a C header (X.h, shared by X.bpf.c and X.c) defines.

BTF only records the types a BPF object uses in globals, maps and function
signatures; an event struct that is only used through bpf_ringbuf_reserve()'s
void pointer is missing. `wasm-bpf build` therefore finds X.h's definitions in
the preprocessed X.bpf.c (so X.h is read in the include context the BPF program
gives it) and compiles a second object that references each of them."""
from __future__ import annotations

import re
from pathlib import Path

_TOKEN = re.compile(r'[A-Za-z_]\w*|\d[\w.]*|"(?:\\.|[^"\\])*"|\'(?:\\.|[^\'\\])*\'|\S')
_LINEMARKER = re.compile(r'^#\s*(?:line\s+)?\d+\s+"((?:\\.|[^"\\])*)"')
_TAGS = ("struct", "union", "enum")
_OPEN, _CLOSE = "({[", ")}]"


def header_text(preprocessed: str, header: Path) -> str:
    """The lines of preprocessor output that came from `header`."""
    target = header.resolve()
    keep, out = False, []
    for line in preprocessed.splitlines():
        m = _LINEMARKER.match(line)
        if m:
            keep = Path(m.group(1).encode().decode("unicode_escape")).resolve() == target
        elif keep:
            out.append(line)
    return "\n".join(out)


_DIRECTIVE = re.compile(r"^\s*#\s*(define|undef)\b")


def without_macros(preprocessed: str) -> str:
    """Preprocessor output of `clang -E -dD` without its #define/#undef lines (a .i
    file given to the compiler must not have them)."""
    return "\n".join(line for line in preprocessed.splitlines() if not _DIRECTIVE.match(line))


def guest_preamble(text: str, header: Path) -> list[str]:
    """What X.wasm.h must repeat from X.h besides its types, from X.h's lines of
    `clang -E -dD` output: its macros (each under #ifndef, so a guest that also
    gets them elsewhere sees no redefinition; not X.h's include guard) and its
    anonymous enums (their constants are in no BTF)."""
    guard = re.search(r"^\s*#\s*ifndef\s+(\w+)\s*\n\s*#\s*define\s+\1\s*$", header.read_text(errors="replace"), re.M)
    out = []
    for line in text.splitlines():
        m = re.match(r"\s*#\s*define\s+(\w+)", line)
        if m and not (guard and m[1] == guard[1]):
            out += [f"#ifndef {m[1]}", line.strip(), "#endif"]
    for stmt in _statements(_tokens(without_macros(text))):
        if stmt[:2] == ["enum", "{"]:
            out.append(" ".join(stmt))
    return out


def _tokens(text: str) -> list[str]:
    """Tokens, without __attribute__((...)) groups (they may sit anywhere)."""
    toks, out, i = _TOKEN.findall(text), [], 0
    while i < len(toks):
        if toks[i] in ("__attribute__", "__attribute") and i + 1 < len(toks) and toks[i + 1] == "(":
            depth, i = 0, i + 1
            while i < len(toks):
                depth += toks[i] == "("
                depth -= toks[i] == ")"
                i += 1
                if depth == 0:
                    break
            continue
        out.append(toks[i])
        i += 1
    return out


def _statements(toks: list[str]) -> list[list[str]]:
    """File-scope declarations: token runs ended by ';' outside any bracket."""
    out, cur, depth = [], [], 0
    for t in toks:
        cur.append(t)
        if t in _OPEN:
            depth += 1
        elif t in _CLOSE:
            depth -= 1
        elif t == ";" and depth == 0:
            out.append(cur)
            cur = []
    return out


def defined_types(text: str) -> list[str]:
    """Type specs ('struct event', 'enum kind', 'pair_t') defined in C text: tagged
    definitions at any nesting depth, and typedef names of struct/union/enum types."""
    found: list[str] = []
    for stmt in _statements(_tokens(text)):
        for i, t in enumerate(stmt[:-2]):
            if t in _TAGS and stmt[i + 1] not in _TAGS and re.match(r"[A-Za-z_]", stmt[i + 1]) \
                    and stmt[i + 2] == "{":
                found.append(f"{t} {stmt[i + 1]}")
        if stmt[0] == "typedef" and any(t in _TAGS for t in stmt[1:3]):
            # Declarators follow the type: after its closing brace, or after the tag name.
            depth, start = 0, None
            for i, t in enumerate(stmt):
                if t in _OPEN:
                    depth += 1
                elif t in _CLOSE:
                    depth -= 1
                    if depth == 0 and t == "}":
                        start = i + 1
            if start is None:
                start = 3  # typedef struct foo NAME;
            decl = stmt[start:-1]
            for i, t in enumerate(decl):
                prev = decl[i - 1] if i else ","
                nxt = decl[i + 1] if i + 1 < len(decl) else ","
                if re.match(r"[A-Za-z_]\w*$", t) and prev == "," and nxt == ",":
                    found.append(t)
    return list(dict.fromkeys(found))


def type_refs(types: list[str]) -> str:
    """C globals that make a BPF compile put each type into BTF."""
    return "\n".join(f"{t} *__wasm_bpf_type_ref_{i};" for i, t in enumerate(types)) + "\n"
