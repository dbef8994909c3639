"""Kernel-only packages from anyone (issue 13, finding 9; docs/kernel-only.md): a
malformed or hostile JSON package is one clear line, never a Python traceback, and
nothing it declares makes the host allocate or work without bound. The fuzz test
replaces parts of a valid package with random JSON."""
import base64
import copy
import json
import subprocess
import sys
import zlib

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from ko_helpers import FIXTURES, compile_bpf
from wasm_bpf.kernel_only import package as P
from wasm_bpf.kernel_only import runner as R
from wasm_bpf.kernel_only.decode import RecordDecoder
from wasm_bpf.kernel_only.flags import flags_of
from wasm_bpf.kernel_only.spec import SpecError, inspect


@pytest.fixture(scope="module")
def valid(tmp_path_factory):
    """A package of tests/kernel_only_fixtures/kinds.bpf.c, as a dict."""
    obj = compile_bpf(FIXTURES / "kinds.bpf.c", tmp_path_factory.mktemp("pkg") / "kinds.bpf.o")
    return json.loads(P.write(inspect(obj.read_bytes(), str(obj))))


def use(text: str, tmp_path) -> None:
    """Everything the runner does with a package before the kernel: read it, inspect
    its object, build its flags and help, and decode one record of each buffer."""
    path = tmp_path / "pkg.json"
    path.write_text(text)
    spec, pkg = R.load_input(str(path))
    R._parser(spec, "wasm-bpf run pkg.json", flags_of(spec.globals, spec.annotations.flag_overrides())).format_help()
    for m in spec.buffers():
        if m.record is not None:
            RecordDecoder(m.record).row(b"")


def with_change(doc, path, value):
    doc = copy.deepcopy(doc)
    node = doc
    for key in path[:-1]:
        node = node[key]
    node[path[-1]] = value
    return json.dumps(doc)


def bomb() -> str:
    return base64.b64encode(zlib.compress(bytes(100 << 20), 9)).decode()


HUGE_RECORD = {"kind": "struct", "name": "struct e", "size": 10 ** 9, "members": []}
CASES = {  # what used to escape as a traceback (or allocate without bound) -> the line now
    "meta-list": (("meta",), [], r"\$\.meta must be object"),
    "skel-string": (("meta", "bpf_skel"), "x", r"\$\.meta\.bpf_skel must be object"),
    "section-number": (("meta", "bpf_skel", "data_sections"), [1], r"data_sections\[0\] must be object"),
    "record-no-size": (("wasm_bpf", "records", "events"), {"kind": "struct", "members": []},
                       r"'size' is a required property"),
    "record-1e9": (("wasm_bpf", "records", "events"), HUGE_RECORD, r"records\.events\.size is over 1048576"),
    "array-count": (("wasm_bpf", "records", "events"),
                    {"kind": "array", "size": 8, "count": 10 ** 6, "elem": {"kind": "void", "size": 0}},
                    r"an array of 1000000 x 0 bytes cannot be 8 bytes"),
    "member-outside": (("wasm_bpf", "records", "events"),
                       {"kind": "struct", "size": 4, "members": [{"name": "x", "bit_offset": 64, "bit_size": 0,
                                                                 "type": {"kind": "int", "size": 4}}]},
                       r"member 'x' lies outside its 4-byte struct"),
    "offset-float": (("wasm_bpf", "records", "events"),  # JSON Schema's "integer" takes 0.0; the decoder cannot
                     {"kind": "struct", "size": 4, "members": [{"name": "x", "bit_offset": 0.0, "bit_size": 0,
                                                               "type": {"kind": "int", "size": 4}}]},
                     r"bit_offset must be integer"),
    "size-true": (("wasm_bpf", "records", "events"), {"kind": "int", "size": True}, r"size must be integer"),
    "object-int": (("bpf_object",), 5, r"\$\.bpf_object must be string"),
    "object-unicode": (("bpf_object",), "é" * 8, r"\"bpf_object\" is not base64"),
    "object-bomb": (("bpf_object",), None, r"inflates past 64 MiB"),
    "flag-name": (("meta", "bpf_skel", "data_sections"),
                  [{"name": ".rodata", "variables": [{"name": "x", "cmdarg": {"long": "--x y"}}]}],
                  r"cmdarg\.long is not a flag name"),
    "enum-pair": (("wasm_bpf", "records", "events"), {"kind": "enum", "size": 4, "values": [["A"]]},
                  r"has fewer than 2 items"),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_malformed_package_is_one_line(valid, tmp_path, case):
    path, value, error = CASES[case]
    text = with_change(valid, path, bomb() if case == "object-bomb" else value)
    with pytest.raises(SpecError, match=error) as info:
        use(text, tmp_path)
    assert "\n" not in str(info.value)


@pytest.mark.parametrize("text,error", [('{"a": ' + "[" * 100000 + "]" * 100000 + "}", r"nests arrays and objects 100001 deep"),
                                        ('{"bpf_object": ' + "[" * 300 + "]" * 300 + "}", r"301 deep")],
                         ids=["deep", "deep-object"])
def test_deep_json_is_one_line(tmp_path, text, error):
    with pytest.raises(SpecError, match=error):
        use(text, tmp_path)


def test_the_cli_prints_one_line_for_a_hostile_package(valid, tmp_path):
    path = tmp_path / "hostile.json"
    path.write_text(with_change(valid, ("wasm_bpf", "records", "events"), HUGE_RECORD))
    proc = subprocess.run([sys.executable, "-m", "wasm_bpf", "run", str(path)], capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
    assert proc.stderr.startswith("wasm-bpf: error: ") and "is over 1048576" in proc.stderr


def _paths(doc, prefix=()):
    """Every (path) of a JSON document, except inside the object's base64."""
    yield prefix
    if isinstance(doc, dict):
        for key, value in doc.items():
            if key != "bpf_object":
                yield from _paths(value, prefix + (key,))
    elif isinstance(doc, list):
        for i, value in enumerate(doc):
            yield from _paths(value, prefix + (i,))


JSON = st.recursive(st.none() | st.booleans() | st.integers(-2 ** 70, 2 ** 70) | st.floats(allow_nan=False)
                    | st.text(max_size=20),
                    lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=8), inner, max_size=4),
                    max_leaves=12)


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_fuzz_random_changes_are_used_or_refused_in_one_line(valid, tmp_path, data):
    paths = [p for p in _paths(valid) if p]
    doc = valid
    for _ in range(data.draw(st.integers(1, 3))):
        path = data.draw(st.sampled_from(paths))
        doc = json.loads(with_change(doc, path, data.draw(JSON)))
        paths = [p for p in _paths(doc) if p]
    try:
        use(json.dumps(doc), tmp_path)
    except SpecError as exc:
        assert "\n" not in str(exc)


# ---- size (issue 14): at most 1.5x what ecc makes of the same program -----------------------
@pytest.fixture(scope="module")
def coresize(tmp_path_factory):
    """tests/kernel_only_fixtures/coresize.bpf.c (CO-RE, vmlinux.h) as `wasm-bpf run`
    builds it (clang -g -O2), and its package."""
    d = tmp_path_factory.mktemp("coresize")
    full = R.build_object(FIXTURES / "coresize.bpf.c")
    out = d / "coresize.json"
    assert R.package_command(str(FIXTURES / "coresize.bpf.c"), str(out)) == 0
    return full, out


def test_package_is_at_most_1_5x_ecc(coresize, tmp_path):
    """ecc's package of a program holds its object after `llvm-strip -g`, zlib-compressed
    and base64-encoded, plus a JSON skeleton: estimated here as that object's encoding
    plus our package's "meta" (the same skeleton keys)."""
    import shutil
    full, out = coresize
    strip = shutil.which("llvm-strip-19") or shutil.which("llvm-strip")
    if strip is None:
        pytest.skip("llvm-strip is not installed")
    (tmp_path / "full.bpf.o").write_bytes(full)
    subprocess.run([strip, "-g", str(tmp_path / "full.bpf.o"), "-o", str(tmp_path / "ecc.bpf.o")], check=True)
    doc = json.loads(out.read_text())
    ecc = len(base64.b64encode(zlib.compress((tmp_path / "ecc.bpf.o").read_bytes(), 9))) + len(json.dumps(doc["meta"]))
    size = out.stat().st_size
    assert size <= 1.5 * ecc, (size, ecc)
    elf = zlib.decompress(base64.b64decode(doc["bpf_object"]))
    assert b".debug_info" not in elf and b".BTF.ext" in elf and doc["bpf_object_size"] == len(elf)
    assert len(full) > 10 * size  # the DWARF of vmlinux.h is what is left out


def run_getppid(path):
    """Runs a package of coresize.bpf.c for this process's getppid(); its JSON records."""
    import io
    import os
    import threading
    import time
    out, err = io.StringIO(), io.StringIO()
    attached = threading.Event()
    done = threading.Thread(target=lambda: R.run(str(path), ["--json", "--timeout", "2", "--targ-tgid", str(os.getpid())],
                                                 out, err, attached=lambda *_: attached.set()))
    done.start()
    assert attached.wait(30), err.getvalue()
    os.getppid()
    time.sleep(0.3)
    done.join(30)
    return [json.loads(line) for line in out.getvalue().splitlines()], err.getvalue()


@pytest.mark.parametrize("old", [False, True], ids=["slim", "old-uncompressed-with-dwarf"])
def test_package_runs_with_events(coresize, tmp_path, old):
    """The slim package runs and decodes its records; so does one in the old form (the
    whole object, DWARF and all, base64 without zlib)."""
    import os
    full, out = coresize
    path = out
    if old:
        doc = json.loads(out.read_text())
        doc["bpf_object"], doc["bpf_object_size"] = base64.b64encode(full).decode(), len(full)
        path = tmp_path / "old.json"
        path.write_text(json.dumps(doc))
    records, err = run_getppid(path)
    mine = [r for r in records if r["tgid"] == os.getpid()]
    assert mine and mine[0]["parent_tgid"] == os.getppid(), (records, err)
