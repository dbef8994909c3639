"""REF -> a verified file in the cache: what `wasm-bpf run` and `pull` load.

An OCI reference is served from the cache when it is there (a tag as last pulled, a
digest always), else pulled; every blob is checked against its digest when stored
and again when used. Signatures (--verify-key, or [registries] signed in the policy)
are checked before the path is returned, so nothing is loaded from a refused artifact."""
import json
import os
import posixpath
from typing import Any, Optional, Sequence

from . import DistributionError
from .cache import Cache
from .consent import confirm
from .reference import Reference, is_url, looks_like_oci, parse


def fetch(text: str, *, plain_http: bool = False, verify_keys: Sequence[str] = (), policy: Any = None,
          assume_yes: bool = False, cache: Optional[Cache] = None) -> str:
    """The file to run for TEXT; without a policy, a module asking for more than
    tracing needs the user's yes (consent.py)."""
    cache = cache or Cache()
    if is_url(text):
        if verify_keys:
            raise DistributionError("--verify-key needs an OCI reference: an http(s) URL carries no signature")
        path = fetch_url(text, cache)
        if policy is None:
            confirm(text, path, assume_yes)
        return path
    if os.path.exists(text) or not looks_like_oci(text):
        if verify_keys:
            raise DistributionError(f"--verify-key needs an OCI reference; {text} is a local file")
        return text  # a local file (a missing one is reported by the run as before)
    ref = parse(text)
    path = fetch_reference(ref, cache, plain_http=plain_http, verify_keys=verify_keys, policy=policy)
    if policy is None:
        confirm(str(ref), path, assume_yes)
    return path


def fetch_reference(ref: Reference, cache: Cache, *, plain_http: bool = False, verify_keys: Sequence[str] = (),
                    policy: Any = None) -> str:
    """REF's runnable file in CACHE, once POLICY's [registries] allow it, pulled when
    missing, its signature checked when the keys or the policy ask for one."""
    keys = list(verify_keys)
    if policy is not None:
        from ..policy import PolicyRefusal
        try:
            policy.check_registry(ref.name)
        except PolicyRefusal as exc:
            raise DistributionError(str(exc)) from None
        if not keys and policy.needs_signature(ref.name):
            keys = list(policy.keys)
            if not keys:
                raise DistributionError(f"policy {policy.source}: {ref.name} must be signed ([registries] signed) "
                                        "but [registries] keys is empty; add a public key or pass --verify-key")
    digest = resolve(ref, cache, plain_http)
    if keys:
        check_signature(ref, digest, cache, plain_http, keys)
    return cache.runnable_file(digest, str(ref))


def resolve(ref: Reference, cache: Cache, plain_http: bool, refresh: bool = False) -> str:
    """The manifest digest REF names, its blobs in the cache (pulled when missing)."""
    known = ref.digest if ref.digest and cache.has(ref.digest) else None
    if not known and not ref.digest and not refresh:
        known = cache.ref_digest(f"{ref.name}:{ref.tag}")
    if known:
        return known
    return pull(ref, cache, plain_http)


def pull(ref: Reference, cache: Cache, plain_http: bool) -> str:
    from .registry import Registry
    client = Registry(ref, plain_http)
    data = client.get_manifest(ref.digest or ref.tag or "latest")
    digest = cache.put(data, ref.digest, where=str(ref))
    try:
        manifest = json.loads(data)
    except ValueError:
        raise DistributionError(f"{ref}: the registry's manifest is not JSON") from None
    for desc in [manifest.get("config") or {}, *(manifest.get("layers") or ())]:
        if "digest" in desc and not cache.has(desc["digest"]):
            cache.put(client.get_blob(desc["digest"]), desc["digest"], where=f"{ref}: layer {desc['digest']}")
    cache.set_ref(f"{ref.name}:{ref.tag}" if ref.tag and not ref.digest else f"{ref.name}@{digest}", digest)
    return digest


def check_signature(ref: Reference, digest: str, cache: Cache, plain_http: bool, keys: Sequence[str]) -> None:
    """A cached signature manifest is used first; when it does not verify, the
    registry's current one (a signature may have been added since)."""
    from .signature import signature_tag, verify
    sig_ref = ref.with_tag(signature_tag(digest))
    cached = cache.ref_digest(f"{sig_ref.name}:{sig_ref.tag}")
    if cached is not None:
        try:
            return verify(ref, digest, cache.read_json(cached), cache.read, keys)
        except DistributionError:
            pass
    try:
        sig_digest = pull(sig_ref, cache, plain_http)
    except DistributionError as exc:
        if "HTTP 404" not in str(exc):
            raise
        raise DistributionError(f"{ref} is not signed (no {sig_ref.tag} in the registry); refusing to run it. "
                                f"Sign it with `wasm-bpf sign {ref} --key KEY`") from None
    verify(ref, digest, cache.read_json(sig_digest), cache.read, keys)


def fetch_url(url: str, cache: Cache) -> str:
    """Downloads URL (https verified with the system CAs, or SSL_CERT_FILE) into the cache."""
    import urllib.error  # here: a warm run from the cache should not pay for http.client and ssl
    import urllib.parse
    import urllib.request
    name = posixpath.basename(urllib.parse.urlsplit(url).path) or "module.wasm"
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            data = response.read()
    except urllib.error.HTTPError as exc:
        raise DistributionError(f"{url}: HTTP {exc.code} {exc.reason}") from None
    except (urllib.error.URLError, OSError) as exc:
        reason = getattr(exc, "reason", exc)
        raise DistributionError(f"cannot download {url}: {reason}") from None
    return cache.named_file(cache.put(data), name)
