"""Distribution like container images (docs/oci.md), with real parts: Debian's
docker-registry on loopback (plain HTTP, and htpasswd auth), skopeo as an independent
client, a local http.server, real example modules run against the kernel."""
import base64
import hashlib
import http.server
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from example_helpers import EXAMPLES_DIR, Tool, unused_pid, wasm_bpf_command
from ko_helpers import compile_example

BOOTSTRAP = EXAMPLES_DIR / "bootstrap" / "bootstrap.wasm"
SIGSNOOP = EXAMPLES_DIR / "sigsnoop" / "sigsnoop.wasm"
SIGSNOOP_HEADER = r"^TIME\s+PID\s+COMM\s+SIG\s+TPID\s+RESULT$"
BOOTSTRAP_USAGE = "Usage: bootstrap [-d MS] [-h]"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class LocalRegistry:
    """`docker-registry serve` on 127.0.0.1 with its storage in a temp dir."""

    def __init__(self, root: Path, htpasswd: Path = None) -> None:
        assert shutil.which("docker-registry") and shutil.which("skopeo"), \
            "Debian's docker-registry and skopeo are missing: `make deps` installs them"
        self.root, self.port = root, free_port()
        self.host = f"127.0.0.1:{self.port}"
        auth = f"auth:\n  htpasswd:\n    realm: test\n    path: {htpasswd}\n" if htpasswd else ""
        config = root / "config.yml"
        config.write_text(f"version: 0.1\nstorage:\n  filesystem:\n    rootdirectory: {root / 'data'}\n"
                          f"http:\n  addr: {self.host}\n{auth}")
        self.log = open(root / "registry.log", "wb")
        env = {k: v for k, v in os.environ.items() if not k.startswith("REGISTRY_")}  # its config overrides
        self.proc = subprocess.Popen(["docker-registry", "serve", str(config)], stdout=self.log, stderr=self.log,
                                     env=env)
        deadline = time.monotonic() + 20
        while True:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=1).close()
                break
            except OSError:
                assert self.proc.poll() is None and time.monotonic() < deadline, (root / "registry.log").read_text()
                time.sleep(0.05)

    def blob(self, digest: str) -> Path:
        hex_digest = digest.partition(":")[2]
        return self.root / "data/docker/registry/v2/blobs/sha256" / hex_digest[:2] / hex_digest / "data"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            self.proc.wait(10)
        self.log.close()


@pytest.fixture
def registry(tmp_path):
    (tmp_path / "reg").mkdir()
    reg = LocalRegistry(tmp_path / "reg")
    yield reg
    reg.stop()


@pytest.fixture(autouse=True)
def cache(tmp_path, monkeypatch):
    """Each test its own cache and no credentials of the machine's user."""
    monkeypatch.setenv("WASM_BPF_CACHE", str(tmp_path / "cache"))
    monkeypatch.setenv("DOCKER_CONFIG", str(tmp_path / "docker"))
    monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "none.json"))
    return tmp_path / "cache"


def cli(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([*wasm_bpf_command(), *args], capture_output=True, text=True, timeout=timeout,
                          stdin=subprocess.DEVNULL)


def push(reg: LocalRegistry, path: Path, name: str, *extra: str) -> str:
    """Pushes PATH to REGISTRY/NAME; returns the manifest digest it printed."""
    res = cli("push", "--plain-http", *extra, str(path), f"{reg.host}/{name}")
    assert res.returncode == 0, res.stderr
    ref, _, digest = res.stdout.strip().rpartition("@")
    assert ref == f"{reg.host}/{name}" and digest.startswith("sha256:"), res.stdout
    return digest


def one_line_error(res: subprocess.CompletedProcess, *words: str) -> str:
    assert res.returncode == 1, res
    lines = res.stderr.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("wasm-bpf: error: "), res.stderr
    for word in words:
        assert word in lines[0], lines[0]
    return lines[0]


def run_help(ref: str, *opts: str) -> subprocess.CompletedProcess:
    return cli("run", "--plain-http", *opts, ref, "--", "-h")


def skopeo_raw(ref: str, *opts: str) -> bytes:
    return subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", *opts, f"docker://{ref}"],
                          check=True, capture_output=True, timeout=60).stdout


# ---- layout -------------------------------------------------------------------------------
def test_skopeo_reads_what_we_push(registry, tmp_path):
    digest = push(registry, BOOTSTRAP, "tools/bootstrap:v1", "--description", "exec/exit tracer",
                  "--source", "https://example.org/bootstrap", "--version", "1.0")
    raw = skopeo_raw(f"{registry.host}/tools/bootstrap:v1")
    assert "sha256:" + hashlib.sha256(raw).hexdigest() == digest
    manifest = json.loads(raw)
    assert manifest["mediaType"] == "application/vnd.oci.image.manifest.v1+json"
    assert manifest["config"]["mediaType"] == "application/vnd.wasm.config.v0+json"
    [layer] = manifest["layers"]
    wasm = BOOTSTRAP.read_bytes()
    assert layer["mediaType"] == "application/wasm" and layer["size"] == len(wasm)
    assert layer["digest"] == "sha256:" + hashlib.sha256(wasm).hexdigest()
    assert manifest["annotations"] == {
        "org.opencontainers.image.title": "bootstrap.wasm",
        "org.opencontainers.image.description": "exec/exit tracer",
        "org.opencontainers.image.source": "https://example.org/bootstrap",
        "org.opencontainers.image.version": "1.0"}

    # skopeo copies the artifact into an OCI layout: the config is what inspect reports
    out = tmp_path / "layout"
    subprocess.run(["skopeo", "copy", "--src-tls-verify=false", f"docker://{registry.host}/tools/bootstrap:v1",
                    f"oci:{out}:v1"], check=True, capture_output=True, timeout=60)
    config = json.loads((out / "blobs/sha256" / manifest["config"]["digest"][7:]).read_text())
    assert config["architecture"] == "wasm" and config["os"] == "wasip1"
    assert config["layerDigests"] == [layer["digest"]]
    programs = {p["name"]: p["section"] for o in config["wasm-bpf"]["inspect"]["objects"] for p in o["programs"]}
    assert programs == {"handle_exec": "tp/sched/sched_process_exec", "handle_exit": "tp/sched/sched_process_exit"}
    assert "[programs]" in config["wasm-bpf"]["policyTemplate"]
    assert (out / "blobs/sha256" / layer["digest"][7:]).read_bytes() == wasm


def test_push_refuses_what_cannot_run(registry, tmp_path):
    (tmp_path / "notes.txt").write_text("hello")
    (tmp_path / "broken.wasm").write_bytes(b"\0asm\x01\0\0\0\x05")
    ref = f"{registry.host}/tools/x:v1"
    one_line_error(cli("push", "--plain-http", str(tmp_path / "notes.txt"), ref), "not a Wasm module, a BPF object")
    one_line_error(cli("push", "--plain-http", str(tmp_path / "broken.wasm"), ref), "not a valid Wasm module")
    one_line_error(cli("push", "--plain-http", str(BOOTSTRAP), f"{registry.host}/tools/x@sha256:{'0' * 64}"),
                   "push to a tag")
    assert subprocess.run(["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"],
                          capture_output=True).returncode != 0  # nothing was pushed


# ---- run, pull, cache -----------------------------------------------------------------------
def test_run_by_tag_sees_events_and_by_digest(registry):
    """sigsnoop from the registry reports a kill of this process; the same artifact by
    @sha256 digest runs too."""
    digest = push(registry, SIGSNOOP, "tools/sigsnoop:v1")
    ref = f"{registry.host}/tools/sigsnoop:v1"
    bogus = unused_pid()
    with Tool(ref, "-p", str(os.getpid()), run_opts=("--plain-http",)) as tool:
        tool.wait_ready(SIGSNOOP_HEADER)
        with pytest.raises(ProcessLookupError):
            os.kill(bogus, signal.SIGUSR1)
        tool.wait_for(rf"^\S+ {os.getpid()}\s+.*\s(10|SIGUSR1)\s+{bogus}\s+-3$", what="the failed SIGUSR1")
        assert tool.interrupt() == 0, tool.describe()

    res = cli("run", "--plain-http", f"{registry.host}/tools/sigsnoop@{digest}", "--", "-h")
    assert res.returncode == 0 and "sigsnoop" in res.stdout, res.stderr


def test_runs_what_wasm_to_oci_and_ecli_push(registry, tmp_path):
    """Their layout (config application/vnd.wasm.config.v1+json, layer
    application/vnd.wasm.content.layer.v1+wasm), pushed here by the oras client itself."""
    import oras.provider
    module, config = tmp_path / "bootstrap.wasm", tmp_path / "config.json"
    shutil.copy(BOOTSTRAP, module)
    config.write_text("{}")
    oras.provider.Registry(insecure=True).push(
        target=f"{registry.host}/ecli/bootstrap:v1", disable_path_validation=True, quiet=True,
        files=[f"{module}:application/vnd.wasm.content.layer.v1+wasm"],
        manifest_config=f"{config}:application/vnd.wasm.config.v1+json")
    res = run_help(f"{registry.host}/ecli/bootstrap:v1")
    assert res.returncode == 0 and BOOTSTRAP_USAGE in res.stdout, res.stderr


def test_pull_writes_the_module(registry, tmp_path):
    push(registry, BOOTSTRAP, "tools/bootstrap:v1")
    out = tmp_path / "got.wasm"
    res = cli("pull", "--plain-http", "-o", str(out), f"{registry.host}/tools/bootstrap:v1")
    assert res.returncode == 0, res.stderr
    assert out.read_bytes() == BOOTSTRAP.read_bytes()
    one_line_error(cli("pull", "--plain-http", f"{registry.host}/tools/bootstrap:v9"), "v9", "not in the registry")
    one_line_error(cli("pull", f"{registry.host}/tools/bootstrap:v1"), "--plain-http")


def test_second_run_needs_no_registry_and_images_prunes(registry, cache):
    ref = f"{registry.host}/tools/bootstrap:v1"
    push(registry, BOOTSTRAP, "tools/bootstrap:v1")
    shutil.rmtree(cache)  # as on another machine: the first run pulls
    assert BOOTSTRAP_USAGE in run_help(ref).stdout
    registry.stop()
    res = run_help(ref)
    assert res.returncode == 0 and BOOTSTRAP_USAGE in res.stdout, res.stderr

    listing = cli("images", "--json")
    [row] = [json.loads(line) for line in listing.stdout.splitlines()]
    assert row["reference"] == ref and row["size"] > BOOTSTRAP.stat().st_size
    assert "removed 3 blob(s)" in cli("images", "--rm", ref).stdout
    assert cli("images", "--json").stdout == ""
    one_line_error(run_help(ref), "cannot reach registry", registry.host)


def test_kernel_only_object_by_reference(registry, tmp_path):
    """A .bpf.o pushed and run by reference goes to the kernel-only runner."""
    push(registry, compile_example("sigsnoop", tmp_path), "tools/sigsnoop-ko:v1")
    ref = f"{registry.host}/tools/sigsnoop-ko:v1"
    bogus = unused_pid()
    with Tool(ref, "--json", run_opts=("--plain-http", "-v")) as tool:
        deadline = time.monotonic() + 60
        while "attached" not in tool.stderr and tool.proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.05)
        with pytest.raises(ProcessLookupError):
            os.kill(bogus, signal.SIGUSR2)
        row = tool.wait_for(lambda line: line.startswith("{") and json.loads(line).get("tpid") == bogus and
                            json.loads(line), what="the SIGUSR2 event as JSON")
        tool.interrupt()
    assert row["pid"] == os.getpid() and row["ret"] == "-ESRCH"


# ---- refusals -------------------------------------------------------------------------------
def test_tampered_layer_in_the_registry_is_refused(registry, cache):
    push(registry, BOOTSTRAP, "tools/bootstrap:v1")
    shutil.rmtree(cache)
    wasm = BOOTSTRAP.read_bytes()
    blob = registry.blob("sha256:" + hashlib.sha256(wasm).hexdigest())
    data = bytearray(blob.read_bytes())
    data[len(data) // 2] ^= 0xFF  # same size: only the digest can tell
    blob.write_bytes(bytes(data))
    line = one_line_error(run_help(f"{registry.host}/tools/bootstrap:v1"), "does not match its digest")
    assert "refusing" in line
    assert not (cache / "refs.json").exists()


def test_tampered_cache_is_refused(registry, cache):
    digest = push(registry, BOOTSTRAP, "tools/bootstrap:v1")
    layer = json.loads((cache / "blobs/sha256" / digest[7:]).read_text())["layers"][0]["digest"]
    blob = cache / "blobs/sha256" / layer[7:]
    blob.write_bytes(blob.read_bytes()[:-1] + b"\0")
    one_line_error(run_help(f"{registry.host}/tools/bootstrap:v1"), "was changed on disk", "images --rm REF")


@pytest.fixture
def keys(tmp_path):
    from cryptography.hazmat.primitives import serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    made = {}
    for name, key in (("ed", ed25519.Ed25519PrivateKey.generate()), ("ec", ec.generate_private_key(ec.SECP256R1())),
                      ("other", ed25519.Ed25519PrivateKey.generate())):
        private, public = tmp_path / f"{name}.pem", tmp_path / f"{name}.pub"
        private.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                              serialization.NoEncryption()))
        public.write_bytes(key.public_key().public_bytes(serialization.Encoding.PEM,
                                                         serialization.PublicFormat.SubjectPublicKeyInfo))
        made[name] = (str(private), str(public))
    return made


def test_signatures(registry, keys, cache):
    digest = push(registry, BOOTSTRAP, "tools/bootstrap:v1")
    ref = f"{registry.host}/tools/bootstrap:v1"
    one_line_error(run_help(ref, "--verify-key", keys["ed"][1]), "is not signed", "wasm-bpf sign")

    for name in ("ed", "ec"):
        res = cli("sign", "--plain-http", "--key", keys[name][0], ref)
        assert res.returncode == 0, res.stderr
    # cosign's layout, read by skopeo: both signatures under sha256-HEX.sig
    sig = json.loads(skopeo_raw(f"{registry.host}/tools/bootstrap:{digest.replace(':', '-')}.sig"))
    assert [layer["mediaType"] for layer in sig["layers"]] == ["application/vnd.dev.cosign.simplesigning.v1+json"] * 2
    for layer in sig["layers"]:
        base64.b64decode(layer["annotations"]["dev.cosignproject.cosign/signature"], validate=True)
    payload = json.loads(subprocess.run(
        ["skopeo", "inspect", "--raw", "--tls-verify=false", f"docker://{ref}"], capture_output=True).stdout)
    assert payload["layers"][0]["mediaType"] == "application/wasm"

    shutil.rmtree(cache)
    for name in ("ed", "ec"):
        res = run_help(ref, "--verify-key", keys[name][1])
        assert res.returncode == 0 and BOOTSTRAP_USAGE in res.stdout, res.stderr
    one_line_error(run_help(ref, "--verify-key", keys["other"][1]), "no signature verifies", keys["other"][1])
    [row] = [json.loads(line) for line in cli("images", "--json").stdout.splitlines()]
    assert row["reference"] == ref and row["signed"] is True

    # a new push under the same tag is a new digest: the old signature does not cover it
    push(registry, SIGSNOOP, "tools/bootstrap:v1")
    assert cli("pull", "--plain-http", "-o", str(cache.parent / "new.wasm"), ref).returncode == 0
    one_line_error(run_help(ref, "--verify-key", keys["ed"][1]), "is not signed")


def test_pulled_module_beyond_tracing_needs_consent(registry, tmp_path):
    """An XDP module from a registry does not run unasked: --yes or a --policy."""
    ref = f"{registry.host}/tools/xdpcount:v1"
    push(registry, EXAMPLES_DIR / "xdpcount" / "xdpcount.wasm", "tools/xdpcount:v1")
    one_line_error(run_help(ref), "asks for more than tracing (program types: xdp)", "--yes", "--policy")
    res = run_help(ref, "--yes")
    assert res.returncode == 0 and res.stdout.startswith("Usage: xdpcount"), res.stderr
    template = cli("inspect", "--policy-template", str(EXAMPLES_DIR / "xdpcount" / "xdpcount.wasm")).stdout
    (tmp_path / "xdp.toml").write_text(template.replace("<INTERFACE>", "lo"))
    res = run_help(ref, "--policy", str(tmp_path / "xdp.toml"))
    assert res.returncode == 0 and res.stdout.startswith("Usage: xdpcount"), res.stderr


def test_policy_registries(registry, keys, tmp_path):
    ref = f"{registry.host}/tools/bootstrap:v1"
    push(registry, BOOTSTRAP, "tools/bootstrap:v1")
    only_other = tmp_path / "other.toml"
    only_other.write_text('[registries]\nallow = ["ghcr.io/eunomia-bpf/*"]\n')
    one_line_error(run_help(ref, "--policy", str(only_other)), "[registries] allow", f'"{registry.host}/tools/bootstrap"')

    signed = tmp_path / "signed.toml"
    signed.write_text(f'[registries]\nallow = ["{registry.host}/tools/*"]\nsigned = ["*"]\nkeys = ["{keys["ed"][1]}"]\n')
    one_line_error(run_help(ref, "--policy", str(signed)), "is not signed")
    assert cli("sign", "--plain-http", "--key", keys["ed"][0], ref).returncode == 0
    res = run_help(ref, "--policy", str(signed))
    assert res.returncode == 0 and BOOTSTRAP_USAGE in res.stdout, res.stderr


def test_htpasswd_auth(tmp_path, monkeypatch):
    assert shutil.which("htpasswd"), "htpasswd is missing: `make deps` installs apache2-utils"
    (tmp_path / "areg").mkdir()
    htpasswd = tmp_path / "htpasswd"
    subprocess.run(["htpasswd", "-Bbc", str(htpasswd), "alice", "s3cret"], check=True, capture_output=True)
    reg = LocalRegistry(tmp_path / "areg", htpasswd)
    try:
        ref = f"{reg.host}/tools/bootstrap:v1"
        one_line_error(cli("push", "--plain-http", str(BOOTSTRAP), ref), "asks for a login", f"docker login {reg.host}")

        def login(password: str) -> None:
            token = base64.b64encode(f"alice:{password}".encode()).decode()
            (tmp_path / "docker").mkdir(exist_ok=True)
            (tmp_path / "docker" / "config.json").write_text(json.dumps({"auths": {reg.host: {"auth": token}}}))

        login("wrong")
        one_line_error(cli("push", "--plain-http", str(BOOTSTRAP), ref), "refused the credentials")
        login("s3cret")
        push(reg, BOOTSTRAP, "tools/bootstrap:v1")
        shutil.rmtree(tmp_path / "cache")
        assert BOOTSTRAP_USAGE in run_help(ref).stdout

        # podman's auth file serves as well
        os.rename(tmp_path / "docker" / "config.json", tmp_path / "auth.json")
        monkeypatch.setenv("REGISTRY_AUTH_FILE", str(tmp_path / "auth.json"))
        shutil.rmtree(tmp_path / "cache")
        assert BOOTSTRAP_USAGE in run_help(ref).stdout
    finally:
        reg.stop()


# ---- URLs, references, start-up ---------------------------------------------------------------
def serve(directory: Path, tls=None) -> http.server.ThreadingHTTPServer:
    handler = lambda *a: http.server.SimpleHTTPRequestHandler(*a, directory=str(directory))  # noqa: E731
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), handler)
    if tls is not None:
        server.socket = tls.wrap_socket(server.socket, server_side=True)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


def test_run_from_http_url(tmp_path):
    served = tmp_path / "www"
    served.mkdir()
    shutil.copy(BOOTSTRAP, served / "bootstrap.wasm")
    server = serve(served)
    try:
        base = f"http://127.0.0.1:{server.server_port}"
        res = cli("run", f"{base}/bootstrap.wasm", "--", "-h")
        assert res.returncode == 0 and BOOTSTRAP_USAGE in res.stdout, res.stderr
        one_line_error(cli("run", f"{base}/missing.wasm"), "HTTP 404")
    finally:
        server.shutdown()


def test_run_a_kernel_only_package_from_an_http_url(tmp_path):
    """ecli runs a package.json by URL: so does `run` (its object inspected before the run)."""
    served = tmp_path / "www"
    served.mkdir()
    obj = compile_example("sigsnoop", tmp_path)
    made = cli("package", str(obj), "-o", str(served / "sigsnoop.json"))
    assert made.returncode == 0, made.stderr
    server = serve(served)
    try:
        url = f"http://127.0.0.1:{server.server_port}/sigsnoop.json"
        res = cli("run", url, "--help")
        assert res.returncode == 0 and "--filter-pid" in res.stdout, res.stderr
        res = cli("run", url, "--json", "--timeout", "1")
        assert res.returncode == 0, res.stderr
        assert "error" not in res.stderr
    finally:
        server.shutdown()


def make_ca_and_server_cert(tmp_path: Path):
    """A test CA (ca.pem) and a certificate for 127.0.0.1 it signed (server.pem, server.key)."""
    import datetime
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = datetime.datetime.now(datetime.timezone.utc)
    ca_key, key = ec.generate_private_key(ec.SECP256R1()), ec.generate_private_key(ec.SECP256R1())
    ca_name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "wasm-bpf test CA")])
    ca = (x509.CertificateBuilder().subject_name(ca_name).issuer_name(ca_name).public_key(ca_key.public_key())
          .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
          .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True).sign(ca_key, hashes.SHA256()))
    cert = (x509.CertificateBuilder().subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")]))
            .issuer_name(ca_name).public_key(key.public_key()).serial_number(2).not_valid_before(now)
            .not_valid_after(now + datetime.timedelta(days=1))
            .add_extension(x509.SubjectAlternativeName([x509.IPAddress(ipaddress.ip_address("127.0.0.1"))]),
                           critical=False).sign(ca_key, hashes.SHA256()))
    pem = serialization.Encoding.PEM
    (tmp_path / "ca.pem").write_bytes(ca.public_bytes(pem))
    (tmp_path / "server.pem").write_bytes(cert.public_bytes(pem))
    (tmp_path / "server.key").write_bytes(key.private_bytes(pem, serialization.PrivateFormat.PKCS8,
                                                            serialization.NoEncryption()))


def test_run_from_https_url_with_a_test_ca(tmp_path, monkeypatch):
    import ssl
    make_ca_and_server_cert(tmp_path)
    tls = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    tls.load_cert_chain(tmp_path / "server.pem", tmp_path / "server.key")
    served = tmp_path / "www"
    served.mkdir()
    shutil.copy(BOOTSTRAP, served / "bootstrap.wasm")
    server = serve(served, tls)
    try:
        url = f"https://127.0.0.1:{server.server_port}/bootstrap.wasm"
        one_line_error(cli("run", url, "--", "-h"), "certificate verify failed")
        monkeypatch.setenv("SSL_CERT_FILE", str(tmp_path / "ca.pem"))
        res = cli("run", url, "--", "-h")
        assert res.returncode == 0 and BOOTSTRAP_USAGE in res.stdout, res.stderr
    finally:
        server.shutdown()


@pytest.mark.unit
@pytest.mark.parametrize("ref,words", [
    ("127.0.0.1:5000/Tools/x:v1", ["repository 'Tools/x'", "lowercase"]),
    ("127.0.0.1:5000/tools/x@sha256:abc", ["digest 'sha256:abc'"]),
    ("127.0.0.1:5000/tools/x:-v1", ["tag '-v1'"]),
])
def test_bad_references_are_one_line(ref, words):
    one_line_error(cli("run", ref), *words)


@pytest.mark.unit
def test_local_files_do_not_load_the_registry_code(tmp_path):
    """A local-file run imports none of the distribution code beyond run_input()."""
    probe = ("import sys\nfrom wasm_bpf.distribution import run_input\n"
             f"assert run_input({str(BOOTSTRAP)!r}) == {str(BOOTSTRAP)!r}\n"
             "print(sorted(m for m in sys.modules if m.startswith(('oras', 'requests', 'cryptography', "
             "'wasm_bpf.distribution.'))))")
    out = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"
    # and a missing local file is still the run's usual error, with no network
    res = cli("run", str(tmp_path / "nope.wasm"))
    assert res.returncode != 0 and "registry" not in res.stderr
