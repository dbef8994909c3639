"""The local content-addressed cache: blobs/sha256/HEX (manifests, configs, layers,
signatures) and refs.json (REGISTRY/REPO:TAG -> manifest digest). A blob is hashed
again whenever it is used, so a changed file in the cache is refused like a changed
one in the registry. Root: $WASM_BPF_CACHE, else $XDG_CACHE_HOME/wasm-bpf, else
~/.cache/wasm-bpf."""
import json
import os
import time
from pathlib import Path
from typing import Any, Dict, Iterator, List, Optional, Tuple

from ..compiled_cache import cache_root as default_root
from . import DistributionError
from .layout import digest_of, file_name, runnable_layer


def _write_atomically(path: Path, data: bytes) -> None:
    import tempfile  # only when storing: a warm run reads
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(dir=path.parent, prefix=".tmp-")
    with os.fdopen(fd, "wb") as f:
        f.write(data)
    os.replace(tmp, path)


class Cache:
    def __init__(self, root: Optional[Path] = None) -> None:
        self.root = root or default_root()
        self._index = self.root / "refs.json"

    # ---- blobs ------------------------------------------------------------------------
    def blob_path(self, digest: str) -> Path:
        algorithm, _, hex_digest = digest.partition(":")
        return self.root / "blobs" / algorithm / hex_digest

    def has(self, digest: str) -> bool:
        return self.blob_path(digest).is_file()

    def put(self, data: bytes, digest: Optional[str] = None, where: str = "") -> str:
        """Stores DATA; with DIGEST, only if the bytes have it (a tampered download is refused)."""
        actual = digest_of(data)
        if digest is not None and actual != digest:
            raise DistributionError(f"{where or digest}: content does not match its digest (got {actual}): "
                                    "the artifact was changed after it was pushed; refusing it")
        if not self.has(actual):
            _write_atomically(self.blob_path(actual), data)
        return actual

    def read(self, digest: str) -> bytes:
        fix = "forget the reference (`wasm-bpf images --rm REF`) and pull it again"
        try:
            data = self.blob_path(digest).read_bytes()
        except OSError as exc:
            raise DistributionError(f"cached blob {digest} cannot be read ({exc.strerror}); {fix}") from None
        if digest_of(data) != digest:
            raise DistributionError(f"cached blob {digest} was changed on disk ({self.blob_path(digest)}); {fix}")
        return data

    def read_json(self, digest: str) -> Dict[str, Any]:
        try:
            return json.loads(self.read(digest))
        except ValueError:
            raise DistributionError(f"blob {digest} is not JSON; it is not a manifest") from None

    def runnable_file(self, manifest_digest: str, where: str) -> str:
        """The artifact's runnable layer, checked against its digest, under its own title."""
        layer = runnable_layer(self.read_json(manifest_digest), where)
        return self.named_file(layer["digest"], file_name(layer))

    def named_file(self, digest: str, name: str) -> str:
        """Blob DIGEST (checked) as files/HEX/NAME: `run` and the kernel-only runner
        go by the file's name and suffix."""
        data = self.read(digest)
        path = self.root / "files" / digest.partition(":")[2] / name
        if not path.exists():
            _write_atomically(path, data)
        return str(path)

    # ---- references ---------------------------------------------------------------------
    def refs(self) -> Dict[str, Dict[str, Any]]:
        try:
            return json.loads(self._index.read_text())
        except FileNotFoundError:
            return {}
        except ValueError:
            raise DistributionError(f"{self._index} is not valid JSON; delete it and pull again") from None

    def ref_digest(self, ref: str) -> Optional[str]:
        entry = self.refs().get(ref)
        return entry["digest"] if entry and self.has(entry["digest"]) else None

    def set_ref(self, ref: str, digest: str) -> None:
        refs = self.refs()
        refs[ref] = {"digest": digest, "stored": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())}
        _write_atomically(self._index, json.dumps(refs, indent=1, sort_keys=True).encode())

    def remove_ref(self, ref: str) -> bool:
        """Forgets REF, and its signatures when no other reference names the same digest."""
        refs = self.refs()
        entry = refs.pop(ref, None)
        if entry is None:
            return False
        name = ref.rpartition("@")[0] if "@" in ref else ref.rpartition(":")[0]
        if not any(other["digest"] == entry["digest"] for other in refs.values()):
            refs.pop(f"{name}:{entry['digest'].replace(':', '-')}.sig", None)
        _write_atomically(self._index, json.dumps(refs, indent=1, sort_keys=True).encode())
        return True

    def _blobs(self) -> Iterator[Path]:
        yield from (p for p in (self.root / "blobs").glob("*/*") if p.is_file())

    def _reachable(self) -> set:
        keep = set()
        for entry in self.refs().values():
            keep.add(entry["digest"])
            try:
                manifest = self.read_json(entry["digest"])
            except (OSError, DistributionError):
                continue
            keep.update(d["digest"] for d in [manifest.get("config") or {}, *(manifest.get("layers") or ())]
                        if "digest" in d)
        return keep

    def prune(self) -> Tuple[int, int]:
        """Removes blobs and files no reference reaches; returns (count, bytes)."""
        keep = {d.partition(":")[2] for d in self._reachable()}
        count = size = 0
        for path in self._blobs():
            if path.name not in keep:
                count, size = count + 1, size + path.stat().st_size
                path.unlink()
        for entry in (self.root / "files").glob("*"):  # HEX/TITLE and HEX.inspect.json
            if entry.name.partition(".")[0] not in keep:
                if entry.is_dir():
                    for path in entry.iterdir():
                        path.unlink()
                    entry.rmdir()
                else:
                    entry.unlink()
        return count, size

    def listing(self) -> List[Tuple[str, str, int, bool, str]]:
        """(reference, digest, size of its blobs, signature cached, stored) for every
        stored reference but the signatures (sha256-HEX.sig tags)."""
        refs, rows = self.refs(), []
        for ref, entry in sorted(refs.items()):
            if ref.endswith(".sig"):
                continue
            size = 0
            try:
                manifest = self.read_json(entry["digest"])
                size = sum(d.get("size", 0) for d in [manifest.get("config") or {}, *(manifest.get("layers") or ())])
            except (OSError, DistributionError):
                pass
            name = ref.rpartition("@")[0] if "@" in ref else ref.rpartition(":")[0]
            signed = f"{name}:{entry['digest'].replace(':', '-')}.sig" in refs
            rows.append((ref, entry["digest"], size, signed, entry.get("stored", "")))
        return rows
