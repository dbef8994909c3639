"""The compiled-module cache (runtime/wasm_bpf/compiled_cache.py): a run keeps its
guest compiled under $WASM_BPF_CACHE/compiled/ and the next run loads it instead of
compiling; only entries this user wrote, in a directory only it can write, are loaded."""
import os
import stat
import subprocess
import sys
from pathlib import Path

import pytest

import wasm_bpf

pytestmark = pytest.mark.unit

GUEST = """(module
  (import "wasi_snapshot_preview1" "proc_exit" (func $exit (param i32)))
  (memory (export "memory") 1)
  (func (export "_start") (call $exit (i32.const {status}))))"""


def guest(tmp_path: Path, status: int) -> Path:
    path = tmp_path / f"exit{status}.wat"
    path.write_text(GUEST.format(status=status))
    return path


@pytest.fixture
def cache(tmp_path, monkeypatch) -> Path:
    monkeypatch.setenv("WASM_BPF_CACHE", str(tmp_path / "cache"))
    return tmp_path / "cache" / "compiled"


def entries(cache: Path) -> dict:
    return {p.name: p.stat() for p in cache.iterdir()} if cache.is_dir() else {}


def run(module) -> int:
    return wasm_bpf.run(module).exit_code


def impostor(tmp_path: Path, cache: Path) -> Path:
    """The cache entry of exit3.wat, holding the compiled code of exit9.wat instead:
    a run that loaded it would exit 9."""
    assert run(guest(tmp_path, 3)) == 3
    (name3,) = entries(cache)
    assert run(guest(tmp_path, 9)) == 9
    (name9,) = set(entries(cache)) - {name3}
    os.replace(cache / name9, cache / name3)
    return cache / name3


def test_a_run_keeps_its_compiled_guest_and_the_next_run_loads_it(tmp_path, cache):
    module = guest(tmp_path, 3)
    assert run(module) == 3
    (entry,) = cache.iterdir()
    assert stat.S_IMODE(cache.stat().st_mode) == 0o700
    assert stat.S_IMODE(entry.stat().st_mode) == 0o600
    before = entry.stat()
    assert run(module) == 3
    after = entries(cache)
    assert list(after) == [entry.name] and after[entry.name].st_ino == before.st_ino  # loaded, not rewritten
    # the same bytes under another name are the same entry
    copy = tmp_path / "copy.wat"
    copy.write_bytes(module.read_bytes())
    assert run(copy) == 3 and list(entries(cache)) == [entry.name]


def test_the_entry_is_what_a_run_loads(tmp_path, cache):
    # the tests below rely on this: a swapped entry is loaded when it is trusted
    impostor(tmp_path, cache)
    assert run(guest(tmp_path, 3)) == 9


@pytest.mark.parametrize("damage", ["corrupt", "group-writable", "symlink"])
def test_a_damaged_or_foreign_entry_is_compiled_again_and_rewritten(tmp_path, cache, damage):
    entry = impostor(tmp_path, cache)
    if damage == "corrupt":
        entry.write_bytes(b"\x7fELF not a module at all")
    elif damage == "group-writable":
        entry.chmod(0o660)
    else:
        target = tmp_path / "elsewhere"
        os.replace(entry, target)
        target.chmod(0o600)
        entry.symlink_to(target)
    assert run(guest(tmp_path, 3)) == 3
    assert not entry.is_symlink() and stat.S_IMODE(entry.stat().st_mode) == 0o600
    assert run(guest(tmp_path, 3)) == 3  # the rewritten entry is the right one


def test_a_cache_directory_others_can_write_to_is_not_used(tmp_path, cache):
    impostor(tmp_path, cache)
    cache.chmod(0o777)
    before = entries(cache)
    assert run(guest(tmp_path, 3)) == 3
    assert run(guest(tmp_path, 4)) == 4
    assert entries(cache) == before  # nothing written there either


def test_no_cache_neither_loads_nor_stores(tmp_path, cache):
    impostor(tmp_path, cache)
    before = entries(cache)
    assert wasm_bpf.run(guest(tmp_path, 3), config=wasm_bpf.RunConfig(compile_cache=False)).exit_code == 3
    assert run(wasm_bpf.Module(guest(tmp_path, 5), cache=False)) == 5
    assert entries(cache) == before
    proc = subprocess.run([sys.executable, "-m", "wasm_bpf", "run", "--no-cache", str(guest(tmp_path, 3))],
                          capture_output=True, text=True, timeout=60, env=os.environ)
    assert proc.returncode == 3, proc.stderr
    proc = subprocess.run([sys.executable, "-m", "wasm_bpf", "run", str(guest(tmp_path, 3))],
                          capture_output=True, text=True, timeout=60, env=os.environ)
    assert proc.returncode == 9, proc.stderr  # the same run with the cache loads the swapped entry


def test_an_unwritable_cache_only_costs_the_compilation(tmp_path, monkeypatch):
    blocked = tmp_path / "file"
    blocked.write_text("a file where the cache directory would go")
    monkeypatch.setenv("WASM_BPF_CACHE", str(blocked))
    assert run(guest(tmp_path, 3)) == 3
