"""The capability policy (docs/policy.md): a policy file says which program types,
attach kinds and targets, map operations and --dir grants a module may use; what
it refuses gives the guest -EPERM (a load: handle 0) and prints one line naming the
rule and the file. Checked with the examples and the test guests on the real kernel."""
import os
import subprocess
import sys
import textwrap
import threading

import pytest

import wasm_bpf
from example_helpers import EXAMPLES_DIR
from guests.build import guests
from guests.helpers import EPERM, GuestThread, parse, wait_until
from wasm_bpf.policy import Policy, PolicyError
from wasm_bpf.probe import _load
from test_cli import cli
from test_map_api import possible_cpus

BOOTSTRAP = EXAMPLES_DIR / "bootstrap" / "bootstrap.wasm"
SOCKET_FILTER = 1


def policy_file(tmp_path, text, name="policy.toml"):
    path = tmp_path / name
    path.write_text(textwrap.dedent(text))
    return path


def run_with(module, args, policy, **config):
    inst = wasm_bpf.Instance(str(module), [str(a) for a in args], capture_output=True,
                             config=wasm_bpf.RunConfig(policy=policy, timeout=5, **config), report=lambda m: None)
    status = inst.run()
    inst.close()
    return status, inst


def next_program_id():
    """The id the kernel gives the next program: load one and read it back."""
    fd = _load(SOCKET_FILTER)
    assert fd >= 0, os.strerror(-fd)
    try:
        with open(f"/proc/self/fdinfo/{fd}") as f:
            return int(next(line.split()[1] for line in f if line.startswith("prog_id:")))
    finally:
        os.close(fd)


def test_a_forbidden_program_type_refuses_the_load_before_any_program_is_loaded(tmp_path):
    policy = Policy.load(policy_file(tmp_path, """
        [programs]
        types = ["kprobe"]
    """))
    # Program ids only grow: with no program loaded between two of ours, they are
    # consecutive. Other processes load programs too, so a few tries may be needed;
    # a load that happened would make every try fail.
    for _ in range(20):
        before = next_program_id()
        status, inst = run_with(BOOTSTRAP, ["-d", "0"], policy)
        after = next_program_id()
        if after == before + 1:
            break
    else:
        pytest.fail(f"a program id was used during every refused run ({before} -> {after})")
    assert status != 0
    assert inst.messages == [f"policy {tmp_path / 'policy.toml'}: program 'handle_exec' type tracepoint is not in "
                             "[programs] types; add \"tracepoint\" to allow it"]


def test_the_refusal_is_one_line_on_the_command_line(tmp_path):
    path = policy_file(tmp_path, """
        [programs]
        types = ["xdp"]
    """)
    proc = cli("run", "--policy", path, "--timeout", "5", BOOTSTRAP, "--", "-d", "0")
    assert proc.returncode != 0
    ours = [line for line in proc.stderr.splitlines() if line.startswith("wasm-bpf:")]
    assert ours == [f"wasm-bpf: policy {path}: program 'handle_exec' type tracepoint is not in [programs] types; "
                    "add \"tracepoint\" to allow it"], proc.stderr


def test_an_allowed_policy_runs_the_module(tmp_path):
    path = policy_file(tmp_path, """
        [programs]
        types = ["tracepoint"]
        [attach]
        kinds = ["auto"]
        [maps]
        access = "read-only"
        [files]
        dirs = []
    """)
    proc = cli("run", "--policy", path, "--timeout", "1", BOOTSTRAP)
    assert proc.returncode in (0, 124), proc.stderr
    assert "policy" not in proc.stderr, proc.stderr


def test_an_attach_kind_outside_the_policy_is_refused(tmp_path):
    policy = Policy.load(policy_file(tmp_path, """
        [attach]
        kinds = ["uprobe"]
    """))
    status, inst = run_with(BOOTSTRAP, ["-d", "0"], policy)
    assert status != 0
    assert any(m.startswith(f"policy {tmp_path / 'policy.toml'}: program 'handle_exec' attach kind auto is not in "
                            "[attach] kinds") for m in inst.messages), inst.messages


@pytest.mark.parametrize("prog,target,rules,refused", [
    ("on_xdp", "lo", 'interfaces = ["veth*"]', "interface lo is not in [attach] interfaces"),
    ("on_tc", "lo:ingress", 'interfaces = ["eth0"]', "interface lo is not in [attach] interfaces"),
    ("on_sock_create", "{cgroup}", 'cgroups = ["/sys/fs/cgroup/unified/system.slice"]', "cgroup {cgroup} is not in"),
], ids=["xdp", "tc", "cgroup"])
def test_an_attach_target_outside_the_policy_is_refused(tmp_path, cgroup, prog, target, rules, refused):
    policy = Policy.load(policy_file(tmp_path, f"[attach]\n{rules}\n"))
    target, refused = target.format(cgroup=cgroup), refused.format(cgroup=cgroup)
    config = wasm_bpf.RunConfig(policy=policy, dirs=[(os.path.dirname(cgroup),) * 2])
    guest = GuestThread(guests()["link"], [0, "detach", prog, target], "ready", config=config)
    out = guest.stop()
    assert out["link0"] == -EPERM, (out, guest.inst.messages)
    assert any(refused in m for m in guest.inst.messages), guest.inst.messages
    assert "xdp" not in subprocess.run(["ip", "link", "show", "lo"], capture_output=True, text=True).stdout


@pytest.fixture(scope="module")
def read_only_maps(tmp_path_factory):
    """The maps guest (every map operation) with m_hash and m_queue read-only."""
    path = policy_file(tmp_path_factory.mktemp("policy"), """
        [maps]
        access = "read-write"
        read-only = ["m_hash", "m_queue"]
    """)
    config = wasm_bpf.RunConfig(policy=Policy.load(path))
    inst = wasm_bpf.Instance(str(guests()["maps"]), [str(possible_cpus()), str(os.getpid())], config=config,
                             capture_output=True, report=lambda m: None)
    status = []
    thread = threading.Thread(target=lambda: status.append(inst.run()), daemon=True)
    thread.start()
    assert wait_until(lambda: b"ready=1" in inst.stdout or not thread.is_alive(), timeout=20)
    inst.stop()
    thread.join(15)
    inst.close()
    assert status == [0], inst.stdout
    return parse(inst.stdout), inst.messages, path


def test_a_read_only_map_refuses_updates_and_deletes(read_only_maps):
    out, messages, path = read_only_maps
    for check in ("update", "delete", "lookup_and_delete", "update_batch", "delete_batch", "lookup_and_delete_batch"):
        assert out[f"m_hash.{check}"] == -EPERM, (check, out)
    assert out["m_queue.push"] == -EPERM
    assert out["m_hash.next_key_end"] != -EPERM and out["m_hash.lookup_batch_end"] != -EPERM  # reads pass
    assert f"policy {path}: map 'm_hash' is in [maps] read-only, so update is refused; " \
           "add \"m_hash\" to [maps] read-write to allow it" in messages


def test_other_maps_stay_writable(read_only_maps):
    out, _, _ = read_only_maps
    assert (out["m_lru_hash.update"], out["m_lru_hash.delete"], out["m_stack.push"]) == (0, 0, 0), out


def test_a_dir_outside_the_policy_stops_the_run_before_it_starts(tmp_path):
    path = policy_file(tmp_path, """
        [files]
        dirs = ["/proc"]
    """)
    proc = cli("run", "--policy", path, "--dir", "/etc", BOOTSTRAP)
    assert proc.returncode == 1
    assert proc.stderr.strip() == (f"wasm-bpf: error: policy {path}: --dir /etc is not in [files] dirs; "
                                   "add \"/etc\" to allow it"), proc.stderr


@pytest.mark.parametrize("text,error", [
    ("[program]\ntypes = []\n", "unknown section [program]"),
    ("[programs]\ntype = [\"xdp\"]\n", "unknown key 'type' in [programs]; keys: types"),
    ("[programs]\ntypes = [\"xpd\"]\n", "[programs] types has unknown name 'xpd'; known: unspec, socket_filter"),
    ("[attach]\nkinds = [\"kprobes\"]\n", "[attach] kinds has unknown name 'kprobes'"),
    ("[attach]\nbinaries = [\"<BINARY_PATH>\"]\n", "still holds the placeholder '<BINARY_PATH>'"),
    ("[attach]\ncgroups = [\"web\"]\n", "entry 'web' is not an absolute host path"),
    ("[maps]\naccess = \"write\"\n", "[maps] access must be \"read-only\" or \"read-write\""),
    ("[maps]\nread-only = [\"a\"]\nread-write = [\"a\"]\n", "map 'a' is both in [maps] read-only and read-write"),
    ("[programs\n", "is not valid TOML"),
    ("[attach]\nprocesses = [\"self\"]\n", "[attach] processes no longer takes \"self\""),
    ("[helpers]\nallowed = [\"bpf_send_sigal\"]\n", "[helpers] allowed has unknown helper 'bpf_send_sigal'"),
], ids=["section", "key", "type", "kind", "placeholder", "relative", "level", "both", "toml", "self", "helper"])
def test_a_bad_policy_file_is_a_clear_error(tmp_path, text, error):
    path = tmp_path / "bad.toml"
    path.write_text(text)
    with pytest.raises(PolicyError) as exc:
        Policy.load(path)
    assert str(exc.value).startswith(f"policy {path}")
    assert error in str(exc.value)
    proc = cli("run", "--policy", path, BOOTSTRAP)
    assert proc.returncode == 2 and error in proc.stderr and "Traceback" not in proc.stderr, proc.stderr


@pytest.mark.unit
def test_the_documented_example_policy_is_valid():
    doc = (EXAMPLES_DIR.parent / "docs" / "policy.md").read_text()
    example = doc.split("```toml\n", 1)[1].split("```", 1)[0]
    policy = Policy.parse(example, "docs/policy.md")
    assert policy.access_of("config") == "read-write" and policy.access_of("other") == "read-only"
    assert policy.interfaces == ("veth*", "eth0")


@pytest.mark.parametrize("name", sorted(p.name for p in EXAMPLES_DIR.iterdir() if (p / "Makefile").is_file()))
def test_the_default_policy_allows_every_example(name):
    # The examples also run under it end to end (test_examples*.py, no --policy).
    from wasm_bpf.inspect import inspect_module
    subprocess.run(["make", "-C", str(EXAMPLES_DIR / name)], check=True, capture_output=True, timeout=600)
    default = Policy.default()
    for obj in inspect_module(str(EXAMPLES_DIR / name / f"{name}.wasm")).objects:
        for prog in obj.programs:
            default.check_program(prog.name, prog.type)
            default.check_attach(prog.name, prog.kind, interface="eth0", cgroup=["/sys/fs/cgroup/x"],
                                 binary=["/usr/bin/x"])
        for m in obj.maps:
            default.check_map_type(m.name, m.type)
            default.check_map_write(m.name, "update")


def test_socket_targets_of_other_processes_need_attach_processes(tmp_path):
    """PID:FD attaches a socket filter to a socket of a running process: under the
    default policy none of another process; those when [attach] processes names the
    process (its pid or command)."""
    holder = subprocess.Popen(
        [sys.executable, "-c", "import socket, sys, time\ns = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)\n"
         "print(s.fileno(), flush=True)\ntime.sleep(60)"], stdout=subprocess.PIPE, text=True)
    try:
        target = f"{holder.pid}:{holder.stdout.readline().strip()}"
        with open(f"/proc/{holder.pid}/comm") as f:
            command = f.read().strip()
        hostile = guests()["hostile"]
        status, inst = run_with(hostile, ["target", "on_socket", target], None)
        assert parse(inst.stdout)["attach"] == -EPERM
        assert inst.messages[0] == (f"policy (built-in default): program 'on_socket' socket of process {holder.pid} "
                                    f"({command}) is not in [attach] processes; add \"{command}\" to allow it")
        allowed = Policy.load(policy_file(tmp_path, f"""
            [attach]
            processes = ["{command}"]
        """))
        status, inst = run_with(hostile, ["target", "on_socket", target], allowed)
        out = parse(inst.stdout)
        assert (status, out["attach"], out["close"]) == (0, 0, 0) and out["attach_link"] > 0, inst.messages
    finally:
        holder.kill()
        holder.wait()
