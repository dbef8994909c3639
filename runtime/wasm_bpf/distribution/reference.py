"""What a REF names: a local file, an http(s) URL or an OCI reference
(REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST])."""
import re
from dataclasses import dataclass
from typing import Optional

from . import DistributionError

# The distribution spec's grammar: lowercase path components, tags of 1-128 word characters.
_REPOSITORY = re.compile(r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*(?:/[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*)*")
_TAG = re.compile(r"[\w][\w.-]{0,127}")
_DIGEST = re.compile(r"sha256:[0-9a-f]{64}")
DEFAULT_TAG = "latest"


@dataclass(frozen=True)
class Reference:
    registry: str            # host[:port]
    repository: str          # path inside the registry
    tag: Optional[str]       # None when only a digest is given
    digest: Optional[str]    # "sha256:..." when pinned

    @property
    def name(self) -> str:
        return f"{self.registry}/{self.repository}"

    def with_tag(self, tag: str) -> "Reference":
        return Reference(self.registry, self.repository, tag, None)

    def __str__(self) -> str:
        return self.name + (f":{self.tag}" if self.tag else "") + (f"@{self.digest}" if self.digest else "")


def is_url(text: str) -> bool:
    return text.startswith(("http://", "https://"))


def looks_like_oci(text: str) -> bool:
    """A first path component that is a host (has a dot or a port, or is localhost):
    `ghcr.io/org/tool:v1`; a missing `dir/tool.wasm` stays a file (no network)."""
    host, slash, _ = text.partition("/")
    return bool(slash) and not is_url(text) and ("." in host or ":" in host or host == "localhost") \
        and not text.startswith((".", "/"))


def parse(text: str) -> Reference:
    """REGISTRY/REPOSITORY[:TAG][@sha256:HEX]; raises DistributionError naming the bad part."""
    if not looks_like_oci(text):
        raise DistributionError(f"{text!r} is not an OCI reference: write REGISTRY/REPOSITORY[:TAG][@sha256:DIGEST] "
                                "(e.g. ghcr.io/org/tool:v1)")
    registry, _, rest = text.partition("/")
    rest, at, digest = rest.partition("@")
    if at and not _DIGEST.fullmatch(digest):
        raise DistributionError(f"{text}: digest {digest!r} is not sha256: and 64 lowercase hex digits")
    repository, tag = rest, None
    if ":" in rest:
        repository, _, tag = rest.rpartition(":")
        if not _TAG.fullmatch(tag):
            raise DistributionError(f"{text}: tag {tag!r} is not 1-128 letters, digits, '_', '.' or '-'")
    if not _REPOSITORY.fullmatch(repository):
        raise DistributionError(f"{text}: repository {repository!r} must be lowercase letters, digits and "
                                "separators (. _ -) in /-separated parts")
    return Reference(registry, repository, tag if tag or at else DEFAULT_TAG, digest or None)
