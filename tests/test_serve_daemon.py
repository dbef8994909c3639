"""`wasm-bpf serve` as a system daemon: its unix socket, its persisted instances,
modules from a registry, its BPF metrics. Real daemons (subprocesses), real HTTP
clients (httpx over the unix socket, `wasm-bpf ctl`), real example modules on the
real kernel."""
import base64
import hashlib
import json
import os
import shutil
import signal
import socket
import stat
import subprocess
import tempfile
from pathlib import Path
from typing import Optional

import httpx
import pytest

from conftest import bpf_link_ids, held_bpf_ids
from test_serve import BOOTSTRAP, EXAMPLES, FAKE_PID, Daemon, RUNQLAT_OBJ, SIGSNOOP, _seen_fake_pids, _wait_for

pytestmark = pytest.mark.skipif(not SIGSNOOP.exists(), reason="build the examples first (make examples)")


class UnixDaemon(Daemon):
    """`wasm-bpf serve` on its default kind of listener, a unix socket under `tmp`."""

    def __init__(self, tmp: Path, *extra: str, state: Optional[Path] = None, run: Optional[Path] = None) -> None:
        self.socket = (run or tmp / "run") / "serve.sock"
        self.state = state or tmp / "state"
        self.proc = subprocess.Popen(
            ["wasm-bpf", "serve", "--socket", str(self.socket), "--state-dir", str(self.state),
             "--allow-dir", str(EXAMPLES), *extra], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.client = httpx.Client(transport=httpx.HTTPTransport(uds=str(self.socket)), base_url="http://serve",
                                   timeout=30)
        self._await_health(lambda: self.client.get("/healthz"))

    def close(self) -> str:
        """SIGTERM; the daemon's stderr."""
        self.client.close()
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
        return self.proc.communicate(timeout=30)[1]


def _ctl(sock: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if not k.startswith("WASM_BPF_")}
    return subprocess.run(["wasm-bpf", "ctl", "--socket", str(sock), *args], env=env, capture_output=True,
                          text=True, timeout=60)


def _as_nobody(sock: Path) -> str:
    """What a process of uid 65534 gets from the daemon's socket (a raw HTTP request)."""
    code = ("import socket, sys\n"
            "s = socket.socket(socket.AF_UNIX)\n"
            f"s.connect({str(sock)!r})\n"
            "s.sendall(b'GET /instances HTTP/1.1\\r\\nHost: x\\r\\n\\r\\n')\n"
            "print(s.recv(65536).decode())\n")
    done = subprocess.run(["setpriv", "--reuid", "65534", "--regid", "65534", "--clear-groups", "python3", "-c", code],
                          capture_output=True, text=True, timeout=30)
    return done.stdout + done.stderr


def test_the_default_listener_is_a_root_only_unix_socket(tmp_path):
    top = Path(tempfile.mkdtemp(prefix="wasm-bpf-serve-"))  # pytest's own tmp is closed to other users
    d = UnixDaemon(tmp_path, "--token-file", str(tmp_path / "token"), run=top / "run")
    try:
        for path, mode in ((d.socket.parent, 0o700), (d.socket, 0o600)):
            st = path.lstat()
            assert (stat.S_IMODE(st.st_mode), st.st_uid) == (mode, 0), (path, oct(st.st_mode), st.st_uid)
        assert stat.S_ISSOCK(d.socket.lstat().st_mode)
        assert not (tmp_path / "token").exists(), "the unix socket needs no token, yet one was made"

        started = _ctl(d.socket, "start", str(SIGSNOOP))  # no token: the socket is root's
        assert started.returncode == 0 and "running" in started.stdout and "links 6" in started.stdout, started
        instance = started.stdout.split()[0]
        assert instance in _ctl(d.socket, "list").stdout

        # A second daemon on a live socket is refused and leaves it alone.
        second = subprocess.run(["wasm-bpf", "serve", "--socket", str(d.socket), "--state-dir",
                                 str(tmp_path / "state2")], capture_output=True, text=True, timeout=60)
        assert second.returncode == 2 and f"another daemon answers on {d.socket}" in second.stderr, second.stderr
        assert d.client.get("/healthz").json()["instances"] == 1

        # Another user: the socket's mode keeps it out; loosened by an operator, the
        # daemon still refuses it by its credentials (SO_PEERCRED).
        assert "Permission denied" in _as_nobody(d.socket)
        os.chmod(top, 0o755)
        os.chmod(d.socket.parent, 0o755)
        os.chmod(d.socket, 0o666)
        answer = _as_nobody(d.socket)
        assert answer.startswith("HTTP/1.1 403") and "uid 65534 may not use this daemon" in answer, answer
        assert d.client.get(f"/instances/{instance}").json()["state"] == "running"
    finally:
        err = d.close()
        left = d.socket.exists()
        shutil.rmtree(top)
    assert "stopped 1 instance(s)" in err, err
    assert not left, "the daemon left its socket behind"


def test_a_stale_socket_is_replaced_and_a_file_is_not(tmp_path):
    run = tmp_path / "run"
    run.mkdir(mode=0o700)
    stale = socket.socket(socket.AF_UNIX)
    stale.bind(str(run / "serve.sock"))  # bound, never listening, closed: what a killed daemon leaves
    stale.close()
    d = UnixDaemon(tmp_path)
    try:
        assert d.client.get("/healthz").json() == {"status": "ok", "instances": 0}
    finally:
        d.close()
    (run / "serve.sock").write_text("not a socket")
    refused = subprocess.run(["wasm-bpf", "serve", "--socket", str(run / "serve.sock"), "--state-dir",
                              str(tmp_path / "state")], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "exists and is not a socket" in refused.stderr, refused.stderr
    assert (run / "serve.sock").read_text() == "not a socket"


def test_ctl_without_a_daemon_names_the_socket(tmp_path):
    missing = _ctl(tmp_path / "none.sock", "list")
    assert missing.returncode == 1 and missing.stderr.startswith(
        f"wasm-bpf: error: cannot reach the daemon at unix:{tmp_path / 'none.sock'}: "), missing.stderr
    assert "--socket" in missing.stderr and len(missing.stderr.splitlines()) == 1


def _fake_kill(i: int) -> None:
    try:
        os.kill(FAKE_PID + i, 0)
    except ProcessLookupError:
        pass


def _sees_fake_kill(d: UnixDaemon, instance: str, i: int) -> bool:
    _fake_kill(i)
    return bool(_wait_for(lambda: i in _seen_fake_pids(d.logs(instance))))


def test_instances_persist_across_a_restart_and_a_kill_leaves_nothing_attached(tmp_path):
    d = UnixDaemon(tmp_path)
    try:
        snoop = d.start(path=str(SIGSNOOP), name="snoop", args=["-x"], env={"A": "1"},
                        limits={"max_memory": 64 << 20})
        boot = d.start(module_base64=base64.b64encode(BOOTSTRAP.read_bytes()).decode(), filename="bootstrap.wasm",
                       args=["-d", "50"])
        stopped = d.start(path=str(SIGSNOOP), name="stopped")
        d.client.post(f"/instances/{stopped['id']}/stop").raise_for_status()
        wat = b'(module (memory (export "memory") 1) (func (export "_start")))'
        gone = d.start(module_base64=base64.b64encode(wat).decode(), filename="gone.wat")
        d.client.delete(f"/instances/{gone['id']}").raise_for_status()
        assert _sees_fake_kill(d, snoop["id"], 1)

        state = d.state / "instances.json"
        assert stat.S_IMODE(state.stat().st_mode) == 0o600 and stat.S_IMODE(d.state.stat().st_mode) == 0o700
        records = {r["id"]: r for r in json.loads(state.read_text())["instances"]}
        assert set(records) == {snoop["id"], boot["id"]}, records
        assert records[snoop["id"]]["args"] == ["-x"] and records[snoop["id"]]["env"] == {"A": "1"}
        blobs = {p.name for p in (d.state / "modules" / "blobs" / "sha256").iterdir()}
        assert blobs == {hashlib.sha256(SIGSNOOP.read_bytes()).hexdigest(),
                         hashlib.sha256(BOOTSTRAP.read_bytes()).hexdigest()}, "modules kept: the uploads, no other"

        _, links = held_bpf_ids(str(d.proc.pid))
        assert len(links) == 6 + 2
        d.proc.kill()  # SIGKILL: no cleanup of its own
        d.proc.wait(10)
    finally:
        d.close()
    assert not (links & bpf_link_ids()), "a killed daemon left links attached"

    again = UnixDaemon(tmp_path)  # the same state directory; the killed daemon's socket is stale
    try:
        listed = {i["id"]: i for i in again.client.get("/instances").json()}
        assert set(listed) == {snoop["id"], boot["id"]}, listed
        assert (listed[snoop["id"]]["name"], listed[snoop["id"]]["args"], listed[snoop["id"]]["state"],
                listed[snoop["id"]]["links"]) == ("snoop", ["-x"], "running", 6)
        assert listed[boot["id"]]["state"] == "running" and listed[boot["id"]]["origin"] == "upload"
        _, new_links = held_bpf_ids(str(again.proc.pid))
        assert len(new_links) == 8 and not (new_links & links)
        assert _sees_fake_kill(again, snoop["id"], 2), again.logs(snoop["id"])
    finally:
        err = again.close()  # SIGTERM stops them, and keeps them for the next daemon
    assert "restored 2 instance(s)" in err and "stopped 2 instance(s)" in err, err

    third = UnixDaemon(tmp_path)
    try:
        assert {i["id"] for i in third.client.get("/instances").json()} == {snoop["id"], boot["id"]}
    finally:
        third.close()


def test_an_instance_the_daemon_now_refuses_is_kept_for_later(tmp_path):
    d = UnixDaemon(tmp_path, "--allow-kernel-only")
    try:
        ko = d.start(path=str(RUNQLAT_OBJ), name="runqlat")
    finally:
        d.close()
    strict = UnixDaemon(tmp_path)  # without --allow-kernel-only
    try:
        assert strict.client.get("/instances").json() == []
    finally:
        err = strict.close()
    assert f"instance {ko['id']} (runqlat) not restored: kernel-only programs run with no policy" in err, err
    assert "--allow-kernel-only" in err
    d = UnixDaemon(tmp_path, "--allow-kernel-only")
    try:
        back = d.client.get(f"/instances/{ko['id']}").json()
        assert back["state"] == "running" and back["links"] > 0, back
    finally:
        d.close()


def test_a_state_directory_serves_one_daemon(tmp_path):
    d = UnixDaemon(tmp_path)
    try:
        other = subprocess.run(["wasm-bpf", "serve", "--socket", str(tmp_path / "other.sock"), "--state-dir",
                                str(d.state)], capture_output=True, text=True, timeout=60)
        assert other.returncode == 2 and f"another daemon uses the state directory {d.state}" in other.stderr
    finally:
        d.close()
    open_dir = tmp_path / "open"
    open_dir.mkdir(mode=0o777)
    os.chmod(open_dir, 0o777)
    refused = subprocess.run(["wasm-bpf", "serve", "--socket", str(tmp_path / "x.sock"), "--state-dir",
                              str(open_dir)], capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2 and "is writable by other users" in refused.stderr, refused.stderr


@pytest.fixture
def local_registry(tmp_path, monkeypatch):
    """tests/test_oci.py's registry on loopback; the pushing CLI with its own cache and
    no credentials of the machine's user."""
    from test_oci import LocalRegistry

    monkeypatch.setenv("WASM_BPF_CACHE", str(tmp_path / "push-cache"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "none.json"))
    (tmp_path / "reg").mkdir()
    reg = LocalRegistry(tmp_path / "reg")
    yield reg
    reg.stop()


def test_modules_by_oci_reference_and_url(tmp_path, local_registry):
    from test_oci import push, serve as serve_files

    push(local_registry, SIGSNOOP, "tools/sigsnoop:v1")
    ref = f"{local_registry.host}/tools/sigsnoop:v1"
    policy = tmp_path / "policy.toml"
    policy.write_text(f'[registries]\nallow = ["{local_registry.host}/tools/*"]\n')
    d = UnixDaemon(tmp_path, "--plain-http", "--policy", str(policy))
    files = serve_files(BOOTSTRAP.parent)
    try:
        snoop = d.start(ref=ref, args=["-x"])
        assert (snoop["state"], snoop["links"], snoop["origin"], snoop["source"]) == \
            ("running", 6, ref, "sigsnoop.wasm"), snoop
        assert _sees_fake_kill(d, snoop["id"], 3)
        by_url = _ctl(d.socket, "start", f"http://127.0.0.1:{files.server_port}/bootstrap.wasm", "--", "-d", "50")
        assert by_url.returncode == 0 and "bootstrap.wasm" in by_url.stdout and "running" in by_url.stdout, by_url

        for body, words in [
            ({"ref": f"{local_registry.host}/other/sigsnoop:v1"}, "[registries] allow"),
            ({"ref": f"{local_registry.host}/tools/missing:v1"}, "tools/missing"),
            ({"ref": "/etc/passwd"}, "is not an OCI reference"),
            ({"url": "file:///etc/passwd"}, "is not an http:// or https:// URL"),
            ({"ref": ref, "path": str(SIGSNOOP)}, "exactly one of path"),
        ]:
            r = d.client.post("/instances", json=body)
            assert r.status_code in (400, 403) and words in r.json()["error"], (body, r.text)
            assert "\n" not in r.json()["error"]
        assert len(d.client.get("/instances").json()) == 2
    finally:
        files.shutdown()
        d.close()
    local_registry.stop()

    # What was pulled is what a restarted daemon runs, with the registry gone.
    again = UnixDaemon(tmp_path, "--plain-http", "--policy", str(policy))
    try:
        back = again.client.get(f"/instances/{snoop['id']}").json()
        assert (back["state"], back["links"], back["origin"]) == ("running", 6, ref), back
    finally:
        again.close()


def test_instance_status_is_public_and_live():
    """Instance.status(), what the daemon reads of a running guest from another thread."""
    import threading

    from wasm_bpf.instance import Instance, RunConfig

    inst = Instance(str(SIGSNOOP), ["-x"], config=RunConfig(stdout="capture", grace_period=1))
    before = inst.status()
    assert (before.links, before.polled, before.buffers, before.memory_bytes) == (0, False, (), 0)
    runner = threading.Thread(target=inst.run)
    runner.start()
    try:
        assert _wait_for(lambda: inst.status().polled)
        status = inst.status()
        assert status.links == 6 == sum(len(obj.links) for obj in status.objects)
        assert status.memory_bytes >= 64 * 1024 and status.memory_bytes % 65536 == 0
        _fake_kill(4)
        delivered = _wait_for(lambda: [b for b in inst.status().buffers if b.map_name == "events" and b.delivered])
        assert delivered, inst.status().buffers
    finally:
        inst.stop()
        runner.join(10)
        inst.close()
    after = inst.status()
    assert after.links == 0 and after.objects == () and after.buffers[0].delivered >= 1


def _series(text: str, name: str, instance: str) -> dict:
    """{labels: value} of metric NAME for INSTANCE in a /metrics text."""
    out = {}
    for line in text.splitlines():
        if line.startswith(name + "{") and f'instance_id="{instance}"' in line:
            labels, _, value = line.rpartition(" ")
            out[labels] = float(value)
    return out


def test_metrics_have_bpf_run_stats_and_memory(tmp_path):
    d = UnixDaemon(tmp_path, "--allow-kernel-only")
    try:
        snoop = d.start(path=str(SIGSNOOP))
        ko = d.start(path=str(RUNQLAT_OBJ), name="runqlat")
        for i in range(20):
            _fake_kill(100 + i)
        text = d.client.get("/metrics").text
        assert "wasm_bpf_bpf_stats_enabled 1.0" in text
        runs = _series(text, "wasm_bpf_instance_bpf_runs_total", snoop["id"])
        kill_runs = [v for k, v in runs.items() if 'program="kill_enter"' in k]
        assert len(runs) == 6 and kill_runs and kill_runs[0] >= 20, runs
        seconds = _series(text, "wasm_bpf_instance_bpf_run_seconds_total", snoop["id"])
        assert any(v > 0 for k, v in seconds.items() if 'program="kill_enter"' in k), seconds
        assert sum(_series(text, "wasm_bpf_instance_bpf_runs_total", ko["id"]).values()) > 0  # the scheduler runs
        (memlock,) = _series(text, "wasm_bpf_instance_map_memory_bytes", snoop["id"]).values()
        assert memlock >= 4096, memlock
        (memory,) = _series(text, "wasm_bpf_instance_memory_bytes", snoop["id"]).values()
        assert memory >= 65536 and memory % 65536 == 0, memory
        assert not _series(text, "wasm_bpf_instance_memory_bytes", ko["id"]), "a kernel-only run has no guest memory"
    finally:
        d.close()
