"""`wasm-bpf inspect MODULE`: the BPF objects embedded in a module (or a .bpf.o),
their programs and maps and the module's imports, without loading anything; and
`--policy-template`, a policy that lets the module run."""
import json
import os

import pytest

from example_helpers import EXAMPLES_DIR, Tool
from guests.build import guests
from guests.helpers import LIBC_DIR
from test_cli import cli
from test_policy import next_program_id
from wasm_bpf.inspect import inspect_module


def example(name):
    return EXAMPLES_DIR / name / f"{name}.wasm"


def inspect_json(path):
    proc = cli("inspect", "--json", path)
    assert proc.returncode == 0, proc.stderr
    return json.loads(proc.stdout)


def test_bootstrap_programs_maps_and_imports():
    report = inspect_json(example("bootstrap"))
    assert len(report["objects"]) == 1
    obj = report["objects"][0]
    assert [(p["name"], p["section"], p["type"], p["kind"], p["target"]) for p in obj["programs"]] == [
        ("handle_exec", "tp/sched/sched_process_exec", "tracepoint", "auto", "none"),
        ("handle_exit", "tp/sched/sched_process_exit", "tracepoint", "auto", "none"),
    ]
    maps = {m["name"]: m for m in obj["maps"]}
    assert (maps["exec_start"]["type"], maps["exec_start"]["key_size"], maps["exec_start"]["value_size"],
            maps["exec_start"]["max_entries"]) == ("hash", 4, 8, 8192)
    assert (maps["events"]["type"], maps["events"]["memory"]) == ("ringbuf", 256 * 1024)
    assert maps[".rodata"]["type"] == "array"
    assert "wasm_bpf.wasm_load_bpf_object" in report["imports"]
    assert "wasi_snapshot_preview1.fd_write" in report["imports"]


@pytest.mark.parametrize("name,programs", [
    ("cgroupskb", {("count_ingress", "cgroup_skb", "cgroup", "required"),
                   ("count_egress", "cgroup_skb", "cgroup", "required")}),
    ("ufunc", {("on_entry", "kprobe", "uprobe", "required"), ("on_return", "kprobe", "uretprobe", "required")}),
    ("xdpcount", {("xdp_count", "xdp", "xdp", "required")}),
    ("tcpcc", None),
], ids=["cgroupskb", "ufunc", "xdpcount", "tcpcc"])
def test_attach_kinds_and_targets_of_the_examples(name, programs):
    obj, = inspect_json(example(name))["objects"]
    found = {(p["name"], p["type"], p["kind"], p["target"]) for p in obj["programs"]}
    if programs is None:  # struct_ops: every program registers with the map
        assert found and all(p[1:] == ("struct_ops", "struct_ops", "optional") for p in found), found
    else:
        assert found == programs


def test_a_bpf_object_directly_and_the_human_output():
    proc = cli("inspect", guests()["bpf"])
    assert proc.returncode == 0, proc.stderr
    assert "1 BPF object(s)" in proc.stdout
    assert "programs:" in proc.stdout and "maps:" in proc.stdout and "estimated map memory" in proc.stdout


def test_inspect_loads_nothing():
    # In this process, so that the window between the two ids is short: program ids
    # are consecutive unless someone loaded a program meanwhile (other processes may).
    for _ in range(20):
        before = next_program_id()
        assert inspect_module(str(example("bootstrap"))).objects
        if next_program_id() == before + 1:
            return
    pytest.fail("a program id was used during every inspect")


@pytest.mark.unit
def test_not_a_module_is_a_clear_error(tmp_path):
    junk = tmp_path / "junk.bin"
    junk.write_bytes(b"hello")
    proc = cli("inspect", junk)
    assert proc.returncode == 1
    assert proc.stderr.strip() == f"wasm-bpf: error: {junk} is neither a WebAssembly module, a BPF object (.bpf.o) nor a kernel-only JSON package"


def test_the_template_lets_the_module_run(tmp_path):
    proc = cli("inspect", "--policy-template", example("bootstrap"))
    assert proc.returncode == 0, proc.stderr
    assert 'types = ["tracepoint"]' in proc.stdout and 'kinds = ["auto"]' in proc.stdout
    policy = tmp_path / "bootstrap.toml"
    policy.write_text(proc.stdout)
    run = cli("run", "--policy", policy, "--timeout", "1", example("bootstrap"))
    assert run.returncode in (0, 124), run.stderr
    assert "policy" not in run.stderr, run.stderr


def test_a_read_only_user_ring_buffer_refuses_submits_and_the_template_allows_them(tmp_path):
    # sysclass sends its commands to BPF through the user ring buffer `commands`.
    template = cli("inspect", "--policy-template", example("sysclass")).stdout
    assert "commands" in template.split("read-write = ", 1)[1].splitlines()[0], template
    policy = tmp_path / "sysclass.toml"
    for text, refused in ((template, False), (template.replace('access = "read-only"', 'access = "read-only"\n'
                          'read-only = ["commands"]').replace('"commands", ', "").replace(', "commands"', ""), True)):
        policy.write_text(text)
        run = cli("run", "--policy", policy, "--timeout", "10", example("sysclass"), "--", "-c", "1", os.getpid())
        line = (f"wasm-bpf: policy {policy}: map 'commands' is in [maps] read-only, so submit is refused; "
                "add \"commands\" to [maps] read-write to allow it")
        assert (line in run.stderr.splitlines()) == refused, run.stderr
        assert (run.returncode == 0) != refused, run.stderr


def test_a_template_with_targets_runs_once_its_placeholders_are_filled(tmp_path):
    template = cli("inspect", "--policy-template", example("ufunc")).stdout
    policy = tmp_path / "ufunc.toml"
    policy.write_text(template)
    refused = cli("run", "--policy", policy, example("ufunc"))
    assert refused.returncode == 2 and "placeholder '<BINARY_PATH>'" in refused.stderr, refused.stderr

    libc = os.path.join(LIBC_DIR, "libc.so.6")
    policy.write_text(template.replace("<BINARY_PATH>", libc).replace("<DIR>", LIBC_DIR))
    with Tool(example("ufunc"), "-b", "libc.so.6", "-f", "getppid", "-p", str(os.getpid()), "-c", "2",
              run_opts=("--policy", str(policy), "--dir", LIBC_DIR)) as tool:
        tool.wait_ready(r"^PID\s+TID")
        for _ in range(2):
            os.getppid()
        rc = tool.wait_exit()
    assert rc == 0, tool.describe()
