"""The artifact layout (docs/oci.md): the CNCF Wasm OCI artifact (config
application/vnd.wasm.config.v0+json, one application/wasm layer) with our own
`wasm-bpf` config key; kernel-only inputs as layers of our own media types."""
import hashlib
import json
import os
import time
from typing import Any, Dict, Optional

from . import DistributionError

MANIFEST = "application/vnd.oci.image.manifest.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
CONFIG = "application/vnd.wasm.config.v0+json"
WASM = "application/wasm"
BPF_OBJECT = "application/vnd.wasm-bpf.bpf-object.v1"
PACKAGE = "application/vnd.wasm-bpf.package.v1+json"
# Layers we can run: ours, and wasm-to-oci's / ecli's older Wasm layer.
RUNNABLE = (WASM, BPF_OBJECT, PACKAGE, "application/vnd.wasm.content.layer.v1+wasm")
TITLE = "org.opencontainers.image.title"
ANNOTATION_KEYS = {"description": "org.opencontainers.image.description", "source": "org.opencontainers.image.source",
                   "version": "org.opencontainers.image.version"}


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def descriptor(media_type: str, data: bytes, annotations: Optional[Dict[str, str]] = None) -> Dict[str, Any]:
    desc: Dict[str, Any] = {"mediaType": media_type, "digest": digest_of(data), "size": len(data)}
    if annotations:
        desc["annotations"] = annotations
    return desc


def media_type_of(path: str, head: bytes) -> str:
    if head.startswith(b"\0asm"):
        return WASM
    if head.startswith(b"\x7fELF"):
        return BPF_OBJECT
    if head.lstrip()[:1] == b"{" or path.endswith(".json"):
        return PACKAGE
    raise DistributionError(f"{path} is not a Wasm module, a BPF object (.bpf.o) or a JSON package: "
                            "only those can be pushed")


def config_for(path: str, data: bytes, media_type: str) -> Dict[str, Any]:
    """The CNCF fields plus what `wasm-bpf inspect` reports and its policy template,
    so a user can read what a module needs before pulling its layer."""
    from .. import __version__
    from ..inspect import inspect_module, report_policy_template
    config: Dict[str, Any] = {"created": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
                              "architecture": "wasm", "os": "wasip1", "layerDigests": [digest_of(data)]}
    if media_type == WASM:
        import wasmtime
        try:
            wasmtime.Module.validate(wasmtime.Engine(), data)
        except wasmtime.WasmtimeError as exc:
            reason = str(exc).strip().splitlines()[-1].strip()
            raise DistributionError(f"{path} is not a valid Wasm module ({reason}); rebuild it") from None
    bpf: Dict[str, Any] = {"abi": "wasm_bpf", "host": __version__}
    if media_type in (WASM, BPF_OBJECT):
        report = inspect_module(path)
        report.path = os.path.basename(path)
        bpf["inspect"] = report.to_json()
        bpf["policyTemplate"] = report_policy_template(report)
    config["wasm-bpf"] = bpf
    return config


def canonical(doc: Dict[str, Any]) -> bytes:
    """The bytes we push for a JSON document: their digest names it."""
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode()


def runnable_layer(manifest: Dict[str, Any], where: str) -> Dict[str, Any]:
    for layer in manifest.get("layers") or ():
        if layer.get("mediaType") in RUNNABLE:
            return layer
    kinds = ", ".join(sorted({str(layer.get("mediaType")) for layer in manifest.get("layers") or ()})) or "none"
    raise DistributionError(f"{where} has no runnable layer (layers: {kinds}); expected one of {', '.join(RUNNABLE)}")


def file_name(layer: Dict[str, Any]) -> str:
    """The layer's title, as a plain file name (the kernel-only runner goes by suffix)."""
    title = os.path.basename((layer.get("annotations") or {}).get(TITLE, ""))
    if title in ("", ".", "..") or "\0" in title:
        title = {BPF_OBJECT: "program.bpf.o", PACKAGE: "package.json"}.get(layer.get("mediaType", ""), "module.wasm")
    return title
