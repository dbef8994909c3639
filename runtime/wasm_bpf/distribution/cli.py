"""`wasm-bpf push / pull / images / sign` (docs/oci.md)."""
import json
import os
import shutil
import sys
from functools import wraps
from typing import Any, Callable, Optional

import click

from ..errors import WasmBpfError
from . import DistributionError
from .cache import Cache
from .fetch import resolve
from .layout import ANNOTATION_KEYS, CONFIG, MANIFEST, TITLE, canonical, config_for, descriptor, digest_of, media_type_of
from .reference import parse

plain_http_option = click.option("--plain-http", is_flag=True, help="Talk HTTP, not HTTPS, to the registry (a local one).")


def _one_line_errors(command: Callable[..., None]) -> Callable[..., None]:
    @wraps(command)
    def wrapper(*args: Any, **kwargs: Any) -> None:
        try:
            command(*args, **kwargs)
        except WasmBpfError as exc:  # ours and inspect's: each names the cause and the fix
            click.echo(f"wasm-bpf: error: {exc}", err=True)
            sys.exit(1)
    return wrapper


@click.command("push", short_help="Push a module or BPF program to an OCI registry.")
@plain_http_option
@click.option("--description", help="org.opencontainers.image.description")
@click.option("--source", help="org.opencontainers.image.source (the project's URL)")
@click.option("--version", "version", help="org.opencontainers.image.version")
@click.argument("file", type=click.Path(exists=True, dir_okay=False))
@click.argument("ref")
@_one_line_errors
def push(plain_http: bool, description: Optional[str], source: Optional[str], version: Optional[str],
         file: str, ref: str) -> None:
    """Push FILE (a .wasm module, a .bpf.o or a JSON package) to REF (REGISTRY/REPO:TAG)."""
    from .registry import Registry
    target = parse(ref)
    if target.digest:
        raise DistributionError(f"{ref}: push to a tag, not a digest (the registry computes the digest)")
    with open(file, "rb") as f:
        data = f.read()
    media_type = media_type_of(file, data[:4])
    given = {"description": description, "source": source, "version": version}
    annotations = {ANNOTATION_KEYS[k]: v for k, v in given.items() if v}
    annotations[TITLE] = os.path.basename(file)
    config = canonical(config_for(file, data, media_type))
    layer = descriptor(media_type, data, {TITLE: os.path.basename(file)})
    config_desc = descriptor(CONFIG, config)
    manifest = canonical({"schemaVersion": 2, "mediaType": MANIFEST, "config": config_desc, "layers": [layer],
                          "annotations": annotations})
    cache = Cache()
    client = Registry(target, plain_http)
    for blob, desc in ((data, layer), (config, config_desc)):
        cache.put(blob)
        client.put_blob(str(cache.blob_path(desc["digest"])), desc["digest"], desc["size"])
    digest = client.put_manifest(manifest, target.tag or "latest")
    cache.put(manifest)
    cache.set_ref(f"{target.name}:{target.tag}", digest)
    click.echo(f"{target.name}:{target.tag}@{digest}")


@click.command("pull", short_help="Pull a module from an OCI registry into the cache.")
@plain_http_option
@click.option("-o", "--output", type=click.Path(dir_okay=False), help="Where to write the module (default: its title, here).")
@click.argument("ref")
@_one_line_errors
def pull(plain_http: bool, output: Optional[str], ref: str) -> None:
    """Pull REF into the cache (a tag again, even when cached) and write its module."""
    target = parse(ref)
    cache = Cache()
    digest = resolve(target, cache, plain_http, refresh=True)
    path = cache.runnable_file(digest, ref)
    output = output or os.path.basename(path)
    shutil.copyfile(path, output)
    click.echo(f"{output}: {target.name}@{digest}")


@click.command("images", short_help="List or prune the cache of pulled modules.")
@click.option("--json", "as_json", is_flag=True, help="Print the listing as JSON lines.")
@click.option("--rm", "remove", multiple=True, metavar="REF", help="Forget REF (then prune what nothing reaches).")
@click.option("--prune", is_flag=True, help="Delete cached blobs no reference reaches.")
@_one_line_errors
def images(as_json: bool, remove: tuple, prune: bool) -> None:
    """List the cached references (REFERENCE, DIGEST, SIZE, SIGNED, STORED) or prune the cache.
    SIGNED: a signature is cached beside it (checked when a run asks for one)."""
    cache = Cache()
    for ref in remove:
        if not cache.remove_ref(ref):
            raise DistributionError(f"{ref} is not in the cache (see `wasm-bpf images`)")
    if remove or prune:
        count, size = cache.prune()
        click.echo(f"removed {count} blob(s), {size} bytes from {cache.root}")
        return
    rows = cache.listing()
    if as_json:
        for ref, digest, size, signed, stored in rows:
            click.echo(json.dumps({"reference": ref, "digest": digest, "size": size, "signed": signed,
                                   "stored": stored}))
        return
    width = max([len("REFERENCE"), *(len(row[0]) for row in rows)])
    click.echo(f"{'REFERENCE':<{width}}  {'DIGEST':<19}  {'SIZE':>9}  SIGNED  STORED")
    for ref, digest, size, signed, stored in rows:
        click.echo(f"{ref:<{width}}  {digest[:19]:<19}  {size:>9}  {'yes' if signed else '-':<6}  {stored}")


@click.command("sign", short_help="Sign a pushed module (cosign's key-based layout).")
@plain_http_option
@click.option("--key", required=True, type=click.Path(exists=True, dir_okay=False),
              help="PEM private key (Ed25519 or ECDSA P-256), unencrypted.")
@click.argument("ref")
@_one_line_errors
def sign(plain_http: bool, key: str, ref: str) -> None:
    """Sign REF as it is in the registry now: a cosign-style signature under the tag
    sha256-DIGEST.sig of the same repository (other signatures there are kept)."""
    from .registry import Registry
    from .signature import signature_layer, signature_manifest, signature_tag
    target = parse(ref)
    client = Registry(target, plain_http)
    digest = target.digest or digest_of(client.get_manifest(target.tag or "latest"))
    sig_tag = signature_tag(digest)
    try:
        layers = json.loads(client.get_manifest(sig_tag)).get("layers") or []
    except DistributionError as exc:
        if "HTTP 404" not in str(exc):
            raise
        layers = []
    layer, body = signature_layer(target, digest, key)
    layers = [old for old in layers if old != layer] + [layer]  # every key's signature of the same payload
    manifest, config = signature_manifest(layers)
    cache = Cache()
    for blob in (body, config):
        blob_digest = cache.put(blob)
        client.put_blob(str(cache.blob_path(blob_digest)), blob_digest, len(blob))
    client.put_manifest(manifest, sig_tag)
    click.echo(f"signed {target.name}@{digest} ({target.name}:{sig_tag})")
