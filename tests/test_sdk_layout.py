"""wasm32 layouts from BTF: the generated header reproduces the BPF layout byte for
byte, picks the object's own types, and the skeleton of globals of every kind of
type compiles with its static asserts."""
import re
import struct
import subprocess
import sys

import pytest

from sdk_fixtures.sdk_helpers import (FIXTURES, compile_bpf, compile_wasm, elf_symbol_bytes,
                                      run_wasi)
from wasm_bpf_sdk import header, skeleton
from wasm_bpf_sdk.btf import Btf, BtfError

pytestmark = pytest.mark.unit  # kernel-free (make test-unit)


@pytest.fixture(scope="module")
def layouts(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("layouts")
    obj = compile_bpf(FIXTURES / "layouts.bpf.c", tmp / "layouts.bpf.o")
    (tmp / "layouts.wasm.h").write_text(header.generate(obj))
    return tmp, obj


def test_header_reproduces_bpf_layout(layouts):
    """Same initializer, same offsetof/sizeof questions: clang for BPF over the
    original types vs. clang for wasm32 over the generated header."""
    tmp, obj = layouts
    module = compile_wasm([FIXTURES / "layouts_wasm.c"], tmp / "layouts.wasm", tmp)
    out = dict(line.split(" ", 1) for line in run_wasi(module, tmp).splitlines())
    bpf_image = elf_symbol_bytes(obj, "lt_image")
    assert bytes.fromhex(out["image"]) == bpf_image
    raw = elf_symbol_bytes(obj, "lt_facts")
    bpf_facts = list(struct.unpack(f"<{len(raw) // 8}Q", raw))
    assert [int(x) for x in out["facts"].split()] == bpf_facts
    # The image really exercises the interesting members (not all zeros).
    assert b"hello world!" in bpf_image and bpf_image.count(0) < len(bpf_image) * 0.8


def test_header_static_asserts_catch_wrong_layouts(layouts, tmp_path):
    """The asserts are live: a header edited to the native wasm32 spelling fails."""
    tmp, _ = layouts
    text = (tmp / "layouts.wasm.h").read_text()
    broken = text.replace("int64_t l;  /* long */", "long l;", 1)
    assert broken != text
    (tmp_path / "layouts.wasm.h").write_text(broken)
    with pytest.raises(AssertionError, match="static assertion failed"):
        compile_wasm([FIXTURES / "layouts_wasm.c"], tmp_path / "x.wasm", tmp_path)


def test_header_forms(layouts):
    tmp, _ = layouts
    text = (tmp / "layouts.wasm.h").read_text()
    assert "struct __attribute__((packed)) lt_all {" in text
    assert "int64_t l;  /* long */" in text and "uint64_t ul;  /* unsigned long */" in text
    assert "uint64_t str;  /* char * */" in text and "uint64_t ptr_in;" in text
    assert "int32_t col;  /* enum lt_color */" in text and "uint8_t sm;" in text
    assert "LT_BLUE = -7," in text and "LT_BIG_B = 78187493530ULL," in text
    assert re.search(r"typedef struct __attribute__\(\(packed\)\) \{.*?\} lt_pair_t;", text, re.S)
    assert "lt_pair_t pairs[2][3];" in text and "int32_t matrix[2][3][4];" in text
    assert "uint32_t t;  /* lt_u32_t */" in text  # scalar typedefs resolved, noted
    # Dependency order: every type is defined before its first by-value use.
    assert text.index("struct __attribute__((packed)) lt_inner {") < text.index("struct lt_inner in;")
    assert text.index("} lt_pair_t;") < text.index("lt_pair_t pairs")


def test_header_default_selection_skips_kernel_types(tmp_path):
    """Kernel types (present in vmlinux BTF) and CO-RE flavors are not emitted by
    name; a kernel struct embedded by value is written inline."""
    src = tmp_path / "k.bpf.c"
    src.write_text(
        "#include <linux/types.h>\n"
        "struct timespec64 { long long tv_sec; long tv_nsec; };\n"
        "struct task_struct___old { int x; };\n"
        "struct my_event { int pid; struct timespec64 ts; };\n"
        "struct my_event *ev_unused __attribute__((unused));\n"
        "struct task_struct___old *flavor_unused __attribute__((unused));\n")
    obj = compile_bpf(src, tmp_path / "k.bpf.o")
    text = header.generate(obj)
    assert "struct __attribute__((packed)) my_event {" in text
    assert "timespec64 {" not in text and "} ts;" in text and "/* struct timespec64 */" in text
    assert "task_struct___old" not in text
    # Named on request, even a kernel type; unknown names are errors.
    assert "struct __attribute__((packed)) timespec64 {" in header.generate(obj, ["struct timespec64"])
    with pytest.raises(BtfError, match="no type 'nope'"):
        header.generate(obj, ["nope"])
    # Without the kernel filter, every named type is the object's own.
    assert "struct __attribute__((packed)) timespec64 {" in header.generate(obj, kernel_btf=None)


def test_header_cli(layouts, tmp_path):
    _, obj = layouts
    proc = subprocess.run([sys.executable, "-m", "wasm_bpf_sdk.cli", "gen", "header", str(obj),
                           "union lt_num", "-o", str(tmp_path / "h.h")], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stderr
    text = (tmp_path / "h.h").read_text()
    assert "union __attribute__((packed)) lt_num {" in text and "struct lt_all" not in text


@pytest.fixture(scope="module")
def globals_obj(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("globals")
    return compile_bpf(FIXTURES / "globals.bpf.c", tmp / "globals.bpf.o")


def test_skeleton_of_every_global_type_compiles(globals_obj, tmp_path):
    skel = tmp_path / "globals.skel.h"
    skel.write_text(skeleton.generate(globals_obj))
    text = skel.read_text()
    for section in ("rodata", "data", "bss", "kconfig"):
        assert f"struct globals_bpf__{section} *{section};" in text
    assert "hidden_counter" not in text  # static variables are not exposed
    main = tmp_path / "main.c"
    main.write_text('#include "globals.skel.h"\n'
                    "int main(void) { struct globals_bpf *s = globals_bpf__open();\n"
                    "    return s && s->rodata && s->data && s->bss ? 0 : 1; }\n")
    compile_wasm([main], tmp_path / "main.wasm", tmp_path)
    # Each static assert is a real check: corrupt one expected offset.
    skel.write_text(re.sub(r"(offsetof\(struct globals_bpf__data, data_all\.l\) == )(\d+)",
                           lambda m: m.group(1) + str(int(m.group(2)) + 1), text, count=1))
    with pytest.raises(AssertionError, match="static assertion failed"):
        compile_wasm([main], tmp_path / "bad.wasm", tmp_path)


def test_skeleton_name_and_kconfig_layout(globals_obj):
    assert skeleton.default_name("/x/my-prog.bpf.o") == "my_prog"
    assert skeleton.default_name("plain.o") == "plain"
    text = skeleton.generate(globals_obj, name="other")
    assert "struct other_bpf {" in text and "other_bpf__open_and_load(void)" in text
    # libbpf's .kconfig order: alignment descending, then size, then name.
    with Btf.from_file(str(globals_obj)) as btf:
        members, size = skeleton.kconfig_layout(btf, btf.datasecs()[".kconfig"])
    assert [(m.name, m.bit_offset // 8) for m in members] == [
        ("CONFIG_HZ", 0), ("LINUX_KERNEL_VERSION", 8), ("CONFIG_BPF_JIT", 12),
        ("CONFIG_BPF_SYSCALL", 13)]
    assert size == 14
