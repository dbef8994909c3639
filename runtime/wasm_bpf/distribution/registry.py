"""The registry client: the `oras` package's Registry (requests session, token and
basic auth, blob upload) with credentials from the usual docker and podman files.
Manifests are sent and read as bytes, so their digests are ours to check."""
import os
import re
from typing import Any, List

from . import DistributionError
from .layout import DOCKER_MANIFEST, MANIFEST, digest_of
from .reference import Reference


def credential_files() -> List[str]:
    """docker's config.json, then podman's auth.json (REGISTRY_AUTH_FILE first)."""
    home = os.path.expanduser("~")
    candidates = [os.path.join(os.environ.get("DOCKER_CONFIG") or os.path.join(home, ".docker"), "config.json"),
                  os.environ.get("REGISTRY_AUTH_FILE", ""),
                  os.path.join(os.environ.get("XDG_RUNTIME_DIR", "/nonexistent"), "containers", "auth.json"),
                  os.path.join(home, ".config", "containers", "auth.json")]
    return [path for path in candidates if path and os.path.isfile(path)]


class Registry:
    """One repository of one registry (the one REF names)."""

    def __init__(self, ref: Reference, plain_http: bool = False) -> None:
        import oras.auth
        import oras.container
        import oras.provider
        import requests

        self.ref = ref
        self._requests = requests
        self._oras = oras.provider.Registry(hostname=ref.registry, insecure=plain_http)
        self._container = oras.container.Container(f"{ref.name}:{ref.tag or 'latest'}")
        self._base = f"{'http' if plain_http else 'https'}://{ref.registry}"
        challenge = self._ping(plain_http)
        basic = challenge.lower().startswith("basic")  # distribution's htpasswd auth: no token service
        if basic:
            self._oras.auth = oras.auth.get_auth_backend("basic", self._oras.session, plain_http)
        self._oras.auth.load_configs(self._container, configs=credential_files())
        if basic and not getattr(self._oras.auth, "_basic_auth", None):
            raise DistributionError(f"{ref.registry} asks for a login and no credentials for it were found: "
                                    f"run `docker login {ref.registry}` (or podman login)")
        if basic:
            self._request("GET", f"{self._base}/v2/")  # wrong credentials: say so before any upload

    def _ping(self, plain_http: bool) -> str:
        """GET /v2/ once, without oras's retries, so an unreachable registry fails at once;
        returns the WWW-Authenticate challenge ("" when none)."""
        hint = "" if plain_http else "; for a registry without TLS add --plain-http"
        try:
            response = self._oras.session.get(f"{self._base}/v2/", timeout=10)
        except self._requests.exceptions.SSLError as exc:
            raise DistributionError(f"TLS with {self.ref.registry} failed ({exc.__class__.__name__}){hint}") from None
        except self._requests.exceptions.RequestException as exc:
            text = str(exc.__context__ or exc)
            errno = re.search(r"\[Errno -?\d+\] [^'\")]*", text)  # urllib3 nests the OS error deep
            reason = errno.group(0) if errno else text[:120]
            raise DistributionError(f"cannot reach registry {self.ref.registry}: {reason}{hint}") from None
        return response.headers.get("WWW-Authenticate", "") if response.status_code == 401 else ""

    def _request(self, method: str, url: str, **kwargs: Any) -> Any:  # a requests.Response
        response = self._oras.do_request(url, method, **kwargs)
        if response.status_code in (401, 403):
            raise DistributionError(f"{self.ref.registry} refused the credentials for {self.ref.name} "
                                    f"(HTTP {response.status_code}): log in (again) with `docker login "
                                    f"{self.ref.registry}`, or check the repository name")
        return response

    def _url(self, kind: str, name: str) -> str:
        return f"{self._base}/v2/{self.ref.repository}/{kind}/{name}"

    def get_manifest(self, tag_or_digest: str) -> bytes:
        response = self._request("GET", self._url("manifests", tag_or_digest),
                                 headers={"Accept": f"{MANIFEST}, {DOCKER_MANIFEST}"})
        if response.status_code == 404:
            raise DistributionError(f"{self.ref.name}:{tag_or_digest} is not in the registry (HTTP 404)")
        if response.status_code != 200:
            raise DistributionError(f"{self.ref.name}: reading manifest {tag_or_digest} failed (HTTP {response.status_code})")
        return response.content

    def get_blob(self, digest: str) -> bytes:
        response = self._request("GET", self._url("blobs", digest))
        if response.status_code != 200:
            raise DistributionError(f"{self.ref.name}: blob {digest} cannot be read (HTTP {response.status_code})")
        return response.content

    def put_blob(self, path: str, digest: str, size: int) -> None:
        try:
            response = self._oras.upload_blob(path, self._container, {"digest": digest, "size": size})
        except ValueError as exc:  # oras's word for a refused upload session
            raise DistributionError(f"{self.ref.name}: uploading blob {digest} failed: {str(exc)[:200]}") from None
        if response.status_code not in (200, 201, 202):
            raise DistributionError(f"{self.ref.name}: uploading blob {digest} failed (HTTP {response.status_code})")

    def put_manifest(self, data: bytes, tag: str) -> str:
        response = self._request("PUT", self._url("manifests", tag), data=data, headers={"Content-Type": MANIFEST})
        if response.status_code not in (200, 201):
            raise DistributionError(f"{self.ref.name}:{tag}: the registry refused the manifest "
                                    f"(HTTP {response.status_code}: {response.text.strip()[:200]})")
        return digest_of(data)
