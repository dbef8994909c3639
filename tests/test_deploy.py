"""deploy/: what a cluster operator applies (`kubectl apply -k deploy/`) and builds
(`podman build -f deploy/Containerfile .`), checked offline: every manifest passes
kubernetes-validate --strict, the pieces name each other correctly, the RBAC grants
only reads, and the container file copies files that exist and installs Debian
packages that exist."""
import re
import shlex
import subprocess
from pathlib import Path
from typing import Dict, List

import pytest
import yaml

ROOT = Path(__file__).resolve().parent.parent
DEPLOY = ROOT / "deploy"

pytestmark = pytest.mark.unit


def _manifests() -> Dict[str, List[dict]]:
    listed = yaml.safe_load((DEPLOY / "kustomization.yaml").read_text())["resources"]
    return {name: list(yaml.safe_load_all((DEPLOY / name).read_text())) for name in listed}


def _all(kind: str) -> List[dict]:
    return [d for docs in _manifests().values() for d in docs if d["kind"] == kind]


def test_every_manifest_is_listed_and_valid_kubernetes():
    import kubernetes_validate

    on_disk = {p.name for p in DEPLOY.glob("*.yaml")} - {"kustomization.yaml"}
    assert set(_manifests()) == on_disk, "kustomization.yaml must list every manifest in deploy/"
    for name in on_disk:  # the same check as `kubernetes-validate --strict deploy/NAME`
        proc = subprocess.run(["kubernetes-validate", "--strict", "--kubernetes-version", "1.30.0",
                               str(DEPLOY / name)], capture_output=True, text=True)
        assert proc.returncode == 0, f"{name}: {proc.stdout}{proc.stderr}"
        for document in yaml.safe_load_all((DEPLOY / name).read_text()):
            kubernetes_validate.validate(document, "1.30.0", strict=True)


def test_the_daemonset_uses_its_account_policy_and_is_found_by_the_service():
    from wasm_bpf.policy import Policy

    pod = _all("DaemonSet")[0]["spec"]["template"]
    spec, container = pod["spec"], pod["spec"]["containers"][0]
    account = _all("ServiceAccount")[0]
    assert spec["serviceAccountName"] == account["metadata"]["name"]
    assert account["automountServiceAccountToken"] is False and spec["automountServiceAccountToken"] is False
    assert not container["securityContext"]["privileged"] and container["securityContext"]["readOnlyRootFilesystem"]

    config_map = _all("ConfigMap")[0]
    volumes = {v["name"]: v for v in spec["volumes"]}
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    policy_volume = next(n for n, v in volumes.items() if v.get("configMap", {}).get("name") ==
                         config_map["metadata"]["name"])
    args = container["args"]
    policy_path = args[args.index("--policy") + 1]
    key = Path(policy_path).name
    assert policy_path == f"{mounts[policy_volume]}/{key}" and key in config_map["data"]
    assert Policy.parse(config_map["data"][key], key).map_access == "read-only"
    for flag in ("--token-file", "--tls-cert", "--tls-key", "--allow-dir"):
        path = args[args.index(flag) + 1]
        assert any(path.startswith(mount + "/") or path == mount for mount in mounts.values()), (flag, path)

    service = _all("Service")[0]
    labels = pod["metadata"]["labels"]
    assert all(labels.get(k) == v for k, v in service["spec"]["selector"].items())
    ports = {p["name"] for p in container["ports"]}
    assert all(p["targetPort"] in ports for p in service["spec"]["ports"])


def test_rbac_grants_reads_in_its_namespace_only_and_nothing_to_the_daemon():
    assert not _all("ClusterRole") and not _all("ClusterRoleBinding"), "nothing cluster-wide"
    roles = {r["metadata"]["name"]: r for r in _all("Role")}
    for role in roles.values():
        for rule in role["rules"]:
            assert set(rule["verbs"]) <= {"get", "list", "watch"}, rule
            assert "*" not in rule["resources"] and "secrets" not in rule["resources"], rule
    daemon_account = _all("ServiceAccount")[0]["metadata"]["name"]
    for binding in _all("RoleBinding"):
        assert binding["roleRef"]["name"] in roles
        assert daemon_account not in {s["name"] for s in binding["subjects"]}, "the daemon needs no API access"


def _containerfile() -> List[List[str]]:
    """The instructions of deploy/Containerfile, continuation lines joined, split like a shell."""
    text = re.sub(r"\\\n", " ", (DEPLOY / "Containerfile").read_text())
    return [shlex.split(line) for line in text.splitlines() if line.strip() and not line.lstrip().startswith("#")]


def test_the_containerfile_builds_on_bookworm_from_files_that_exist():
    instructions = _containerfile()
    assert all(i[1].endswith("debian:bookworm-slim") for i in instructions if i[0] == "FROM")
    stages = {i[3] for i in instructions if i[0] == "FROM" and len(i) > 3}
    for i in instructions:
        if i[0] == "COPY" and not any(arg.startswith("--from=") for arg in i):
            for source in i[1:-1]:
                assert (ROOT / source).exists(), f"COPY {source}: no such file in the repository"
        if i[0] == "COPY" and any(arg.startswith("--from=") for arg in i):
            assert {arg.split("=", 1)[1] for arg in i if arg.startswith("--from=")} <= stages
    # What `pip install .` builds from: the package directories pyproject.toml names are copied.
    pyproject = (ROOT / "pyproject.toml").read_text()
    copied = {source.rstrip("/") for i in instructions if i[0] == "COPY" for source in i[1:-1]}
    for directory in re.findall(r'"[\w.]+" = "([\w/]+)"', pyproject):
        assert directory.split("/")[0] in copied, f"{directory} (pyproject.toml) is not copied"
    assert "host_abi" in copied and "setup.py" in copied, "the C shim is built at install time"
    # Every Debian package installed exists (in this machine's bookworm package lists).
    apt = subprocess.run(["apt-cache", "show", "--no-all-versions", *_apt_packages(instructions)],
                         capture_output=True, text=True)
    assert apt.returncode == 0, apt.stderr


def _apt_packages(instructions: List[List[str]]) -> List[str]:
    """The packages of every `apt-get install` in the RUN lines."""
    found = []
    for i in instructions:
        if i[0] != "RUN" or "apt-get" not in i:
            continue
        words = i[i.index("install") + 1:]
        for word in words:
            if word == "&&":
                break
            if not word.startswith("-"):
                found.append(word)
    assert found
    return found
