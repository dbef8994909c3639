"""`wasm-bpf serve`: the daemon as a user runs it (a subprocess on 127.0.0.1, a real
HTTP client), real example modules on the real kernel."""
import base64
import json
import shutil
import os
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Callable, Iterator, List

import httpx
import pytest

from conftest import bpf_link_ids, held_bpf_ids

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "bench"))
from serve_soak import daemon_fds as _fds  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = ROOT / "wasm_examples"
SIGSNOOP = EXAMPLES / "sigsnoop" / "sigsnoop.wasm"
BOOTSTRAP = EXAMPLES / "bootstrap" / "bootstrap.wasm"
RUNQLAT_OBJ = EXAMPLES / "runqlat" / ".output" / "runqlat.bpf.o"
FAKE_PID = 3_000_000  # kill(FAKE_PID + i, 0) fails with ESRCH, and sigsnoop reports it: a numbered event


class Daemon:
    def __init__(self, tmp: Path, *extra: str) -> None:
        with socket.socket() as s:
            s.bind(("127.0.0.1", 0))
            self.port = s.getsockname()[1]
        self.token_file = tmp / "token"
        self.proc = subprocess.Popen(
            ["wasm-bpf", "serve", "--port", str(self.port), "--token-file", str(self.token_file),
             "--state-dir", str(tmp / "state"), "--allow-dir", str(EXAMPLES), "--allow-dir", str(tmp),
             "--max-upload", "2M", *extra],
            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self._await_health(lambda: httpx.get(f"http://127.0.0.1:{self.port}/healthz"))
        self.client = httpx.Client(base_url=f"http://127.0.0.1:{self.port}", timeout=30,
                                   headers={"Authorization": f"Bearer {self.token_file.read_text().strip()}"})

    def _await_health(self, get: Callable[[], httpx.Response]) -> None:
        deadline = time.monotonic() + 20
        while True:
            try:
                if get().status_code == 200:
                    return
            except httpx.TransportError:
                pass
            assert self.proc.poll() is None, self.proc.communicate()
            assert time.monotonic() < deadline, "the daemon did not answer in 20 s"
            time.sleep(0.1)

    def start(self, **body) -> dict:
        r = self.client.post("/instances", json=body)
        assert r.status_code == 201, r.text
        return r.json()

    def logs(self, instance: str) -> List[str]:
        return [line["text"] for line in self.client.get(f"/instances/{instance}/logs").json()["lines"]]

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)
            self.proc.wait(30)
        self.client.close()


@pytest.fixture(scope="module")
def daemon(tmp_path_factory) -> Iterator[Daemon]:
    if not SIGSNOOP.exists():
        pytest.skip("build the examples first (make examples)")
    d = Daemon(tmp_path_factory.mktemp("serve"), "--allow-kernel-only", "--max-instances", "6")
    yield d
    d.close()


def _wait_for(predicate, seconds: float = 10.0):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(0.05)
    return predicate()


def _fake_kills(stop: threading.Event, sent: List[int]) -> None:
    i = 0
    while not stop.is_set():
        try:
            os.kill(FAKE_PID + i, 0)
        except ProcessLookupError:
            pass
        sent.append(i)
        i += 1
        time.sleep(0.002)


def _seen_fake_pids(lines: List[str]) -> set:
    seen = set()
    for line in lines:
        fields = line.split()
        if len(fields) >= 6 and fields[4].isdigit() and int(fields[4]) >= FAKE_PID:
            seen.add(int(fields[4]) - FAKE_PID)
    return seen


def test_start_by_path_shows_events_then_stop_releases_everything(daemon):
    inst = daemon.start(path=str(SIGSNOOP))
    assert inst["state"] == "running" and inst["links"] > 0
    assert inst["attach_ms"] > 0
    progs, links = held_bpf_ids(str(daemon.proc.pid))
    assert links, "the daemon holds no link of the running instance"
    try:
        os.kill(FAKE_PID + 7, 0)
    except ProcessLookupError:
        pass
    assert _wait_for(lambda: 7 in _seen_fake_pids(daemon.logs(inst["id"]))), daemon.logs(inst["id"])
    stats = daemon.client.get(f"/instances/{inst['id']}/stats").json()
    assert stats["buffers"][0]["map"] == "events" and stats["buffers"][0]["delivered"] >= 1
    metrics = daemon.client.get("/metrics").text
    assert f'wasm_bpf_instance_state{{instance_id="{inst["id"]}",kind="wasm",name="sigsnoop.wasm",state="running"}} 1.0' \
        in metrics

    stopped = daemon.client.post(f"/instances/{inst['id']}/stop").json()  # no body, no Content-Length
    assert stopped["state"] == "exited" and stopped["links"] == 0
    assert held_bpf_ids(str(daemon.proc.pid)) == (set(), set())
    assert not (links & bpf_link_ids()), "links of the stopped instance are still in the kernel"
    assert daemon.client.delete(f"/instances/{inst['id']}").json() == {"deleted": inst["id"]}


def test_hot_plug_takes_under_100_ms(daemon):
    """From the HTTP request to the answer, which comes once the programs are attached:
    the median of 7 starts (bench/serve.py measures 100 of them)."""
    took = []
    for _ in range(7):
        t0 = time.perf_counter()
        inst = daemon.start(path=str(SIGSNOOP))
        took.append(time.perf_counter() - t0)
        assert inst["state"] == "running" and inst["links"] == 6
        daemon.client.delete(f"/instances/{inst['id']}")
    took.sort()
    assert took[3] < 0.1, f"median hot plug {took[3] * 1000:.1f} ms (all: {[round(t * 1000) for t in took]})"


def test_update_in_place_loses_no_event(daemon):
    inst = daemon.start(path=str(SIGSNOOP), name="snoop")
    _, old_links = held_bpf_ids(str(daemon.proc.pid))
    stop, sent = threading.Event(), []
    sender = threading.Thread(target=_fake_kills, args=(stop, sent))
    sender.start()
    try:
        time.sleep(0.3)
        r = daemon.client.put(f"/instances/{inst['id']}", json={"path": str(SIGSNOOP)})
        time.sleep(0.3)
    finally:
        stop.set()
        sender.join()
    assert r.status_code == 200, r.text
    assert r.json()["generation"] == 1 and r.json()["id"] == inst["id"]
    lines = _wait_for(lambda: (lambda ls: ls if set(sent) <= _seen_fake_pids(ls) else None)(daemon.logs(inst["id"])))
    missing = set(sent) - _seen_fake_pids(daemon.logs(inst["id"]))
    assert not missing, f"{len(missing)} of {len(sent)} events missed around the update: {sorted(missing)[:10]}"
    assert lines and any("updated to generation 1" in line for line in lines)
    _, new_links = held_bpf_ids(str(daemon.proc.pid))
    assert len(new_links) == len(old_links) and not (new_links & old_links), "the old version is still attached"
    daemon.client.delete(f"/instances/{inst['id']}")


def test_an_update_that_fails_keeps_the_running_version(daemon):
    inst = daemon.start(path=str(SIGSNOOP))
    wat = b'(module (memory (export "memory") 1) (func (export "_start") unreachable))'
    r = daemon.client.put(f"/instances/{inst['id']}", json={"module_base64": base64.b64encode(wat).decode()})
    assert r.status_code == 422 and "the guest trapped" in r.json()["error"], r.text
    assert "the running version is kept" in r.json()["error"]
    kept = daemon.client.get(f"/instances/{inst['id']}").json()
    assert (kept["state"], kept["generation"], kept["links"]) == ("running", 0, 6)
    daemon.client.delete(f"/instances/{inst['id']}")


def test_concurrent_start_stop_cycles_leave_nothing_behind(daemon):
    """12 clients at once, each starting and deleting sigsnoop 3 times, against a daemon
    that keeps 6 instances: each answer is a start or a clear 429; nothing stays. Two
    rounds: the second leaves the daemon with no more fds than the first (pools warmed)."""
    def round_of_clients() -> List[int]:
        answers: List[int] = []
        errors: List[str] = []

        def client() -> None:
            with httpx.Client(base_url=str(daemon.client.base_url), headers=daemon.client.headers,
                              timeout=60) as c:
                for _ in range(3):
                    r = c.post("/instances", json={"path": str(SIGSNOOP)})
                    answers.append(r.status_code)
                    if r.status_code == 201:
                        c.delete(f"/instances/{r.json()['id']}").raise_for_status()
                    elif "--max-instances" not in r.json()["error"]:
                        errors.append(r.text)

        clients = [threading.Thread(target=client) for _ in range(12)]
        for t in clients:
            t.start()
        for t in clients:
            t.join(120)
        assert not errors and set(answers) <= {201, 429} and answers.count(201) >= 6, (answers, errors)
        assert daemon.client.get("/instances").json() == []
        assert held_bpf_ids(str(daemon.proc.pid)) == (set(), set())
        return answers

    round_of_clients()
    after_first = _fds(daemon.proc.pid)
    round_of_clients()
    assert _wait_for(lambda: _fds(daemon.proc.pid) <= after_first), (after_first, _fds(daemon.proc.pid))


def test_upload_and_live_log_stream(daemon):
    upload = base64.b64encode(BOOTSTRAP.read_bytes()).decode()
    inst = daemon.start(module_base64=upload, filename="bootstrap.wasm")
    assert inst["kind"] == "wasm" and inst["state"] == "running"
    got = []
    with daemon.client.stream("GET", f"/instances/{inst['id']}/logs/stream") as stream:
        subprocess.run(["/bin/true"], check=True)
        for line in stream.iter_lines():
            if line.startswith("data: "):
                got.append(json.loads(line[6:]))
                if any("true" in entry["text"].split() for entry in got):
                    break
    assert any(entry["stream"] == "stdout" and "true" in entry["text"].split() for entry in got), got
    assert [entry["seq"] for entry in got] == list(range(len(got)))
    daemon.client.delete(f"/instances/{inst['id']}")


def test_a_trapping_guest_fails_alone(daemon):
    wat = b'(module (memory (export "memory") 1) (func (export "_start") unreachable))'
    inst = daemon.start(module_base64=base64.b64encode(wat).decode(), filename="trap.wat", wait=2)
    done = _wait_for(lambda: (lambda i: i if i["state"] == "failed" else None)(
        daemon.client.get(f"/instances/{inst['id']}").json()))
    assert done and done["exit_code"] == 1 and "the guest trapped" in done["error"], done
    assert any("the guest trapped" in line for line in daemon.logs(inst["id"]))
    assert daemon.client.get("/healthz").json()["status"] == "ok"
    daemon.client.delete(f"/instances/{inst['id']}")


def test_kernel_only_program_exports_its_histogram_and_named_maps(daemon):
    if not RUNQLAT_OBJ.exists():
        pytest.skip("runqlat's object is built with the examples")
    inst = daemon.start(path=str(RUNQLAT_OBJ), name="runqlat")
    named = daemon.start(path=str(RUNQLAT_OBJ), name="runqlat-start", args=["--map", "start"])
    assert inst["kind"] == "kernel-only" and inst["state"] == "running" and inst["links"] > 0, inst
    subprocess.run(["sh", "-c", "for i in 1 2 3 4 5 6 7 8; do sleep 0.01; done"], check=True)
    series = f'wasm_bpf_map_histogram_bucket{{instance_id="{inst["id"]}"'
    metrics = _wait_for(lambda: (lambda t: t if series in t and 'map="start"' in t else None)(
        daemon.client.get("/metrics").text))
    assert metrics, "no histogram series of runqlat's hists map, or no gauge of its start map"
    inf = [line for line in metrics.splitlines() if line.startswith(series) and 'le="+Inf"' in line]
    assert inf and float(inf[0].rsplit(" ", 1)[1]) > 0, inf
    gauges = [line for line in metrics.splitlines() if line.startswith("wasm_bpf_map_value{")]
    assert gauges and all(f'instance_id="{named["id"]}"' in g and 'map="start"' in g for g in gauges), gauges[:3]
    for i in (inst, named):
        daemon.client.delete(f"/instances/{i['id']}")


@pytest.mark.parametrize("request_body, status, words", [
    ({"path": "/etc/passwd"}, 403, "outside the directories"),
    ({"path": str(SIGSNOOP), "dirs": ["/etc"]}, 403, "dir /etc is outside the directories this daemon may grant"),
    ({"path": str(SIGSNOOP), "dirs": [str(EXAMPLES)]}, 403, "--grant-dir"),  # loading from it is no grant
    ({"path": str(SIGSNOOP), "policy": "[programs]\ntypes = [\"nope\"]\n"}, 400, "unknown name 'nope'"),
    ({"path": str(SIGSNOOP), "policy": "[programs\n"}, 400, "not valid TOML"),
    ({"path": str(SIGSNOOP), "limits": {"max_memory": 1 << 40}}, 400, "may only lower a limit"),
    ({"path": str(SIGSNOOP), "limits": {"max_cpu": 1}}, 400, "unknown limit 'max_cpu'"),
    ({"module_base64": base64.b64encode(b"hello").decode()}, 400, "neither a WebAssembly module"),
    ({"module_base64": "%%%"}, 400, "not base64"),
    ({}, 400, "exactly one of path"),
    ({"path": str(SIGSNOOP), "color": "red"}, 422, "color"),
])
def test_bad_requests_get_one_line_json_errors(daemon, request_body, status, words):
    before = daemon.client.get("/instances").json()
    r = daemon.client.post("/instances", json=request_body)
    assert r.status_code == status, r.text
    assert words in r.json()["error"] and "\n" not in r.json()["error"]
    assert daemon.client.get("/instances").json() == before, "a refused request left an instance"


def test_refusals_outside_the_body(daemon, tmp_path):
    r = daemon.client.get("/instances/nosuch")
    assert r.status_code == 404 and "no instance 'nosuch'" in r.json()["error"]
    r = httpx.get(f"http://127.0.0.1:{daemon.port}/instances")
    assert r.status_code == 401 and "Bearer" in r.json()["error"]
    r = daemon.client.post("/instances", json={"module_base64": "A" * (3 << 20)})
    assert r.status_code == 413 and "--max-upload" in r.json()["error"]
    link = Path(daemon.token_file).parent / "passwd.wasm"  # an allowed directory, a link leading out of it
    link.symlink_to("/etc/passwd")
    r = daemon.client.post("/instances", json={"path": str(link)})
    assert r.status_code == 403 and "outside the directories" in r.json()["error"]
    assert "/instances" in daemon.client.get("/openapi.json").json()["paths"]
    token = daemon.token_file.read_text().strip()
    # curl -X POST sends no Content-Length at all: fine; a chunked body has no size to check first: refused
    no_body = _raw(daemon.port, f"POST /instances/nosuch/stop HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}"
                                "\r\nConnection: close\r\n\r\n")
    assert no_body.startswith("HTTP/1.1 404") and "no instance 'nosuch'" in no_body, no_body
    chunked = _raw(daemon.port, f"POST /instances HTTP/1.1\r\nHost: x\r\nAuthorization: Bearer {token}\r\n"
                                "Transfer-Encoding: chunked\r\nConnection: close\r\n\r\n2\r\n{}\r\n0\r\n\r\n")
    assert chunked.startswith("HTTP/1.1 411") and "Content-Length" in chunked, chunked
    r = daemon.client.post("/instances", content=b'{"path": "x"}', headers={"content-type": "text/plain"})
    assert r.status_code == 415 and "application/json" in r.json()["error"]


def _raw(port: int, request: str) -> str:
    with socket.create_connection(("127.0.0.1", port), timeout=10) as s:
        s.sendall(request.encode())
        answer = b""
        while chunk := s.recv(65536):
            answer += chunk
    return answer.decode()


def test_ctl_starts_lists_follows_and_stops(daemon):
    env = {**os.environ, "WASM_BPF_URL": f"http://127.0.0.1:{daemon.port}",
           "WASM_BPF_TOKEN_FILE": str(daemon.token_file)}

    def ctl(*args: str) -> subprocess.CompletedProcess:
        return subprocess.run(["wasm-bpf", "ctl", *args], env=env, capture_output=True, text=True, timeout=60)

    started = ctl("start", "--upload", "--name", "via-ctl", str(SIGSNOOP), "--", "-x")
    assert started.returncode == 0 and "via-ctl" in started.stdout and "running" in started.stdout, started
    instance = started.stdout.split()[0]
    assert instance in ctl("list").stdout
    follower = subprocess.Popen(["wasm-bpf", "ctl", "logs", "-f", instance], env=env, stdout=subprocess.PIPE,
                                text=True)
    assert follower.stdout is not None
    assert follower.stdout.readline().split()[:2] == ["TIME", "PID"]
    stopped = ctl("stop", instance)
    assert "exited" in stopped.stdout and "links 0" in stopped.stdout, stopped
    assert follower.wait(10) == 0, "ctl logs -f did not end with the instance"
    assert ctl("rm", instance).returncode == 0
    missing = ctl("stop", instance)
    assert missing.returncode == 1 and missing.stderr == f"wasm-bpf: error: no instance '{instance}' " \
        "(GET /instances lists them)\n"


@pytest.mark.unit
def test_log_buffer_keeps_the_last_lines_and_reads_from_a_cursor():
    from wasm_bpf.service.logs import MAX_LINE, LogBuffer

    log = LogBuffer(3)
    log.writer("stdout").extend(b"one\ntwo\nthr")
    assert [line.text for line in log.read()[0]] == ["one", "two"]
    log.writer("stdout").extend(b"ee\n" + b"x" * (MAX_LINE + 10) + b"\n")
    lines, cursor = log.read()
    assert [line.text[:5] for line in lines] == ["two", "three", "xxxxx"] and len(lines[-1].text) == MAX_LINE
    assert (cursor, log.dropped, lines[0].seq) == (4, 1, 1)
    log.add("host", "done")
    assert [(line.seq, line.stream, line.text) for line in log.read(cursor)[0]] == [(4, "host", "done")]
    assert log.read(99) == ([], 5)


def test_a_daemon_policy_applies_to_every_instance(tmp_path):
    if not SIGSNOOP.exists():
        pytest.skip("build the examples first (make examples)")
    policy = tmp_path / "kprobes.toml"
    policy.write_text('[programs]\ntypes = ["kprobe"]\n')
    d = Daemon(tmp_path, "--policy", str(policy))
    try:
        refused = d.client.post("/instances", json={"path": str(SIGSNOOP), "policy": "[maps]\naccess = \"read-only\"\n"})
        assert refused.status_code == 403 and "send no policy" in refused.json()["error"]
        inst = d.start(path=str(SIGSNOOP))
        assert inst["state"] == "failed" and f"policy {policy}" in inst["error"], inst
        assert "type tracepoint is not in [programs] types" in inst["error"]
    finally:
        d.close()


def test_sigterm_stops_every_instance_even_with_a_log_followed(tmp_path):
    if not SIGSNOOP.exists():
        pytest.skip("build the examples first (make examples)")
    d = Daemon(tmp_path)
    try:
        ids = [d.start(path=str(SIGSNOOP))["id"], d.start(path=str(BOOTSTRAP))["id"]]
        _, links = held_bpf_ids(str(d.proc.pid))
        assert len(links) > 2
        def follow() -> None:
            try:
                with d.client.stream("GET", f"/instances/{ids[0]}/logs/stream") as stream:
                    for _line in stream.iter_lines():
                        pass
            except httpx.HTTPError:  # the daemon closed it at shutdown
                pass
        follower = threading.Thread(target=follow, daemon=True)
        follower.start()
        time.sleep(0.2)
        t0 = time.monotonic()
        d.proc.send_signal(signal.SIGTERM)
        _out, err = d.proc.communicate(timeout=20)
        assert d.proc.returncode in (0, -signal.SIGTERM), err  # uvicorn re-raises the signal once done
        assert time.monotonic() - t0 < 10
        assert "stopped 2 instance(s)" in err and "Traceback" not in err, err
        assert not (links & bpf_link_ids()), "links of the daemon's instances outlived it"
    finally:
        d.close()


def test_real_prometheus_scrapes_the_daemon(daemon, tmp_path):
    """Debian's prometheus scrapes /metrics (with the token) and its query API returns
    the instance's series, and a rate() of the events we triggered."""
    if not shutil.which("prometheus"):
        pytest.skip("Debian's prometheus is not installed (make deps)")
    inst = daemon.start(path=str(SIGSNOOP), name="scraped")
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        prom_port = s.getsockname()[1]
    (tmp_path / "prom.yml").write_text(
        "global:\n  scrape_interval: 1s\n"
        "scrape_configs:\n  - job_name: wasm-bpf\n"
        f"    authorization:\n      credentials_file: {daemon.token_file}\n"
        f"    static_configs:\n      - targets: ['127.0.0.1:{daemon.port}']\n")
    prom = subprocess.Popen(["prometheus", f"--config.file={tmp_path / 'prom.yml'}",
                             f"--storage.tsdb.path={tmp_path / 'data'}",
                             f"--web.listen-address=127.0.0.1:{prom_port}"],
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    stop, sent = threading.Event(), []
    sender = threading.Thread(target=_fake_kills, args=(stop, sent))
    sender.start()

    def query(expr: str) -> list:
        try:
            r = httpx.get(f"http://127.0.0.1:{prom_port}/api/v1/query", params={"query": expr})
        except httpx.TransportError:
            return []
        return r.json()["data"]["result"] if r.status_code == 200 else []

    try:
        up = _wait_for(lambda: query(f'wasm_bpf_instance_state{{instance_id="{inst["id"]}",state="running"}} == 1'), 30)
        assert up and up[0]["metric"]["name"] == "scraped", up
        rate = _wait_for(lambda: [r for r in query(
            f'rate(wasm_bpf_instance_events_delivered_total{{instance_id="{inst["id"]}"}}[5s])')
            if float(r["value"][1]) > 10], 30)
        assert rate, "prometheus saw no rate of the events we triggered"
    finally:
        stop.set()
        sender.join()
        prom.terminate()
        prom.wait(10)
        daemon.client.delete(f"/instances/{inst['id']}")
