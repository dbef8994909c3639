"""A short form of `make fuzz` (docs/fuzzing.md): each target runs for FUZZ_TEST_SECONDS
(20 s) of freshly random hypothesis inputs and must find nothing; and the BPF objects
that crashed libbpf before elfcheck existed are refused with a message naming the cause."""
import os
from pathlib import Path

import pytest

from fuzz import attach_target, elf_target, imports_target, wasm_target  # importable: conftest.py puts the repository first
from fuzz.common import Stats
from fuzz.subproc import Worker

ROOT = Path(__file__).resolve().parent.parent

SECONDS = float(os.environ.get("FUZZ_TEST_SECONDS", 20))
REGRESSIONS = ROOT / "fuzz" / "regressions"


def _assert_clean(stats: Stats) -> None:
    assert stats.inputs > 0, f"{stats.target}: no input was tried"
    found = "\n".join(f"{f.kind}: {f.detail[:1500]} (input: {f.input_path})" for f in stats.findings)
    assert not stats.findings, f"{stats.summary()}\n{found}"


def test_fuzz_imports(tmp_path: Path) -> None:
    _assert_clean(imports_target.fuzz(SECONDS, tmp_path))


def test_fuzz_elf_loader(tmp_path: Path) -> None:
    stats = elf_target.fuzz(SECONDS, tmp_path)
    _assert_clean(stats)
    assert stats.outcomes["ok: loaded"] > 0  # some mutants still load: the loader path is reached


def test_fuzz_attach_targets(tmp_path: Path) -> None:
    stats = attach_target.fuzz(SECONDS / 2, tmp_path)
    _assert_clean(stats)
    assert any(o.startswith("ok: uprobe Uprobe") for o in stats.outcomes)  # some targets reach the attach
    assert any(o.startswith("ok: section") for o in stats.outcomes)


@pytest.mark.skipif(not wasm_target.wasm_modules(), reason="no example modules: run `make examples`")
def test_fuzz_wasm_modules(tmp_path: Path) -> None:
    stats = wasm_target.fuzz(SECONDS, tmp_path)
    _assert_clean(stats)
    assert any(o.startswith("ok: exit") for o in stats.outcomes)  # some mutants validate and run


# Found by the elf target: each of these killed the host with SIGSEGV inside libbpf 1.1
# (bpf_object__open_mem or bpf_object__load) before elfcheck.
CAUSES = {
    "struct-ops-in-maps.elf": "is a struct_ops map",
    "btf-member-type-id.elf": "refers to type",
    "btf-member-type-id-taskiter.elf": "refers to type",
    "btf-name-offset.elf": "outside its string table",
    "btf-ext-reloc-symbol.elf": "names symbol",
}


@pytest.mark.unit
@pytest.mark.parametrize("name", sorted(CAUSES))
def test_crashing_elf_is_refused(name: str) -> None:
    worker = Worker("elf")  # a regression would crash the worker, not pytest
    try:
        reply = worker.run((REGRESSIONS / name).read_bytes(), elf_target.TIMEOUT)
    finally:
        worker.close()
    assert reply["handle"] == 0
    message = reply["messages"][-1]
    assert "not a valid BPF ELF object" in message and CAUSES[name] in message, message
