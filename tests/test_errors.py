"""Failures that explain themselves (issue 11): a refused load names the program, who
refused it (libbpf, the verifier, the kernel) and why; a missing tracepoint, kernel
function or uprobe symbol is named; missing privileges are one line; the common
mix-ups of `run` and `build` get a hint. Run as subprocesses, as a user sees them."""
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

from wasm_bpf import probe

ROOT = Path(__file__).resolve().parents[1]
_EXE = shutil.which("wasm-bpf")
CLI = [_EXE] if _EXE else [sys.executable, "-m", "wasm_bpf"]
# Root without a single capability: what a user without privileges gets.
NO_CAPS = ["setpriv", "--inh-caps=-all", "--ambient-caps=-all", "--bounding-set=-all"]

HEAD = '#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n#include <bpf/bpf_tracing.h>\n'
TAIL = '\nchar LICENSE[] SEC("license") = "GPL";\n'
# Reads ctx through a moved pointer: the verifier refuses it.
VERIFIER_REJECTS = HEAD + textwrap.dedent("""\
    SEC("tp/syscalls/sys_enter_openat")
    int bad_prog(struct trace_event_raw_sys_enter *ctx)
    {
        ctx = (void *)ctx + 8;
        return ctx->id == 5;
    }
    """) + TAIL


def cli(*args, prefix=(), timeout=60, cwd=None):
    return subprocess.run([*prefix, *CLI, *map(str, args)], capture_output=True, text=True, timeout=timeout,
                          cwd=cwd)


def error_line(proc):
    """Exit status 1 and one line on stderr, no traceback."""
    assert proc.returncode == 1, (proc.returncode, proc.stdout, proc.stderr)
    lines = [line for line in proc.stderr.splitlines() if line.strip() and not line.startswith("+ ")]
    assert len(lines) == 1 and "Traceback" not in proc.stderr, proc.stderr
    return lines[0]


def source(tmp_path, name, text):
    path = tmp_path / name
    path.write_text(text)
    return path


# ------------------------------------------------------------- refused loads

def test_verifier_rejection_prints_the_reason_and_the_program(tmp_path):
    src = source(tmp_path, "badctx.bpf.c", VERIFIER_REJECTS)
    line = error_line(cli("run", src, "--timeout", "1"))
    assert "verifier rejected program 'bad_prog'" in line
    assert "dereference of modified ctx ptr" in line and "disallowed" in line


def test_the_reason_survives_a_verifier_log_longer_than_the_log_buffer(tmp_path):
    """600 unrolled map lookups make a log of about 400 KiB; the reason is its last line."""
    src = source(tmp_path, "big.bpf.c", HEAD + textwrap.dedent("""\
        struct { __uint(type, BPF_MAP_TYPE_ARRAY); __uint(max_entries, 1); __type(key, u32); __type(value, u64); } m SEC(".maps");
        SEC("tp/syscalls/sys_enter_openat")
        int big_prog(struct trace_event_raw_sys_enter *ctx)
        {
            u32 k = 0;
            u64 acc = 0;
        #pragma clang loop unroll(full)
            for (int i = 0; i < 600; i++) {
                u64 *v = bpf_map_lookup_elem(&m, &k);
                if (v)
                    acc += *v + i;
            }
            ctx = (void *)ctx + 8;
            return ctx->id + acc;
        }
        """) + TAIL)
    line = error_line(cli("run", src, "--timeout", "1"))
    assert "verifier rejected program 'big_prog': dereference of modified ctx ptr" in line
    verbose = cli("run", "-v", src, "--timeout", "1").stderr
    assert "[... libbpf's log shortened ...]" in verbose and "disallowed\nprocessed" in verbose


def test_verbose_keeps_the_whole_log_and_names_the_object_after_the_file(tmp_path):
    src = source(tmp_path, "badctx.bpf.c", VERIFIER_REJECTS)
    proc = cli("-v", "run", src, "--timeout", "1")  # -v before the sub-command
    assert proc.returncode == 1
    assert re.search(r"processed \d+ insns", proc.stderr)  # the verifier's log, whole
    assert "failed to load object 'badctx'" in proc.stderr and "'wasm_bpf'" not in proc.stderr


def test_a_guest_load_gets_the_verifier_reason_and_its_module_name(tmp_path):
    source(tmp_path, "vguest.bpf.c", VERIFIER_REJECTS)
    source(tmp_path, "vguest.c", textwrap.dedent("""\
        #include "vguest.skel.h"
        int main(void)
        {
            struct vguest_bpf *skel = vguest_bpf__open_and_load();
            vguest_bpf__destroy(skel);
            return skel ? 0 : 3;
        }
        """))
    built = cli("build", "vguest.bpf.c", "vguest.c", cwd=tmp_path)
    assert built.returncode == 0, built.stderr
    proc = cli("run", "-v", tmp_path / "vguest.wasm")
    assert proc.returncode == 3, proc.stderr
    assert re.search(r"wasm_load_bpf_object: the kernel's verifier rejected program 'bad_prog': "
                     r"dereference of modified ctx ptr R\d off=8 disallowed", proc.stderr), proc.stderr
    assert "failed to load object 'vguest'" in proc.stderr


def test_an_unknown_section_is_libbpfs_refusal(tmp_path):
    src = source(tmp_path, "badsec.bpf.c", HEAD + 'SEC("nosuchkind/foo")\nint p(void *ctx) { return 0; }' + TAIL)
    line = error_line(cli("run", src, "--timeout", "1"))
    assert "libbpf refused program 'p'" in line and 'SEC("nosuchkind/foo")' in line


@pytest.mark.parametrize("sec,words", [("lsm/file_open", "LSM"), ("fentry/do_unlinkat", "fentry")])
def test_a_program_type_the_kernel_refuses_is_said_in_words(tmp_path, sec, words):
    kind = sec.split("/")[0]
    if not probe.unsupported_reason(kind):
        pytest.skip(f"this kernel loads {kind} programs")
    src = source(tmp_path, "refused.bpf.c", HEAD + f'SEC("{sec}")\nint BPF_PROG(on_it) {{ return 0; }}' + TAIL)
    line = error_line(cli("run", src, "--timeout", "1"))
    assert f"this kernel does not allow {words} programs; see `wasm-bpf probe`" in line
    assert "ulimit" not in line and "RLIMIT_MEMLOCK" not in line


@pytest.mark.parametrize("sec", ["kprobe/vfs_unlink", "kretprobe/vfs_unlink", "ksyscall/getppid"])
def test_kprobes_on_a_kernel_without_them_say_so(tmp_path, sec):
    """Without CONFIG_KPROBES the attach fails with a bare ENOENT: the line names the
    missing kernel support, not the function (which exists)."""
    reason = probe.unsupported_reason("kprobe")
    if not reason:
        pytest.skip("this kernel attaches kprobes")
    src = source(tmp_path, "kp.bpf.c", HEAD + f'SEC("{sec}")\nint k(void *ctx) {{ return 0; }}' + TAIL)
    line = error_line(cli("run", src, "--timeout", "1"))
    assert f"this kernel cannot attach kprobes: {reason}; see `wasm-bpf probe`" in line, line
    assert "--attach" not in line


def test_a_missing_kernel_function_is_named(tmp_path):
    src = source(tmp_path, "nofunc.bpf.c",
                 HEAD + 'SEC("fentry/no_such_function_zz")\nint BPF_PROG(f) { return 0; }' + TAIL)
    line = error_line(cli("run", src, "--timeout", "1"))
    assert "the kernel has no function 'no_such_function_zz'" in line


def test_a_missing_btf_tracepoint_is_named(tmp_path):
    src = source(tmp_path, "nobtftp.bpf.c",
                 HEAD + 'SEC("tp_btf/no_such_event_zz")\nint BPF_PROG(t) { return 0; }' + TAIL)
    line = error_line(cli("run", src, "--timeout", "1"))
    assert "the kernel has no tracepoint 'no_such_event_zz' (SEC(\"tp_btf/no_such_event_zz\")" in line, line
    assert "function" not in line, line


def test_a_missing_tracepoint_is_named(tmp_path):
    src = source(tmp_path, "notp.bpf.c",
                 HEAD + 'SEC("tp/syscalls/sys_enter_no_such_call")\nint p(void *ctx) { return 0; }' + TAIL)
    line = error_line(cli("run", src, "--timeout", "1"))
    assert "tracepoint 'syscalls/sys_enter_no_such_call' does not exist" in line


def test_a_missing_uprobe_symbol_is_named(tmp_path):
    src = source(tmp_path, "nosym.bpf.c",
                 HEAD + 'SEC("uprobe//bin/true:no_such_symbol_zz")\nint u(void *ctx) { return 0; }' + TAIL)
    line = error_line(cli("run", src, "--timeout", "1"))
    assert "no function 'no_such_symbol_zz' in /bin/true" in line


def test_the_end_of_a_key_iteration_is_not_logged_as_an_error():
    """runqlat walks its histogram map with get_next_key every interval."""
    runqlat = ROOT / "wasm_examples" / "runqlat" / "runqlat.wasm"
    proc = cli("run", "-v", "--timeout", "2.5", runqlat, "--", "1")
    assert "Traceback" not in proc.stderr and re.search(r"^\s*usecs", proc.stdout, re.M), proc.stdout + proc.stderr
    assert "ENOENT" not in proc.stderr


# ------------------------------------------------------------- privileges

def test_run_without_privileges_says_what_is_needed(tmp_path):
    src = source(tmp_path, "tp.bpf.c", HEAD + 'SEC("tp/syscalls/sys_enter_getppid")\nint p(void *ctx) { return 0; }'
                 + TAIL)
    line = error_line(cli("run", src, "--timeout", "1", prefix=NO_CAPS))
    assert "needs root, or CAP_BPF + CAP_PERFMON (+ CAP_NET_ADMIN for networking programs)" in line
    assert "lacks CAP_BPF, CAP_PERFMON" in line and "RLIMIT_MEMLOCK" not in line
    guest = cli("run", ROOT / "wasm_examples" / "sigsnoop" / "sigsnoop.wasm", prefix=NO_CAPS)
    assert guest.returncode != 0
    assert "wasm_load_bpf_object: BPF needs root, or CAP_BPF + CAP_PERFMON" in guest.stderr, guest.stderr


def test_probe_without_privileges_cannot_probe():
    proc = cli("probe", prefix=NO_CAPS)
    assert proc.returncode == 1 and proc.stdout == ""
    assert "cannot probe: BPF needs root, or CAP_BPF + CAP_PERFMON" in proc.stderr


def test_probe_json():
    proc = cli("probe", "--json")
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    assert list(report) == ["program types", "attach kinds", "map types"]
    rows = {r["name"]: r for r in report["map types"]}
    assert rows["ringbuf"] == {"name": "ringbuf", "supported": True, "reason": ""}
    one = cli("probe", "--kind", "xdp", "--json")
    assert json.loads(one.stdout) == {"name": "xdp", "supported": True, "reason": ""}


# ------------------------------------------------------------- mix-ups

def test_running_the_user_space_half_gets_a_hint(tmp_path):
    src = source(tmp_path, "tool.c", '#include <stdio.h>\nint main(void) { puts("hi"); return 0; }\n')
    line = error_line(cli("run", src))
    assert "has no BPF program" in line and "wasm-bpf build" in line
    assert "stubs-32.h" not in line


def test_build_with_swapped_arguments_gets_a_hint(tmp_path):
    source(tmp_path, "tool.bpf.c", HEAD + 'SEC("tp/syscalls/sys_enter_getppid")\nint p(void *ctx) { return 0; }'
           + TAIL)
    source(tmp_path, "tool.c", '#include "tool.skel.h"\nint main(void) { return 0; }\n')
    proc = cli("build", "tool.c", "tool.bpf.c", cwd=tmp_path)
    assert proc.returncode == 1
    assert "the BPF source comes first, e.g. wasm-bpf build tool.bpf.c tool.c" in proc.stderr
    assert "stubs-32.h" not in proc.stderr


def test_a_bpf_source_without_programs_is_an_error(tmp_path):
    src = source(tmp_path, "plain.bpf.c", HEAD + "int counter;" + TAIL)
    line = error_line(cli("run", src, "--timeout", "3"))
    assert "has no BPF programs" in line


# ------------------------------------------------------------- guest builds

SHARED_H = textwrap.dedent("""\
    #ifndef LG_H
    #define LG_H
    #define NAME_LEN 16
    enum { MODE_A = 3, MODE_B };
    struct event {
        int pid;
        long ppid_hint;
        char comm[NAME_LEN];
    };
    #endif
    """)
SHARED_BPF = HEAD + textwrap.dedent("""\
    #include "lg.h"
    struct { __uint(type, BPF_MAP_TYPE_RINGBUF); __uint(max_entries, 4096); } events SEC(".maps");
    SEC("tp/syscalls/sys_enter_getppid")
    int on_getppid(void *ctx)
    {
        struct event *e = bpf_ringbuf_reserve(&events, sizeof(*e), 0);
        if (!e)
            return 0;
        e->pid = bpf_get_current_pid_tgid() >> 32;
        e->ppid_hint = MODE_B;
        bpf_ringbuf_submit(e, 0);
        return 0;
    }
    """) + TAIL


def guest_c(include):
    return textwrap.dedent(f"""\
        #include <stdio.h>
        #include "{include}"
        #include "lg.skel.h"
        int main(void)
        {{
            struct event e = {{0}};
            printf("%d %d %d\\n", (int)sizeof(e), NAME_LEN, MODE_B);
            return 0;
        }}
        """)


@pytest.fixture
def shared(tmp_path):
    source(tmp_path, "lg.h", SHARED_H)
    source(tmp_path, "lg.bpf.c", SHARED_BPF)
    return tmp_path


def test_a_shared_struct_whose_wasm32_layout_differs_is_a_build_error(shared):
    source(shared, "lg.c", guest_c("lg.h"))
    proc = cli("build", "lg.bpf.c", "lg.c", cwd=shared)
    assert proc.returncode == 1
    assert "struct event.ppid_hint: offset 4 in wasm32, 8 in the BPF object" in proc.stderr, proc.stderr
    assert "include the generated lg.wasm.h" in proc.stderr
    assert not (shared / "lg.wasm").exists()


def test_the_generated_header_builds_with_the_macros_and_enums_of_x_h(shared):
    source(shared, "lg.c", guest_c("lg.wasm.h"))
    proc = cli("build", "lg.bpf.c", "lg.c", "--build-dir", "out", cwd=shared)
    assert proc.returncode == 0, proc.stderr
    text = (shared / "out" / "lg.wasm.h").read_text()
    assert "#define NAME_LEN 16" in text and "MODE_B" in text and "#define LG_H" not in text
    run = cli("run", shared / "lg.wasm")
    assert run.returncode == 0 and run.stdout.split() == ["32", "16", "4"], run.stdout + run.stderr


def test_a_forgotten_source_file_is_a_link_error_naming_the_symbol(shared):
    source(shared, "lg.c", '#include "lg.skel.h"\nint helper_count(void);\nint main(void) { return helper_count(); }\n')
    proc = cli("build", "lg.bpf.c", "lg.c", cwd=shared)
    assert proc.returncode == 1
    assert "undefined symbol: helper_count" in proc.stderr, proc.stderr


def test_a_struct_only_in_the_bpf_source_gets_a_note(tmp_path):
    source(tmp_path, "only.bpf.c", SHARED_BPF.replace('#include "lg.h"', "struct event { int pid; long ppid_hint; };")
           .replace("MODE_B", "4"))
    source(tmp_path, "only.c", '#include "only.skel.h"\nint main(void) { return 0; }\n')
    proc = cli("build", "only.bpf.c", "only.c", cwd=tmp_path)
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"note: only.wasm.h has no types: struct event \(defined in only.bpf.c\) is not in the "
                     r"object's BTF.*define it in only.h", proc.stderr), proc.stderr


# ------------------------------------------------------------- CLI

COUNTS = HEAD + textwrap.dedent("""\
    struct {
        __uint(type, BPF_MAP_TYPE_ARRAY);
        __uint(max_entries, 1);
        __type(key, u32);
        __type(value, u64);
    } counts SEC(".maps");

    SEC("tp/syscalls/sys_enter_getppid")
    int count(void *ctx)
    {
        u32 zero = 0;
        u64 *n = bpf_map_lookup_elem(&counts, &zero);
        if (n)
            __sync_fetch_and_add(n, 1);
        return 0;
    }
    """) + TAIL


def test_kernel_only_options_before_the_program(tmp_path):
    src = source(tmp_path, "counts.bpf.c", COUNTS)
    proc = subprocess.Popen([*CLI, "run", "--json", "--interval", "0.2", str(src), "--timeout", "3"],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline and proc.poll() is None:
            os.getppid()
            time.sleep(0.05)
        out, err = proc.communicate(timeout=20)
    finally:
        proc.kill()
    assert proc.returncode == 0, err
    rows = [json.loads(line) for line in out.splitlines()]
    assert rows and all(r["map"] == "counts" for r in rows) and rows[-1]["value"] > 0, out


def test_run_help_documents_kernel_only_inputs():
    out = cli("run", "--help").stdout
    for words in (".bpf.o", ".bpf.c", "JSON package", "--json", "--only/--skip PROG", "--attach PROG=TARGET",
                  "--interval S", "--map NAME"):
        assert words in out, words


def test_top_level_help_does_not_cut_summaries():
    out = cli("--help").stdout
    commands = out.split("Commands:")[1]
    assert "..." not in commands, commands
    assert re.search(r"^\s+run\s+\S", commands, re.M)


def test_docs_have_no_developer_paths_and_agree():
    readme = (ROOT / "guest_sdk" / "README.md").read_text()
    kernel_only = (ROOT / "docs" / "kernel-only.md").read_text()
    for text in (readme, kernel_only):
        assert "/work/" not in text and "/tmp/sdk" not in text
    shim = (ROOT / "host_abi" / "shim.h").read_text()
    for name in re.findall(r"\bwbpf_\w+", kernel_only):  # the C functions it names exist
        assert name in shim, name
    assert "-Wl,--allow-undefined" not in readme
    assert "No `bpf_program__fd`" not in readme  # the API table has it
