"""The Rust guest SDK (guest_sdk/rust/wasm-bpf) and its skeleton generator: every
kind of member read through the generated #[repr(C)] types at its BPF offset, and
the crate's maps, data sections, autoload, links and buffers (a ring buffer and a
perf event array in one RingBuffer, per record and in batches) against the real
kernel."""
import os
import struct
import subprocess
from pathlib import Path

import pytest

from example_helpers import wasm_bpf_command
from sdk_fixtures.sdk_helpers import FIXTURES, compile_bpf, elf_symbol_bytes, run_wasi

GUESTS = Path(__file__).resolve().parent / "rust_guests"


def build(bpf: Path, main: Path, tmp: Path) -> Path:
    out = tmp / f"{main.stem}.wasm"
    res = subprocess.run([*wasm_bpf_command(), "build", str(bpf), str(main), "-o", str(out),
                          "--build-dir", str(tmp / "build")], capture_output=True, text=True, timeout=600)
    assert res.returncode == 0, res.stderr
    return out


def test_rust_skeleton_types_have_the_bpf_layout(tmp_path):
    """layouts.h's initialized instance (nested structs, arrays of structs, unions, an
    anonymous union, a packed struct, bitfields of every width and signedness, enums
    of 1/4/8 bytes, pointers, long, typedefs, 3-D arrays, bool, double) read in Rust
    from the object's .data before load."""
    module = build(FIXTURES / "layouts.bpf.c", GUESTS / "layouts.rs", tmp_path)
    out = run_wasi(module, tmp_path).splitlines()
    assert out[:-1] == [
        "c x",
        "l -1234567890123 ul 0xfeedface12345678 str 0x1122334455667788 fn 0x99",
        "in 1 2 3",
        "arr1 7 8 9",
        "num 0x1020304 u 0xa0b0c0d",
        "anon_named 11 12",
        "tight t 0x11223344 -5",
        "bits 5 300 -3 0xabcdef1234 2 -123456789 -7 1 17",
        "col -7 sm 200 bg 0x123456789a",
        "t 0xdeadbeef lt -77",
        "pairs 1 2 11 12",
        "matrix 1 42 0",
        "name hello world!",
        "flag 1 last 0x102030405060708 d 3.25 ptr_in 0x55",
        f"consts -7 200 {0x123456789a}",
    ]
    # sizeof(struct lt_all), (struct lt_tight), (union lt_num) as the BPF compile saw them
    obj = compile_bpf(FIXTURES / "layouts.bpf.c", tmp_path / "facts.bpf.o")
    raw = elf_symbol_bytes(obj, "lt_facts")
    facts = struct.unpack(f"<{len(raw) // 8}Q", raw)
    assert out[-1] == f"sizes {facts[-6]} {facts[-1]} {facts[-3]}"


@pytest.fixture(scope="module")
def maps_guest(tmp_path_factory):
    return build(GUESTS / "maps.bpf.c", GUESTS / "maps.rs", tmp_path_factory.mktemp("maps"))


def test_rust_sdk_maps_sections_autoload_and_links(maps_guest):
    res = subprocess.run([*wasm_bpf_command(), "run", str(maps_guest)], capture_output=True, text=True,
                         timeout=120)
    assert res.returncode == 0, res.stderr
    assert res.stdout.splitlines() == [
        "unknown program: maps: no program 'nope'",
        # .rodata and .data written in the image, .bss pushed after load
        "after load: limit 9 seed 5 counter 100",
        "get 3: 30 0x30000000000; get 9: None",
        "insert existing with NOEXIST: Err(AlreadyExists)",
        "remove 2: true, again: false",
        "take 4: Some(40); keys [1, 3, 5]",
        "iter [(1, 10), (3, 30), (5, 50)]; batched [(1, 10), (3, 30), (5, 50)]",
        "wrong key type: map 'hash': key of 8 bytes, the map's keys have 4",
        "array len 4 [2] 0xabcd [0] 0 [4] Err(NotFound)",
        "percpu array ok: true",
        "percpu wrong count: true",
        "percpu hash sum: true",
        "attach, detach, attach: ok",
        "not loaded: true",
        # the guest's own println! is a write of the host process, seen by on_write
        "polling (batch false)",
        "records in ring and perf buffer: true true, comm right: true",
        "polling (batch true)",
        "records in ring and perf buffer: true true, comm right: true",
        "submitted",
        "user ring buffer drained: 42",
        "not a buffer: map 'hash' (type 1) is neither a ring buffer nor a perf event array",
        "bss written: 4242",
        "rodata is frozen: true",
    ]


def test_gen_skeleton_lang_rust_names_the_module_and_marks_packed_types(tmp_path):
    obj = compile_bpf(FIXTURES / "layouts.bpf.c", tmp_path / "layouts.bpf.o")
    res = subprocess.run([*wasm_bpf_command(), "gen", "skeleton", "--lang", "rust", "--name", "lt", str(obj)],
                         capture_output=True, text=True, timeout=60)
    assert res.returncode == 0, res.stderr
    assert "pub mod lt_bpf {" in res.stdout
    assert "#[repr(C, packed)]\n#[derive(Clone, Copy, Debug)]\npub struct LtTight {" in res.stdout
    assert "#[repr(C)]\n#[derive(Clone, Copy)]\npub union LtNum {" in res.stdout
    assert "    pub _bitfield0: [u8; 4],  // bitfields: a, b, c" in res.stdout
    assert "    pub fn c(&self) -> i32 {" in res.stdout
    assert "    pub anon1: LtAllAnon," in res.stdout


def test_rust_skeletons_of_the_c_examples_compile(tmp_path):
    """The generator on real objects (struct_ops with kernel types, usdt, stack
    traces, cgroup storage...): every skeleton compiles with all its asserts."""
    from example_helpers import EXAMPLES_DIR, build_examples

    names = ("tcpcc", "usdt", "cgroupskb", "profile", "sigsnoop", "opensnoop", "tcbytes", "sysclass")
    build_examples(names)
    src = tmp_path / "src"
    src.mkdir()
    mods = []
    for name in names:
        obj = EXAMPLES_DIR / name / ".output" / f"{name}.bpf.o"
        res = subprocess.run([*wasm_bpf_command(), "gen", "skeleton", "--lang", "rust", str(obj),
                              "-o", str(src / f"{name}.rs")], capture_output=True, text=True, timeout=60)
        assert res.returncode == 0, res.stderr
        mods.append(f"mod {name};")
    (src / "main.rs").write_text("\n".join(mods) + "\nfn main() {}\n")
    sdk = Path(__file__).resolve().parents[1] / "guest_sdk" / "rust" / "wasm-bpf"
    (tmp_path / "Cargo.toml").write_text(
        f'[package]\nname = "skels"\nversion = "0.0.0"\nedition = "2021"\n[dependencies]\n'
        f'wasm-bpf = {{ path = "{sdk}" }}\n[workspace]\n')
    res = subprocess.run(["/usr/bin/cargo", "check", "--offline", "--target", "wasm32-wasi",
                          "--manifest-path", str(tmp_path / "Cargo.toml")], capture_output=True, text=True,
                         timeout=600, env={**os.environ, "RUSTC": "/usr/bin/rustc"})
    assert res.returncode == 0, res.stderr
    assert "warning" not in res.stderr, res.stderr
