"""The shape and bounds of a JSON package (package.py), checked before any of it is
used: a package may come from anyone, and what it declares sizes the host's work
(a record type's size is allocated for every record decoded).

Three steps, each with a one-line SpecError naming the place and the bound:
  1. the text: size, then nesting depth (read without recursion, so a deeply nested
     file cannot exhaust the parser's stack);
  2. the JSON schema below (jsonschema): types, required keys, string lengths, item
     counts, number ranges;
  3. what a schema cannot say about a record type: an array's size is count x its
     element's, members lie inside their struct, and decoding one record touches a
     bounded number of values."""
from __future__ import annotations

import json
import re
from typing import Any, Dict

import jsonschema

from .spec import SpecError
from .types import Type

MAX_TEXT = 128 << 20  # bytes of package text (the object is base64 in it)
MAX_OBJECT = 64 << 20  # bytes of the BPF object, decompressed
MAX_DEPTH = 100  # nesting of JSON arrays and objects (jsonschema recurses per level)
MAX_RECORD = 1 << 20  # bytes of one record type: allocated for every record decoded
MAX_VALUES = 1 << 16  # values decoded from one record (array elements count each)
MAX_NAME = 256
MAX_HELP = 4096
MAX_ITEMS = 4096  # programs, maps, variables, members, enum values...

_NAME = {"type": "string", "maxLength": MAX_NAME}
_HELP = {"type": "string", "maxLength": MAX_HELP}
_SMALL_OBJECT = {"type": "object", "maxProperties": 8}  # an annotation's options (annotations.py checks them)
_OBJECT_OF_NAMES = {"type": "object", "maxProperties": MAX_ITEMS, "propertyNames": {"maxLength": MAX_NAME}}
_SCALAR = {"anyOf": [{"type": "string", "maxLength": MAX_HELP}, {"type": "number"}, {"type": "boolean"}]}

_TYPE: Dict[str, Any] = {
    "type": "object",
    "required": ["kind", "size"],
    "properties": {
        "kind": {"enum": ["int", "float", "enum", "array", "struct", "union", "ptr", "void"]},
        "size": {"type": "integer", "minimum": 0, "maximum": MAX_RECORD},
        "name": _NAME,
        "signed": {"type": "boolean"}, "bool": {"type": "boolean"}, "char": {"type": "boolean"},
        "count": {"type": "integer", "minimum": 0, "maximum": MAX_RECORD},
        "elem": {"$ref": "#/$defs/type"},
        "members": {"type": "array", "maxItems": MAX_ITEMS, "items": {
            "type": "object", "required": ["name", "type", "bit_offset", "bit_size"],
            "properties": {"name": _NAME, "type": {"$ref": "#/$defs/type"},
                           "bit_offset": {"type": "integer", "minimum": 0, "maximum": MAX_RECORD * 8},
                           "bit_size": {"type": "integer", "minimum": 0, "maximum": 64}}}},
        "values": {"type": "array", "maxItems": MAX_ITEMS, "items": {
            "type": "array", "minItems": 2, "maxItems": 2,
            "prefixItems": [_NAME, {"type": "integer", "minimum": -(1 << 63), "maximum": (1 << 64) - 1}]}},
    },
    "allOf": [
        {"if": {"properties": {"kind": {"const": "array"}}}, "then": {"required": ["count", "elem"]}},
        {"if": {"properties": {"kind": {"enum": ["struct", "union"]}}}, "then": {"required": ["members"]}},
        {"if": {"properties": {"kind": {"const": "enum"}}}, "then": {"required": ["values"]}},
        {"if": {"properties": {"kind": {"enum": ["int", "enum"]}}},
         "then": {"properties": {"size": {"enum": [1, 2, 4, 8, 16]}}}},
        {"if": {"properties": {"kind": {"const": "float"}}}, "then": {"properties": {"size": {"enum": [2, 4, 8, 16]}}}},
    ],
}

SCHEMA: Dict[str, Any] = {
    "$schema": "https://json-schema.org/draft/2020-12/schema",
    "$defs": {"type": _TYPE},
    "type": "object",
    "required": ["bpf_object"],
    "properties": {
        "bpf_object": {"type": "string", "maxLength": MAX_TEXT},
        "bpf_object_size": {"type": "integer", "minimum": 0, "maximum": MAX_OBJECT},
        "meta": {"type": "object", "properties": {
            "bpf_skel": {"type": "object", "properties": {
                "obj_name": _NAME,
                "doc": {"type": "object", "properties": {"description": _HELP}},
                "progs": {"type": "array", "maxItems": MAX_ITEMS, "items": {
                    "type": "object", "properties": {
                        "name": _NAME, "attach": {"type": "string", "maxLength": MAX_HELP}, "description": _HELP,
                        "tchook": _SMALL_OBJECT, "tcopts": _SMALL_OBJECT, "xdpopts": _SMALL_OBJECT}}},
                "maps": {"type": "array", "maxItems": MAX_ITEMS, "items": {
                    "type": "object", "properties": {
                        "name": _NAME, "ident": _NAME, "description": _HELP,
                        "sample": {"type": "object", "properties": {
                            "type": _NAME, "unit": _NAME, "clear_map": {"type": "boolean"},
                            "interval": {"type": "number"}}}}}},
                "data_sections": {"type": "array", "maxItems": MAX_ITEMS, "items": {
                    "type": "object", "properties": {
                        "name": _NAME,
                        "variables": {"type": "array", "maxItems": MAX_ITEMS, "items": {
                            "type": "object", "properties": {
                                "name": _NAME, "type": _NAME, "value": _SCALAR, "description": _HELP,
                                "cmdarg": {"type": "object", "properties": {
                                    "long": {"type": "string", "maxLength": MAX_NAME,
                                             "pattern": "^([A-Za-z0-9][A-Za-z0-9_-]*)?$"},
                                    "short": _NAME, "help": _HELP,
                                    "default": _SCALAR}}}}}}}}}},
            "export_types": {"type": "array", "maxItems": MAX_ITEMS, "items": {
                "type": "object", "properties": {"name": _NAME}}}}},
        "wasm_bpf": {"type": "object", "properties": {
            "format": {"type": "integer"},
            "records": {**_OBJECT_OF_NAMES, "additionalProperties": {"$ref": "#/$defs/type"}},
            "attach": {**_OBJECT_OF_NAMES, "additionalProperties": {"type": "string", "maxLength": 4096}},
            "annotations": {"type": "object", "maxProperties": MAX_ITEMS,
                            "propertyNames": {"maxLength": 3 * MAX_NAME}, "additionalProperties": _HELP}}},
    },
}

_STRUCTURAL = re.compile(r'["\\\[\]{}]')
# JSON Schema counts 0.0 as an integer; the decoder slices and shifts with these values,
# so an integer here is what Python's json made an int (not a float, not a bool).
_STRICT_TYPES = jsonschema.Draft202012Validator.TYPE_CHECKER.redefine(
    "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool))
_VALIDATOR = jsonschema.validators.extend(jsonschema.Draft202012Validator, type_checker=_STRICT_TYPES)(SCHEMA)
_SAYS = {
    "type": "must be {value}", "maxLength": "is longer than {value} characters", "pattern": "is not a flag name",
    "maxItems": "has more than {value} items", "maxProperties": "has more than {value} entries",
    "minItems": "has fewer than {value} items", "maximum": "is over {value}", "minimum": "is under {value}",
    "enum": "must be one of {value}", "const": "must be {value}", "anyOf": "must be a string, number or boolean",
}


def parse(text: str, what: str) -> Dict[str, Any]:
    """The package document, checked against every bound; SpecError otherwise."""
    if len(text) > MAX_TEXT:
        raise SpecError(f"{what} is {len(text)} bytes, over the {MAX_TEXT >> 20} MiB a package may be")
    depth = _depth(text)
    if depth > MAX_DEPTH:
        raise SpecError(f"{what} nests arrays and objects {depth} deep, over the {MAX_DEPTH} a package may")
    try:
        doc = json.loads(text)
    except ValueError as e:
        raise SpecError(f"{what} is not JSON ({e}): give a package written by 'wasm-bpf package' "
                        "or an eunomia-bpf package.json") from None
    if not isinstance(doc, dict) or "bpf_object" not in doc:
        raise SpecError(f"{what} has no \"bpf_object\": it is not a wasm-bpf or eunomia-bpf package "
                        "(write one with 'wasm-bpf package prog.bpf.o -o prog.json')")
    error = jsonschema.exceptions.best_match(_VALIDATOR.iter_errors(doc))
    if error is not None:
        raise SpecError(f"{what}: {error.json_path} {_describe(error)}: the package is damaged "
                        "(write it again with 'wasm-bpf package')")
    for name, record in (doc.get("wasm_bpf") or {}).get("records", {}).items():
        check_type(record, f"{what}: the record type of {name!r}")
    return doc


def _depth(text: str) -> int:
    """The deepest nesting of [ and { outside strings, without recursion (the runs
    of base64 between the characters that matter are skipped by the regex)."""
    depth = deepest = 0
    in_string, escape_at = False, -1
    for match in _STRUCTURAL.finditer(text):
        ch, pos = match.group(), match.start()
        if in_string:
            if pos == escape_at:
                continue
            if ch == "\\":
                escape_at = pos + 1
            elif ch == '"':
                in_string = False
        elif ch == '"':
            in_string = True
        elif ch in "[{":
            depth += 1
            deepest = max(deepest, depth)
        elif ch in "]}":
            depth -= 1
    return deepest


def _describe(error: "jsonschema.ValidationError") -> str:
    says = _SAYS.get(str(error.validator))
    if says is None:
        return error.message[:200]
    value = error.validator_value
    if isinstance(value, list):
        value = ", ".join(map(str, value))
    return says.format(value=value)


def check_type(t: Type, where: str) -> None:
    """Raises SpecError unless decoding a record of type t stays within its size and
    MAX_VALUES values (t has passed the schema: keys and ranges are there)."""
    if _values(t, where) > MAX_VALUES:
        raise SpecError(f"{where}: one record would decode into more than {MAX_VALUES} values")


def _values(t: Type, where: str) -> int:
    kind, size = t["kind"], t["size"]
    if kind == "array":
        elem = t["elem"]
        if elem["size"] == 0 or elem["size"] * t["count"] != size:
            raise SpecError(f"{where}: an array of {t['count']} x {elem['size']} bytes cannot be {size} bytes")
        if elem["kind"] == "int" and elem["size"] == 1:
            return 1  # bytes and strings are decoded as one value
        return t["count"] * _values(elem, where)
    if kind in ("struct", "union"):
        total = 1
        for m in t["members"]:
            bits = m["bit_size"] or m["type"]["size"] * 8
            if m["bit_offset"] + bits > size * 8:
                raise SpecError(f"{where}: member {m['name']!r} lies outside its {size}-byte {kind}")
            total += _values(m["type"], where)
            if total > MAX_VALUES:
                break
        return total
    return 1
