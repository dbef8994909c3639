"""A .bpf.c built by `wasm-bpf run` / `wasm-bpf package` reads only its own
directory, vmlinux.h's and the system's BPF headers (issue 13, finding 9;
kernel_only/clang.py): a source cannot pull another file into the object (and so into
a package, or the --help text of its flags) with #include or #embed, by an absolute
path, `..`, or a symlink; and refusing says which file, never what it holds."""
import subprocess
import sys

import pytest

SECRET = "TOPSECRET-4242"
PROGRAM = """#include <linux/bpf.h>
#include <bpf/bpf_helpers.h>
char LICENSE[] SEC("license") = "GPL";
%s
SEC("tp/syscalls/sys_enter_getppid") int on_call(void *ctx) { return leak[0]; }
"""


@pytest.fixture
def tree(tmp_path):
    """tmp/secret/ holds what the program must not read; tmp/src/ is its directory."""
    (tmp_path / "secret").mkdir()
    (tmp_path / "secret" / "leak.h").write_text(f'const volatile char leak[] = "{SECRET}";\n')
    (tmp_path / "secret" / "token.txt").write_text(f"#{SECRET}\n")
    (tmp_path / "src").mkdir()
    return tmp_path


EMBED = '#pragma clang diagnostic ignored "-Wc23-extensions"\nconst volatile char leak[] = {\n#embed "%s"\n, 0};'
ATTACKS = {
    "dotdot": '#include "../secret/leak.h"',
    "absolute": '#include "{tmp}/secret/leak.h"',
    "angle": "#include <../../..{tmp}/secret/leak.h>",
    "symlink": '#include "link.h"',
    "embed-absolute": EMBED % "{tmp}/secret/token.txt",
    "embed-own-dir": EMBED % "mine.txt",  # #embed is off, even for a file the source may read
    "directive-lines": '#include "{tmp}/secret/token.txt"\nconst volatile char leak[1];',
}


@pytest.mark.parametrize("attack", sorted(ATTACKS))
def test_a_source_cannot_read_files_outside_its_include_path(tree, attack):
    src = tree / "src" / "prog.bpf.c"
    src.write_text(PROGRAM % ATTACKS[attack].replace("{tmp}", str(tree)))
    (tree / "src" / "link.h").symlink_to(tree / "secret" / "leak.h")
    (tree / "src" / "mine.txt").write_text(SECRET)
    out = tree / "prog.json"
    proc = subprocess.run([sys.executable, "-m", "wasm_bpf", "package", str(src), "-o", str(out)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode != 0 and not out.exists(), proc
    assert SECRET not in proc.stdout + proc.stderr
    assert "Traceback" not in proc.stderr
    if attack.startswith("embed-own"):
        assert "embeds" in proc.stderr and "kernel-only builds do not embed files" in proc.stderr, proc.stderr
    elif attack != "directive-lines":
        assert "outside the directories a kernel-only build may read" in proc.stderr, proc.stderr


def test_a_source_using_its_own_headers_and_vmlinux_still_builds(tree):
    src = tree / "src" / "prog.bpf.c"
    (tree / "src" / "prog.h").write_text("struct event { int pid; };\n")
    src.write_text('#include "vmlinux.h"\n#include <bpf/bpf_helpers.h>\n#include <bpf/bpf_tracing.h>\n'
                   '#include "prog.h"\n' + (PROGRAM % "const volatile int leak[1];").split("\n", 2)[2])
    proc = subprocess.run([sys.executable, "-m", "wasm_bpf", "package", str(src), "-o", str(tree / "p.json")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
