"""Pinned maps (issue 13, finding 2; docs/sandbox.md): a guest object that pins a map
by name (LIBBPF_PIN_BY_NAME) is refused unless the policy grants a pin directory;
with a grant its pins go directly in that directory, never reuse a pin someone else
made, and are removed on every exit path. The guest is tests/guests/objfile_guest.c
loading tests/guests/pin.bpf.c (or a crafted copy of it) from a file."""
import json
import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

import wasm_bpf
from guests.build import guests
from guests.helpers import parse

BPFFS = Path("/sys/fs/bpf")
MAP = "wbpf_pin_map"  # the pinned map of pin.bpf.c
EEXIST, EPERM = 20, 63  # WASI numbering


@pytest.fixture
def pin_root():
    root = BPFFS / f"wasm-bpf-test-{os.getpid()}"
    yield root
    subprocess.run(["rm", "-rf", str(root)], check=True)


def policy(root=None):
    return wasm_bpf.Policy.parse(f'[maps]\npin_root = "{root}"' if root else "", "test")


def run(obj, action, pol, timeout=None, messages=None):
    config = wasm_bpf.RunConfig(dirs=[(str(obj.parent), "/obj")], policy=pol, timeout=timeout, grace_period=0.2)
    messages = [] if messages is None else messages
    with wasm_bpf.Instance(guests()["objfile"], [f"/obj/{obj.name}", action, MAP], config=config,
                           capture_output=True, report=messages.append) as inst:
        code = inst.run()
    return code, parse(inst.stdout), messages


def crafted(tmp_path, name: bytes) -> Path:
    """pin.bpf.o with its map renamed (the same length, so every offset holds)."""
    assert len(name) == len(MAP)
    obj = tmp_path / "crafted.bpf.o"
    obj.write_bytes(guests()["pin_bpf"].read_bytes().replace(MAP.encode(), name))
    return obj


def test_pinning_is_refused_without_a_pin_root():
    code, out, messages = run(guests()["pin_bpf"], "return", policy())
    assert out == {"loaded": 0}
    assert any(f"map '{MAP}' is pinned by name" in m and "[maps] pin_root" in m for m in messages), messages
    assert not (BPFFS / MAP).exists()


@pytest.mark.parametrize("action,status", [("return", 0), ("exit", 5), ("trap", 1), ("wait", 0),
                                           ("spin", 124)])
def test_pins_go_in_the_pin_root_and_are_removed_on_every_exit(pin_root, action, status):
    code, out, _ = run(guests()["pin_bpf"], action, policy(pin_root), timeout=0.5)
    assert (code, out["loaded"], out["fd_wbpf_pin_map"]) == (status, 1, 1)
    assert not (BPFFS / MAP).exists()
    assert list(pin_root.iterdir()) == []  # made during the run (next test), gone after it


def test_the_pin_exists_while_the_guest_runs(pin_root):
    inst_out = {}
    thread = threading.Thread(target=lambda: inst_out.update(
        zip(("code", "out"), run(guests()["pin_bpf"], "wait", policy(pin_root), timeout=3)[:2])))
    thread.start()
    pin = pin_root / MAP
    deadline = time.monotonic() + 5
    while not pin.exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    shown = subprocess.run(["bpftool", "map", "show", "pinned", str(pin)], capture_output=True, text=True)
    thread.join()
    assert f"name {MAP}" in shown.stdout, shown
    assert inst_out["out"]["loaded"] == 1 and not pin.exists()


def test_a_pin_the_instance_did_not_create_is_never_reused(pin_root):
    pin_root.mkdir()
    foreign = pin_root / MAP
    subprocess.run(["bpftool", "map", "create", str(foreign), "type", "hash", "key", "4", "value", "8",
                    "entries", "16", "name", MAP], check=True)
    subprocess.run(["bpftool", "map", "update", "pinned", str(foreign), "key", "0", "0", "0", "0",
                    "value", "7", "0", "0", "0", "0", "0", "0", "0"], check=True)
    code, out, messages = run(guests()["pin_bpf"], "return", policy(pin_root))
    assert out == {"loaded": 0}
    assert any(f"{foreign} is already pinned" in m and "never reuses" in m for m in messages), messages
    # The owner's map is still there, unchanged.
    dump = subprocess.run(["bpftool", "map", "dump", "pinned", str(foreign)], capture_output=True, text=True)
    assert "07 00 00 00 00 00 00 00" in dump.stdout, dump


@pytest.mark.parametrize("name", [b"wbpf/pin_map", b"wb/../pinmap", b"/tmp/pin_map"])
def test_crafted_map_names_cannot_leave_the_pin_root(pin_root, tmp_path, name):
    before = set(os.listdir(BPFFS))
    code, out, messages = run(crafted(tmp_path, name), "return", policy(pin_root))
    assert out == {"loaded": 0}, (out, messages)
    assert any("cannot be a pin name" in m for m in messages), messages
    assert set(os.listdir(BPFFS)) - {pin_root.name} == before
    assert not pin_root.exists() or list(pin_root.iterdir()) == []


@pytest.mark.parametrize("root", ["plugin", "/tmp/pins", "/sys/fs/bpf/../../../tmp", "/sys/fs/bpf", ["/sys/fs/bpf/x"]])
def test_the_pin_root_must_be_below_the_bpf_filesystem(root):
    assert wasm_bpf.Policy.parse('[maps]\npin_root = "/sys/fs/bpf/plugin/"', "p").pin_root == "/sys/fs/bpf/plugin"
    with pytest.raises(wasm_bpf.WasmBpfError, match=r"\[maps\] pin_root must be a directory below /sys/fs/bpf"):
        wasm_bpf.Policy.parse(f"[maps]\npin_root = {json.dumps(root)}", "p")


def test_sigterm_to_the_cli_removes_the_pins(pin_root, tmp_path):
    obj = guests()["pin_bpf"]
    policy_file = tmp_path / "policy.toml"
    policy_file.write_text(f'[maps]\npin_root = "{pin_root}"\n')
    proc = subprocess.Popen([sys.executable, "-m", "wasm_bpf", "run", "--policy", policy_file,
                             "--dir", f"{obj.parent}::/obj", guests()["objfile"], f"/obj/{obj.name}", "wait", MAP],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert proc.stdout.readline().strip() == "loaded=1"
        assert (pin_root / MAP).exists()
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=30)
    finally:
        proc.kill()
    assert proc.returncode == 0, err  # the guest left its loop at -EINTR and returned
    assert list(pin_root.iterdir()) == []
