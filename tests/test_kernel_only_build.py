"""Building a .bpf.c for a kernel-only run: -I DIR (repeatable) and --cflags, the
-mcpu the kernel supports (v3 here: jmp32 instructions in the object) unless --cflags
chooses, and a name from a newer libbpf than the installed one named in one line."""
import base64
import io
import json
import os
import struct
import subprocess
import zlib

import pytest
from elftools.elf.elffile import ELFFile

from test_kernel_only_run import ko_run, wasm_bpf
from wasm_bpf.kernel_only.clang import installed_libbpf, kernel_mcpu

SOURCE = """\
#include <linux/bpf.h>
#include <linux/types.h>
#include <bpf/bpf_helpers.h>
#include "slot.h"
#include "step.h"

char LICENSE[] SEC("license") = "GPL";

const volatile __u32 targ_tgid = 0;
__u64 hits[4] = {};

SEC("tp/syscalls/sys_enter_getppid")
int on_getppid(void *ctx)
{
	__u32 tgid = bpf_get_current_pid_tgid() >> 32;

	if (tgid > 5 && tgid != targ_tgid)  /* a 32-bit compare: jmp32 with -mcpu=v3 */
		return 0;
#ifdef COUNT_TWICE
	__sync_fetch_and_add(&hits[SLOT], 2 * STEP);
#else
	__sync_fetch_and_add(&hits[SLOT], STEP);
#endif
	return 0;
}
"""


@pytest.fixture
def tree(tmp_path):
    """prog.bpf.c, and the two headers it includes in two other directories."""
    (tmp_path / "src").mkdir()
    (tmp_path / "inc1").mkdir()
    (tmp_path / "inc2").mkdir()
    (tmp_path / "inc1" / "slot.h").write_text("#define SLOT 3\n")
    (tmp_path / "inc2" / "step.h").write_text("#define STEP 5\n")
    src = tmp_path / "src" / "prog.bpf.c"
    src.write_text(SOURCE)
    return tmp_path, src


def run_cli(*args):
    return subprocess.run(wasm_bpf() + list(args), capture_output=True, text=True, timeout=120)


def getppid_three_times():
    for _ in range(3):
        os.getppid()


def hits(out):
    rows = [json.loads(line) for line in out.splitlines()]
    return [r for r in rows if r["map"] == ".bss"][-1]["hits"]


@pytest.mark.parametrize("cflags, per_call", [([], 5), (["--cflags", "-DCOUNT_TWICE -DUNUSED=1"], 10)])
def test_include_dirs_and_cflags(tree, cflags, per_call):
    """-I twice finds both headers; --cflags "-D..." reaches the compile (10 per call
    with COUNT_TWICE, 5 without)."""
    root, src = tree
    args = ["--json", "-I", str(root / "inc1"), "-I", str(root / "inc2"), *cflags, "--targ-tgid", str(os.getpid())]
    rc, out, err = ko_run(src, args, getppid_three_times, settle=0.4)
    assert rc == 0, err
    assert hits(out) == [0, 0, 0, 3 * per_call], out


@pytest.mark.unit
def test_without_the_include_dir_the_header_is_not_found(tree):
    root, src = tree
    proc = run_cli("run", str(src), "-I", str(root / "inc1"))
    assert proc.returncode == 1
    assert "'step.h' file not found" in proc.stderr, proc.stderr


def jmp32_count(package):
    """JMP32 instructions in the program of a package's object."""
    doc = json.loads(package.read_text())
    elf = ELFFile(io.BytesIO(zlib.decompress(base64.b64decode(doc["bpf_object"]))))
    code = elf.get_section_by_name("tp/syscalls/sys_enter_getppid").data()
    return sum(1 for (op,) in struct.iter_unpack("<B7x", code) if op & 0x07 == 0x06)


def test_mcpu_is_what_the_kernel_supports_unless_cflags_say(tree):
    """This kernel loads jmp32, so the build uses -mcpu=v3 and the object has jmp32
    instructions; --cflags=-mcpu=v2 gives an object without them."""
    root, src = tree
    assert kernel_mcpu() == "v3"
    inc = ["-I", str(root / "inc1"), "-I", str(root / "inc2")]
    v3, v2 = root / "v3.json", root / "v2.json"
    proc = run_cli("package", str(src), *inc, "-o", str(v3), "-v")
    assert proc.returncode == 0, proc.stderr
    assert " -mcpu=v3 " in proc.stderr, proc.stderr
    proc = run_cli("package", str(src), *inc, "--cflags", "-mcpu=v2", "-o", str(v2), "-v")
    assert proc.returncode == 0, proc.stderr
    assert "-mcpu=v3" not in proc.stderr and "-mcpu=v2" in proc.stderr, proc.stderr
    assert jmp32_count(v3) > 0 and jmp32_count(v2) == 0


NEWER = """\
#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";
int n = 0;
SEC("tp/syscalls/sys_enter_getppid")
int loop(void *ctx)
{
	int i;

	bpf_for(i, 0, 3)
		n++;
	return 0;
}
"""


@pytest.mark.unit
def test_a_name_from_a_newer_libbpf_is_named(tmp_path):
    """bpf_for (libbpf >= 1.2) with Debian's 1.1 headers: one line naming it and where
    the installed headers are; -v adds clang's line."""
    src = tmp_path / "newer.bpf.c"
    src.write_text(NEWER)
    proc = run_cli("run", str(src))
    assert proc.returncode == 1
    assert proc.stderr.count("\n") == 1, proc.stderr
    assert (f"'bpf_for' is not declared: it comes from a newer libbpf than the one installed ({installed_libbpf()}, "
            "/usr/include/bpf)") in proc.stderr
    verbose = run_cli("run", str(src), "-v")
    lines = [line for line in verbose.stderr.splitlines() if not line.startswith("+ ")]
    assert len(lines) == 2 and "newer.bpf.c:10:2: error: call to undeclared function 'bpf_for'" in lines[1], lines


@pytest.mark.unit
@pytest.mark.parametrize("args, message", [
    (["-I", "/nonexistent-wbka"], "-I /nonexistent-wbka: no such directory"),
    (["--cflags", '"-DX'], "--cflags '\"-DX': No closing quotation"),
])
def test_bad_build_options_are_one_line(tree, args, message):
    _root, src = tree
    proc = run_cli("run", str(src), *args)
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
    assert message in proc.stderr


def test_build_options_with_a_built_object(tree, tmp_path):
    root, src = tree
    pkg = tmp_path / "prog.json"
    assert run_cli("package", str(src), "-I", str(root / "inc1"), "-I", str(root / "inc2"),
                   "-o", str(pkg)).returncode == 0
    proc = run_cli("run", str(pkg), "--cflags", "-DX")
    assert proc.returncode == 1 and proc.stderr.count("\n") == 1, proc.stderr
    assert f"-I and --cflags build a .bpf.c source; {pkg} is already built" in proc.stderr
