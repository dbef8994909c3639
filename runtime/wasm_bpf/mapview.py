"""BPF maps as Python dicts: keys and values decoded through the map's BTF types with
the kernel-only decoder (kernel_only/decode.py), and encoded back for writes.

Values are the decoder's nested form (numbers stay numbers, structs are dicts, char
arrays strings); per-CPU maps hold a list with one value per possible CPU; a value
struct with a `slots` (log2) or `linear_slots` array is a Histogram."""
from __future__ import annotations

import errno
import struct
from typing import TYPE_CHECKING, Any, Callable, Dict, Iterator, List, Optional, Set, Tuple

from ._native import ffi, lib, strerror
from .errors import HostCallError, WasmBpfError
from .kernel_only.decode import decode
from .kernel_only.mapprint import format_hist, hist_member
from .kernel_only.types import Type
from .maps import PERCPU_TYPES, MapInfo

if TYPE_CHECKING:
    from .bpf_object import BpfObject
    from .sandbox import Sandbox

# Arrays cannot delete an entry: clear() zeroes them.
ARRAY_TYPES = frozenset({lib.BPF_MAP_TYPE_ARRAY, lib.BPF_MAP_TYPE_PERCPU_ARRAY})
# Errors that mean "no batch operations on this map type or kernel": iterate by key.
NO_BATCH = frozenset({errno.EINVAL, errno.ENOTSUP, 524})  # 524: the kernel's ENOTSUPP
BATCH = 4096  # entries per batch lookup


class MapError(WasmBpfError):
    """A value that does not fit a map's key or value type, or a map the API cannot use."""


class Histogram:
    """One histogram value: `slots[i]` counts values in [2^i, 2^(i+1)) (log2; slot 0
    counts 0 and 1) or the value i (linear); `fields` are the value's other members.
    str() is the CLI's drawing."""

    def __init__(self, slots: List[int], mode: str, fields: Dict[str, Any], unit: str = "value") -> None:
        self.slots = slots
        self.mode = mode
        self.fields = fields
        self.unit = unit

    @property
    def buckets(self) -> List[Tuple[int, int, int]]:
        """(low, high, count) of every slot, in order; both bounds included."""
        if self.mode == "linear":
            return [(i, i, c) for i, c in enumerate(self.slots)]
        return [(0 if i == 0 else 1 << i, (1 << (i + 1)) - 1, c) for i, c in enumerate(self.slots)]

    @property
    def total(self) -> int:
        return sum(self.slots)

    def __str__(self) -> str:
        return "\n".join(format_hist(self.slots, self.mode, self.unit))

    def __repr__(self) -> str:
        return f"Histogram({self.mode}, total={self.total}, fields={self.fields!r})"

    def __eq__(self, other: object) -> bool:
        return isinstance(other, Histogram) and (self.slots, self.mode, self.fields) == \
            (other.slots, other.mode, other.fields)


# ---- Python values -> bytes -------------------------------------------------------------
def encode(t: Optional[Type], value: Any, size: int, what: str) -> bytes:
    """The bytes of value as type t (size bytes; raw bytes of that size always do).
    what names the value in errors ("key of map 'calls'")."""
    if isinstance(value, (bytes, bytearray)):
        if len(value) != size:
            raise MapError(f"{what}: {len(value)} bytes given, the type has {size}")
        return bytes(value)
    if t is None:
        raise MapError(f"{what}: the map has no BTF type for it, give {size} bytes")
    out = bytearray(size)
    _put(t, value, out, 0, 0, what)
    return bytes(out)


def _put(t: Type, value: Any, out: bytearray, bit_offset: int, bit_size: int, what: str) -> None:
    kind = t["kind"]
    if kind in ("int", "enum", "ptr"):
        if kind == "enum" and isinstance(value, str):
            names = dict((n, v) for n, v in t["values"])
            if value not in names:
                raise MapError(f"{what}: {value!r} is not one of {', '.join(names)}")
            value = names[value]
        if not isinstance(value, int):
            raise MapError(f"{what}: expected an integer for {t.get('name') or kind}, got {value!r}")
        bits = bit_size or t["size"] * 8
        signed = bool(t.get("signed"))
        lo, hi = (-(1 << (bits - 1)), (1 << (bits - 1)) - 1) if signed else (0, (1 << bits) - 1)
        if not lo <= value <= hi:
            raise MapError(f"{what}: {value} is out of range for {t.get('name') or kind} ({lo}..{hi})")
        _or_bits(out, bit_offset, bits, value & ((1 << bits) - 1))
    elif kind == "float":
        struct.pack_into({4: "<f", 8: "<d"}[t["size"]], out, bit_offset // 8, float(value))
    elif kind == "array":
        elem, count = t["elem"], t["count"]
        if isinstance(value, str) and elem["kind"] == "int" and elem["size"] == 1:
            raw = value.encode()
            if len(raw) > count:
                raise MapError(f"{what}: {value!r} is longer than {count} bytes")
            out[bit_offset // 8: bit_offset // 8 + len(raw)] = raw
            return
        if not isinstance(value, (list, tuple)) or len(value) > count:
            raise MapError(f"{what}: expected a list of at most {count} items for {t.get('name')}")
        for i, v in enumerate(value):
            _put(elem, v, out, bit_offset + i * elem["size"] * 8, 0, f"{what}[{i}]")
    elif kind in ("struct", "union"):
        if not isinstance(value, dict):
            raise MapError(f"{what}: expected a dict for {t.get('name') or kind}, got {value!r}")
        known = _field_names(t)
        unknown = sorted(set(value) - known)
        if unknown:
            raise MapError(f"{what}: {t.get('name') or kind} has no field {unknown[0]!r} "
                           f"(fields: {', '.join(sorted(known))})")
        for m in t["members"]:
            if not m["name"]:  # an anonymous member's fields are the parent's (as decoded)
                _put(m["type"], {k: v for k, v in value.items() if k in _field_names(m["type"])},
                     out, bit_offset + m["bit_offset"], 0, what)
            elif m["name"] in value:
                _put(m["type"], value[m["name"]], out, bit_offset + m["bit_offset"], m["bit_size"],
                     f"{what}.{m['name']}")
    else:
        raise MapError(f"{what}: cannot encode a {kind}")


def _field_names(t: Type) -> Set[str]:
    if t["kind"] not in ("struct", "union"):
        return set()
    names: Set[str] = set()
    for m in t["members"]:
        names |= _field_names(m["type"]) if not m["name"] else {m["name"]}
    return names


def _or_bits(out: bytearray, bit_offset: int, bits: int, value: int) -> None:
    start, end = bit_offset // 8, (bit_offset + bits + 7) // 8
    cur = int.from_bytes(out[start:end], "little") | (value << (bit_offset % 8))
    out[start:end] = cur.to_bytes(end - start, "little")


# ---- the map ------------------------------------------------------------------------------
class Map:
    """A BPF map as a dict: m[key], m.get(key), key in m, m[key] = value, del m[key],
    len(m), keys(), values(), items() (batch lookups where the kernel has them),
    clear(). Keys and values are decoded Python values (see the module doc); bytes of
    the exact size work for any key or value."""

    def __init__(self, name: str, fd: int, key_type: Optional[Type], value_type: Optional[Type],
                 owner: object = None, check_write: Optional[Callable[[str], None]] = None) -> None:
        """check_write(what) raises when the map may not be written (a guest's map and
        its policy)."""
        self.name = name
        self._check_write = check_write
        self.info = MapInfo.of_fd(fd)
        self.key_type, self.value_type = key_type, value_type
        self._owner = owner  # keeps the object (and so the fd) alive while the map is used
        self.percpu = self.info.type in PERCPU_TYPES
        self._ncpu = int(lib.libbpf_num_possible_cpus()) if self.percpu else 1
        self._stride = (self.info.value_size + 7) // 8 * 8 if self.percpu else self.info.value_size
        self._hist, self._hist_mode = hist_member(value_type)

    @property
    def fd(self) -> int:
        return self.info.fd

    @property
    def max_entries(self) -> int:
        return self.info.max_entries

    def __repr__(self) -> str:
        return f"<Map {self.name!r} fd={self.fd} max_entries={self.max_entries}>"

    # ---- bytes <-> values
    def _key(self, key: Any) -> Any:
        return ffi.from_buffer(encode(self.key_type, key, self.info.key_size, f"key of map {self.name!r}"))

    def _decode_key(self, raw: bytes) -> Any:
        return decode(self.key_type, raw) if self.key_type else raw

    def _decode_one(self, raw: bytes) -> Any:
        if self.value_type is None:
            return raw
        v = decode(self.value_type, raw)
        if self._hist and isinstance(v, dict):
            return Histogram(v[self._hist], self._hist_mode, {k: x for k, x in v.items() if k != self._hist})
        return v

    def _decode_value(self, raw: bytes) -> Any:
        if not self.percpu:
            return self._decode_one(raw)
        size = self.info.value_size
        return [self._decode_one(raw[i * self._stride: i * self._stride + size]) for i in range(self._ncpu)]

    def _encode_value(self, value: Any) -> bytes:
        what = f"value of map {self.name!r}"
        if isinstance(value, Histogram):
            value = {**value.fields, self._hist: value.slots}
        if not self.percpu:
            return encode(self.value_type, value, self.info.value_size, what)
        if not isinstance(value, list) or len(value) != self._ncpu:
            raise MapError(f"{what}: a per-CPU map takes a list of {self._ncpu} values (one per possible CPU)")
        pad = bytes(self._stride - self.info.value_size)
        return b"".join(encode(self.value_type, v, self.info.value_size, f"{what}[cpu {i}]") + pad
                        for i, v in enumerate(value))

    def _writing(self, what: str) -> None:
        if self._check_write is not None:
            self._check_write(what)

    # ---- single entries
    def _lookup(self, key: Any) -> Optional[bytes]:
        buf = ffi.new("char[]", max(self._stride * self._ncpu, 1))
        rc = lib.bpf_map_lookup_elem_flags(self.fd, self._key(key), buf, 0)
        if rc == -errno.ENOENT:
            return None
        if rc < 0:
            raise HostCallError(-rc, f"lookup in map {self.name!r}: {strerror(rc)}")
        return bytes(ffi.unpack(buf, self._stride * self._ncpu))

    def __getitem__(self, key: Any) -> Any:
        raw = self._lookup(key)
        if raw is None:
            raise KeyError(key)
        return self._decode_value(raw)

    def get(self, key: Any, default: Any = None) -> Any:
        raw = self._lookup(key)
        return default if raw is None else self._decode_value(raw)

    def __contains__(self, key: Any) -> bool:
        return self._lookup(key) is not None

    def __setitem__(self, key: Any, value: Any) -> None:
        self._writing("update")
        data = self._encode_value(value)
        rc = lib.bpf_map_update_elem(self.fd, self._key(key), ffi.from_buffer(data), 0)
        if rc < 0:
            raise HostCallError(-rc, f"update of map {self.name!r}: {strerror(rc)}")

    def __delitem__(self, key: Any) -> None:
        if self.info.type in ARRAY_TYPES:
            raise MapError(f"map {self.name!r} is an array: its entries cannot be deleted (assign zero, or clear())")
        self._writing("delete")
        rc = lib.bpf_map_delete_elem_flags(self.fd, self._key(key), 0)
        if rc == -errno.ENOENT:
            raise KeyError(key)
        if rc < 0:
            raise HostCallError(-rc, f"delete from map {self.name!r}: {strerror(rc)}")

    # ---- whole map
    def _raw_items(self) -> List[Tuple[bytes, bytes]]:
        """(key bytes, value bytes) of every entry: batch lookups, else key by key."""
        batched = self._batch_items()
        return batched if batched is not None else list(self._items_by_key())

    def _batch_items(self) -> Optional[List[Tuple[bytes, bytes]]]:
        """None when the map or kernel has no batch lookup."""
        ksz, vsz = self.info.key_size, self._stride * self._ncpu
        n = min(BATCH, max(self.info.max_entries, 1))
        keys, values = ffi.new("char[]", n * ksz), ffi.new("char[]", n * vsz)
        token_size = max(ksz, 4)
        tokens = [ffi.new("char[]", token_size), ffi.new("char[]", token_size)]
        count = ffi.new("uint32_t *")
        opts = ffi.new("struct bpf_map_batch_opts *")
        opts.sz = ffi.sizeof("struct bpf_map_batch_opts")
        out: List[Tuple[bytes, bytes]] = []
        first, done = True, False
        while not done:
            count[0] = n
            rc = lib.bpf_map_lookup_batch(self.fd, ffi.NULL if first else tokens[0], tokens[1], keys, values,
                                          count, opts)
            if (rc < 0 and -rc in NO_BATCH and first) or (rc == -errno.ENOSPC and count[0] == 0):
                return None  # ENOSPC: one hash bucket holds more than n entries
            if rc < 0 and rc != -errno.ENOENT:
                raise HostCallError(-rc, f"batch lookup in map {self.name!r}: {strerror(rc)}")
            done = rc == -errno.ENOENT
            got = int(count[0])
            kb, vb = ffi.unpack(keys, got * ksz), ffi.unpack(values, got * vsz)
            out.extend((kb[i * ksz:(i + 1) * ksz], vb[i * vsz:(i + 1) * vsz]) for i in range(got))
            tokens.reverse()  # this batch's end is the next one's start
            first = False
        return out

    def _items_by_key(self) -> Iterator[Tuple[bytes, bytes]]:
        ksz = self.info.key_size
        key, nxt = ffi.new("char[]", max(ksz, 1)), ffi.new("char[]", max(ksz, 1))
        value = ffi.new("char[]", max(self._stride * self._ncpu, 1))
        first = True
        while lib.bpf_map_get_next_key(self.fd, ffi.NULL if first else key, nxt) == 0:
            first = False
            ffi.memmove(key, nxt, ksz)
            if lib.bpf_map_lookup_elem_flags(self.fd, key, value, 0) == 0:  # else deleted meanwhile
                yield ffi.unpack(key, ksz), ffi.unpack(value, self._stride * self._ncpu)

    def items(self) -> List[Tuple[Any, Any]]:
        return [(self._decode_key(k), self._decode_value(v)) for k, v in self._raw_items()]

    def keys(self) -> List[Any]:
        return [self._decode_key(k) for k, _ in self._raw_items()]

    def values(self) -> List[Any]:
        return [self._decode_value(v) for _, v in self._raw_items()]

    def __iter__(self) -> Iterator[Any]:
        return iter(self.keys())

    def __len__(self) -> int:
        return len(self._raw_items())

    def clear(self) -> None:
        """Deletes every entry; an array's entries are zeroed instead."""
        self._writing("delete")
        raw_keys = [k for k, _ in self._raw_items()]
        if self.info.type in ARRAY_TYPES:
            zero = ffi.new("char[]", max(self._stride * self._ncpu, 1))
            for k in raw_keys:
                lib.bpf_map_update_elem(self.fd, ffi.from_buffer(k), zero, 0)
            return
        for k in raw_keys:
            lib.bpf_map_delete_elem_flags(self.fd, ffi.from_buffer(k), 0)


def guest_maps(obj: "BpfObject", sandbox: "Sandbox") -> Dict[str, Map]:
    """The maps of an object a guest loaded, typed from its BTF, each written only
    where the guest's policy lets the guest write it."""
    from .kernel_only.spec import SpecError, inspect

    try:
        specs = inspect(obj.elf, "guest object").maps
    except SpecError:  # no BTF: keys and values as bytes
        specs = []
    types = {m.name: (m.key, m.value) for m in specs}
    buffers = {m.name for m in specs if m.is_buffer}
    out = {}
    for name, _ in obj.maps():
        if name in buffers:
            continue
        fd = obj.map_fd(name)

        def check(what: str, fd: int = fd) -> None:
            sandbox.check_map_write(obj.maps(), fd, what)

        out[name] = Map(name, fd, *types.get(name, (None, None)), owner=obj, check_write=check)
    return out
