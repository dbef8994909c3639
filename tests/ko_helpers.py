"""Helpers for the kernel-only tests: compile the fixtures (no kernel needed)."""
import platform
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
FIXTURES = ROOT / "tests" / "kernel_only_fixtures"
EXAMPLES = ROOT / "wasm_examples"


def compile_bpf(src: Path, out: Path, includes=()) -> Path:
    argv = ["clang-19", "-g", "-O2", "-target", "bpf", "-mcpu=v3", "-D__TARGET_ARCH_x86",
            f"-I/usr/include/{platform.machine()}-linux-gnu", *[f"-I{i}" for i in includes],
            "-c", str(src), "-o", str(out)]
    subprocess.run(argv, check=True)
    return out


def compile_example(name: str, out_dir: Path) -> Path:
    from wasm_bpf_sdk.build import BuildConfig, vmlinux_header

    vmlinux = vmlinux_header(BuildConfig(bpf_source=Path("x"), sources=[], output=Path("x")))
    return compile_bpf(EXAMPLES / name / f"{name}.bpf.c", out_dir / f"{name}.bpf.o",
                       [vmlinux.parent, EXAMPLES / name])
