"""The daemon's persisted state (--state-dir, /var/lib/wasm-bpf by default):

  instances.json   the instances clients want running: id, name, source (its digest),
                   args, env, dirs, policy, limits; replaced atomically on each change
  modules/         their modules, content-addressed (distribution.cache.Cache), so a
                   restart runs the bytes that were checked, not what a path holds now
  cache/           modules pulled by reference (`ref`, `url`), as `wasm-bpf run REF`'s
  lock             held while a daemon uses the directory: one daemon per state

What is in instances.json makes the daemon load programs at its next start, so the
directory must be the daemon's alone: owned by it and writable by nobody else."""
import fcntl
import json
import os
import tempfile
from pathlib import Path
from typing import Any, Dict, List, Set

from ..errors import WasmBpfError

VERSION = 1


def private_dir(path: Path) -> None:
    """Creates PATH (0700) or checks that only its owner, this daemon's user, may write it."""
    path.mkdir(mode=0o700, parents=True, exist_ok=True)
    st = path.stat()
    if st.st_uid != os.geteuid() or st.st_mode & 0o022:
        raise WasmBpfError(f"{path} is writable by other users or not owned by uid {os.geteuid()}: what it holds "
                           f"would be trusted by the daemon (chmod 700 {path}, or choose another directory)")


class StateDir:
    def __init__(self, root: Path) -> None:
        from ..distribution.cache import Cache

        private_dir(root)
        self.root = root
        self._file = root / "instances.json"
        self._lock = os.open(root / "lock", os.O_RDWR | os.O_CREAT | os.O_CLOEXEC, 0o600)
        try:
            fcntl.flock(self._lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(self._lock)
            raise WasmBpfError(f"another daemon uses the state directory {root}; stop it, or give "
                               "--state-dir another directory") from None
        self.modules = Cache(root / "modules")
        self.cache = Cache(root / "cache")

    def load(self) -> List[Dict[str, Any]]:
        """The instance records of the last save ([] when none)."""
        try:
            state = json.loads(self._file.read_text())
        except FileNotFoundError:
            return []
        except ValueError:
            raise WasmBpfError(f"{self._file} is not valid JSON; move it away to start with no instances") from None
        if not isinstance(state, dict) or state.get("version") != VERSION:
            raise WasmBpfError(f"{self._file} is not a version {VERSION} state file; move it away to start with "
                               "no instances")
        return list(state.get("instances", []))

    def save(self, records: List[Dict[str, Any]], keep: Set[str]) -> None:
        """Replaces instances.json (written, synced, renamed: a crash leaves the old or
        the new one), then drops the modules neither a record nor KEEP names."""
        fd, tmp = tempfile.mkstemp(dir=self.root, prefix=".instances-")  # mode 0600: env may hold secrets
        with os.fdopen(fd, "w") as f:
            json.dump({"version": VERSION, "instances": records}, f, indent=1)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, self._file)
        named = {digest.partition(":")[2] for digest in {*keep, *(r["source"]["digest"] for r in records)}}
        for blob in (self.modules.root / "blobs" / "sha256").glob("*"):
            if blob.name not in named:
                blob.unlink()
