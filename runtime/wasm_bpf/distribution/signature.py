"""Signatures in cosign's key-based layout: beside artifact sha256:HEX, the tag
sha256-HEX.sig holds a manifest whose layers are simple-signing payloads
(application/vnd.dev.cosign.simplesigning.v1+json) naming the artifact's digest, each
with its base64 signature in the dev.cosignproject.cosign/signature annotation.
Keys are PEM files (PKCS#8 private, SubjectPublicKeyInfo public), Ed25519 or ECDSA
(P-256/SHA-256, cosign's default); cosign's own encrypted key files are not read."""
import base64
import json
from typing import Any, Callable, Dict, List, Sequence

from . import DistributionError
from .layout import canonical, descriptor
from .reference import Reference

SIMPLE_SIGNING = "application/vnd.dev.cosign.simplesigning.v1+json"
SIGNATURE_ANNOTATION = "dev.cosignproject.cosign/signature"
SIGNATURE_CONFIG = "application/vnd.oci.image.config.v1+json"


def signature_tag(manifest_digest: str) -> str:
    return manifest_digest.replace(":", "-") + ".sig"


def payload(ref: Reference, manifest_digest: str) -> bytes:
    """The simple-signing document: this repository, this manifest digest."""
    return canonical({"critical": {"identity": {"docker-reference": ref.name},
                                   "image": {"docker-manifest-digest": manifest_digest},
                                   "type": "cosign container image signature"}, "optional": None})


def _read_pem(path: str) -> bytes:
    try:
        with open(path, "rb") as f:
            return f.read()
    except OSError as exc:
        raise DistributionError(f"cannot read key {path}: {exc.strerror}") from None


def sign(data: bytes, key_path: str) -> bytes:
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    try:
        key = serialization.load_pem_private_key(_read_pem(key_path), password=None)
    except (ValueError, TypeError) as exc:
        raise DistributionError(f"{key_path} is not an unencrypted PEM private key ({exc}); make one with "
                                "`openssl genpkey -algorithm ed25519 -out key.pem`") from None
    if isinstance(key, ed25519.Ed25519PrivateKey):
        return key.sign(data)
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return key.sign(data, ec.ECDSA(hashes.SHA256()))
    raise DistributionError(f"{key_path}: only Ed25519 and ECDSA keys are supported")


def _verifier(path: str) -> Callable[[bytes, bytes], bool]:
    from cryptography.exceptions import InvalidSignature
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec, ed25519
    try:
        key = serialization.load_pem_public_key(_read_pem(path))
    except (ValueError, TypeError):
        raise DistributionError(f"{path} is not a PEM public key; make one with "
                                "`openssl pkey -in key.pem -pubout -out key.pub`") from None
    if not isinstance(key, (ed25519.Ed25519PublicKey, ec.EllipticCurvePublicKey)):
        raise DistributionError(f"{path}: only Ed25519 and ECDSA keys are supported")

    def verify(signature: bytes, data: bytes) -> bool:
        try:
            if isinstance(key, ed25519.Ed25519PublicKey):
                key.verify(signature, data)
            else:
                key.verify(signature, data, ec.ECDSA(hashes.SHA256()))
            return True
        except InvalidSignature:
            return False
    return verify


def signature_layer(ref: Reference, manifest_digest: str, key_path: str) -> "tuple[Dict[str, Any], bytes]":
    body = payload(ref, manifest_digest)
    encoded = base64.b64encode(sign(body, key_path)).decode()
    return descriptor(SIMPLE_SIGNING, body, {SIGNATURE_ANNOTATION: encoded}), body


def signature_manifest(layers: List[Dict[str, Any]]) -> "tuple[bytes, bytes]":
    """(manifest, config) bytes for these signature layers."""
    config = canonical({"architecture": "", "os": "", "config": {},
                        "rootfs": {"type": "layers", "diff_ids": [layer["digest"] for layer in layers]}})
    manifest = {"schemaVersion": 2, "mediaType": "application/vnd.oci.image.manifest.v1+json",
                "config": descriptor(SIGNATURE_CONFIG, config), "layers": layers}
    return canonical(manifest), config


def verify(ref: Reference, manifest_digest: str, sig_manifest: Dict[str, Any],
           read_blob: Callable[[str], bytes], key_paths: Sequence[str]) -> None:
    """Accepts when one layer's payload names this artifact and one key verifies it."""
    verifiers = [_verifier(path) for path in key_paths]
    for layer in sig_manifest.get("layers") or ():
        encoded = (layer.get("annotations") or {}).get(SIGNATURE_ANNOTATION)
        if layer.get("mediaType") != SIMPLE_SIGNING or not encoded:
            continue
        body = read_blob(layer["digest"])  # checked against its digest
        try:
            named = json.loads(body)["critical"]["image"]["docker-manifest-digest"]
            signature = base64.b64decode(encoded, validate=True)
        except (ValueError, KeyError, TypeError):
            continue
        if named == manifest_digest and any(check(signature, body) for check in verifiers):
            return
    raise DistributionError(f"{ref}: no signature verifies with {', '.join(key_paths)} (tag "
                            f"{signature_tag(manifest_digest)}); refusing to run it")
