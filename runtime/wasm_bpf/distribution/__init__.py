"""Distribution: run, push, pull and sign modules like container images (docs/oci.md).

  reference.py  what REF names: a local file, an http(s) URL or an OCI reference
  layout.py     the artifact: media types, config, annotations
  cache.py      the local content-addressed cache and its index of references
  registry.py   the registry client (the `oras` package), docker/podman credentials
  signature.py  cosign's key-based signature layout, Ed25519/ECDSA keys
  fetch.py      REF -> a verified file in the cache
  consent.py    a pulled module asking for more than tracing: shown, asked (--yes)
  cli.py        `wasm-bpf push/pull/images/sign`

`wasm-bpf run` calls run_input() only: for a local file it imports nothing more,
so a local-file run starts as fast as before."""
import os
import sys
from typing import Any, Sequence

from ..errors import WasmBpfError


class DistributionError(WasmBpfError):
    """A reference, registry, cache or signature problem; str() is the user's line."""


def run_input(ref: str, *, plain_http: bool = False, verify_keys: Sequence[str] = (), policy: Any = None,
              assume_yes: bool = False) -> str:
    """The local file `wasm-bpf run` should load for REF, verified (digest, signature,
    policy [registries], the user's consent) before any BPF is loaded; exits with one
    line on failure."""
    if not verify_keys and os.path.exists(ref):
        return ref
    from .fetch import fetch
    try:
        return fetch(ref, plain_http=plain_http, verify_keys=verify_keys, policy=policy, assume_yes=assume_yes)
    except DistributionError as exc:
        print(f"wasm-bpf: error: {exc}", file=sys.stderr)
        sys.exit(1)
