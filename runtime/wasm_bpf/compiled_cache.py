"""Compiled guest modules kept between runs, so that a run does not compile its guest.

An entry is wasmtime's serialized module, under ROOT/compiled/ (ROOT: $WASM_BPF_CACHE,
else $XDG_CACHE_HOME/wasm-bpf, else ~/.cache/wasm-bpf), named by the sha256 of the
module's bytes, the wasmtime library and the engine settings. Deserializing is
loading machine code: only a file this process's user wrote (mode 0600) in a
directory only it can write (0700, its own) is used, opened once without following
links; anything else is ignored, and an entry wasmtime refuses (corrupt, another
wasmtime) is compiled again and rewritten."""
from __future__ import annotations

import os
import stat
from pathlib import Path
from typing import TYPE_CHECKING, Callable, Optional

# CPython's own sha256 (3.11: _sha256, 3.12: _sha2): hashlib would load OpenSSL for it,
# 3.7 MiB of resident memory and ~2.5 ms at every start.
try:
    from _sha256 import sha256  # type: ignore[import-not-found]  # no stubs
except ImportError:  # pragma: no cover - other Pythons
    from hashlib import sha256

if TYPE_CHECKING:  # cache_root() is also the pulled artifacts' (distribution/), which need no wasmtime
    import wasmtime


def cache_root() -> Path:
    """Where wasm-bpf keeps what it caches (compiled modules, pulled artifacts)."""
    if os.environ.get("WASM_BPF_CACHE"):
        return Path(os.environ["WASM_BPF_CACHE"])
    return Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "wasm-bpf"


def _wasmtime_identity() -> bytes:
    """The wasmtime library this process uses: a new wasmtime is a new file (its
    version would need importlib.metadata, ~14 ms at start-up)."""
    from wasmtime import _ffi

    st = os.stat(_ffi.filename)
    return f"{_ffi.filename}:{st.st_size}:{st.st_mtime_ns}".encode()


def _private(st: os.stat_result, kind: Callable[[int], bool]) -> bool:
    return kind(st.st_mode) and st.st_uid == os.geteuid() and not st.st_mode & 0o077


class CompiledCache:
    """The entries of one directory, for engines made with one set of settings."""

    def __init__(self, engine_settings: str, directory: Optional[Path] = None) -> None:
        self.directory = directory or cache_root() / "compiled"
        self._salt = _wasmtime_identity() + b"\0" + engine_settings.encode() + b"\0"

    def _name(self, wasm: bytes) -> str:
        return sha256(self._salt + wasm).hexdigest()

    def _open_dir(self) -> Optional[int]:
        """The directory, created 0700 if missing; None when someone else could write to it."""
        try:
            self.directory.mkdir(mode=0o700, parents=True, exist_ok=True)
            fd = os.open(self.directory, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW | os.O_CLOEXEC)
        except OSError:
            return None
        if not _private(os.fstat(fd), stat.S_ISDIR):
            os.close(fd)
            return None
        return fd

    def load(self, engine: wasmtime.Engine, wasm: bytes) -> Optional[wasmtime.Module]:
        """The cached compilation of `wasm` in `engine`, or None (no usable entry)."""
        dir_fd = self._open_dir()
        if dir_fd is None:
            return None
        try:
            fd = os.open(self._name(wasm), os.O_RDONLY | os.O_NOFOLLOW | os.O_CLOEXEC, dir_fd=dir_fd)
        except OSError:
            return None
        finally:
            os.close(dir_fd)
        import wasmtime

        try:
            if not _private(os.fstat(fd), stat.S_ISREG):
                return None
            # the opened file itself, not its name again; wasmtime maps it
            return wasmtime.Module.deserialize_file(engine, f"/proc/self/fd/{fd}")
        except wasmtime.WasmtimeError:
            return None
        finally:
            os.close(fd)

    def store(self, wasm: bytes, compiled: wasmtime.Module) -> None:
        """Writes the entry atomically (a temporary file renamed over it). A cache that
        cannot be written (read-only home, full disk) is only a slower next start."""
        dir_fd = self._open_dir()
        if dir_fd is None:
            return
        name = self._name(wasm)
        tmp = f".tmp-{name}-{os.getpid()}"
        try:
            fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW | os.O_CLOEXEC, 0o600,
                         dir_fd=dir_fd)
            with os.fdopen(fd, "wb") as f:
                f.write(compiled.serialize())
            os.replace(tmp, name, src_dir_fd=dir_fd, dst_dir_fd=dir_fd)
        except OSError:
            try:
                os.unlink(tmp, dir_fd=dir_fd)
            except OSError:
                pass
        finally:
            os.close(dir_fd)
