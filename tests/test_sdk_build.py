"""`wasm-bpf build` and wasm-bpf.mk: a .wasm with exactly the upstream imports, one
clear line naming a failing step, and make rebuilding only when needed."""
import subprocess
import time

import pytest

from sdk_fixtures.sdk_helpers import imports
from wasm_bpf_sdk.build import SDK_INCLUDE

BPF_SRC = r"""
#include "vmlinux.h"
#include <bpf/bpf_helpers.h>
#include "small.h"

const volatile int min_pid = 0;
struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096 * 4); } rb SEC(".maps");
struct { __uint(type, BPF_MAP_TYPE_HASH); __uint(max_entries, 8); __type(key, u32); __type(value, u64); } counts SEC(".maps");

SEC("tp/sched/sched_process_exec")
int on_exec(void *ctx)
{
    struct small_event *e = bpf_ringbuf_reserve(&rb, sizeof(*e), 0);
    if (!e)
        return 0;
    e->pid = bpf_get_current_pid_tgid() >> 32;
    e->task = (struct task_struct *)bpf_get_current_task();
    bpf_ringbuf_submit(e, 0);
    return 0;
}
char LICENSE[] SEC("license") = "GPL";
"""

HEADER = r"""
struct small_event { int pid; struct task_struct *task; long value; };
"""

USER_SRC = r"""
#include "small.wasm.h"
#include "small.skel.h"
static int on_event(void *ctx, void *data, size_t size) {
    const struct small_event *e = data;
    return e->pid > 0 ? 0 : -1;
}
int main(void) {
    struct small_bpf *skel = small_bpf__open_and_load();
    struct bpf_buffer *rb;
    uint32_t key = 0;
    uint64_t value;
    if (!skel || small_bpf__attach(skel))
        return 1;
    rb = bpf_buffer__open(skel->maps.rb, on_event, NULL);
    while (bpf_buffer__poll(rb, POLL_TIMEOUT_MS) >= 0)
        if (bpf_map_lookup_elem(bpf_map__fd(skel->maps.counts), &key, &value) == 0)
            break;
    bpf_buffer__free(rb);
    small_bpf__destroy(skel);
    return 0;
}
"""


@pytest.fixture
def project(tmp_path):
    (tmp_path / "small.bpf.c").write_text(BPF_SRC)
    (tmp_path / "small.h").write_text(HEADER)
    (tmp_path / "small.c").write_text(USER_SRC)
    return tmp_path


def wasm_bpf(*args, cwd=None):
    return subprocess.run(["wasm-bpf", *args], capture_output=True, text=True, cwd=cwd)


def test_build_imports(project):
    proc = wasm_bpf("build", "small.bpf.c", "small.c", "-o", "out/small.wasm",
                    "--build-dir", "b", cwd=project)
    assert proc.returncode == 0, proc.stderr
    for f in ("small.bpf.o", "small.skel.h", "small.wasm.h"):
        assert (project / "b" / f).is_file()
    # The layout of the event from the BPF object, not from the native header.
    assert "uint64_t task;  /* struct task_struct * */" in (project / "b" / "small.wasm.h").read_text()
    assert imports(project / "out" / "small.wasm") == {
        ("wasm_bpf", "wasm_load_bpf_object"): (["i32", "i32"], ["i64"]),
        ("wasm_bpf", "wasm_attach_bpf_program"): (["i64", "i32", "i32"], ["i32"]),
        ("wasm_bpf", "wasm_bpf_map_fd_by_name"): (["i64", "i32"], ["i32"]),
        ("wasm_bpf", "wasm_bpf_buffer_poll"): (["i64", "i32", "i32", "i32", "i32", "i32", "i32"], ["i32"]),
        ("wasm_bpf", "wasm_bpf_map_operate"): (["i32", "i32", "i32", "i32", "i32", "i64"], ["i32"]),
        ("wasm_bpf", "wasm_close_bpf_object"): (["i64"], ["i32"]),
        **{k: v for k, v in imports(project / "out" / "small.wasm").items()
           if k[0] == "wasi_snapshot_preview1"},
    }


@pytest.mark.parametrize("broken, step", [
    ("small.bpf.c", "compile BPF object"),
    ("small.c", "compile wasm module"),
])
def test_build_error_names_the_step(project, broken, step):
    path = project / broken
    path.write_text(path.read_text().replace("return 0;", "return undeclared_thing;", 1))
    proc = wasm_bpf("build", "small.bpf.c", "small.c", "-o", "small.wasm", cwd=project)
    assert proc.returncode == 1
    first, *rest = proc.stderr.splitlines()
    assert first.startswith(f"wasm-bpf build: step '{step}' failed: clang-19 ")
    assert broken in first
    assert any("undeclared_thing" in line for line in rest)  # the compiler's own output
    assert not (project / "small.wasm").exists()


def test_build_missing_tool(project):
    proc = wasm_bpf("build", "small.bpf.c", "small.c", "--clang", "no-such-clang", cwd=project)
    assert proc.returncode == 1
    assert proc.stderr.startswith("wasm-bpf build: step 'compile BPF object' failed: no-such-clang ")
    assert "command not found" in proc.stderr


def make(project, *args):
    proc = subprocess.run(["make", *args], capture_output=True, text=True, cwd=project)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    return proc.stdout


def test_makefile_include(project):
    (project / "Makefile").write_text(f"NAME := small\ninclude {SDK_INCLUDE.parent}/wasm-bpf.mk\n")
    assert "wasm-bpf build small.bpf.c small.c -o small.wasm" in make(project)
    wasm = project / "small.wasm"
    first = wasm.stat().st_mtime_ns
    assert "wasm-bpf build" not in make(project)  # up to date: nothing rebuilt
    time.sleep(0.01)
    (project / "small.h").touch()  # $(NAME).h is a dependency
    assert "wasm-bpf build" in make(project) and wasm.stat().st_mtime_ns > first
    make(project, "clean")
    assert not wasm.exists() and not (project / ".output").exists()
    assert {p.name for p in project.iterdir()} == {"Makefile", "small.bpf.c", "small.c", "small.h"}


def test_cli_help():
    for args in (["build", "--help"], ["gen", "skeleton", "--help"], ["gen", "header", "--help"]):
        proc = wasm_bpf(*args)
        assert proc.returncode == 0 and "Usage:" in proc.stdout


def test_header_scan_finds_definitions():
    from wasm_bpf_sdk.hdrscan import defined_types
    text = """
        typedef struct outer { int a; struct nested { int b; } n; } outer_t, *outer_p;
        struct declared_only;
        enum { ANON_CONSTANT = 1 };
        enum kind { K_ONE };
        typedef union __attribute__((packed)) { int i; char c; } num_t;
        typedef unsigned int scalar_t;
        struct __attribute__((aligned(8))) aligned_one { int q; };
        int function(struct declared_only *p);
    """
    assert defined_types(text) == ["struct outer", "struct nested", "outer_t", "enum kind",
                                   "num_t", "struct aligned_one"]
