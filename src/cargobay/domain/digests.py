"""Content digests: ``algorithm:hex``, sha256 and sha512 (OCI image-spec descriptor rules)."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from typing import Protocol

from cargobay.domain.errors import InvalidDigest

_HEX_LENGTH = {"sha256": 64, "sha512": 128}
# image-spec: algorithm-component ::= [a-z0-9]+, separators [+._-]; encoded ::= [a-zA-Z0-9=_-]+
_DIGEST_RE = re.compile(r"^([a-z0-9]+(?:[+._-][a-z0-9]+)*):([a-zA-Z0-9=_-]+)$")
SUPPORTED_ALGORITHMS = tuple(_HEX_LENGTH)


class Hasher(Protocol):
    def update(self, data: bytes | memoryview, /) -> None: ...
    def hexdigest(self) -> str: ...
    def copy(self) -> Hasher: ...


@dataclass(frozen=True, slots=True)
class Digest:
    algorithm: str
    hex: str

    def __str__(self) -> str:
        return f"{self.algorithm}:{self.hex}"

    @classmethod
    def parse(cls, value: str) -> Digest:
        """Parse and validate; raise ``InvalidDigest`` for anything malformed or unsupported."""
        match = _DIGEST_RE.match(value)
        if match is None:
            raise InvalidDigest(value)
        algorithm, encoded = match.groups()
        length = _HEX_LENGTH.get(algorithm)
        if length is None:
            raise InvalidDigest(value, f"unsupported digest algorithm {algorithm!r}")
        if len(encoded) != length or not all(c in "0123456789abcdef" for c in encoded):
            raise InvalidDigest(value)
        return cls(algorithm, encoded)

    @classmethod
    def of(cls, data: bytes, algorithm: str = "sha256") -> Digest:
        h = new_hasher(algorithm)
        h.update(data)
        return cls(algorithm, h.hexdigest())


def is_digest(value: str) -> bool:
    """True when ``value`` has the shape of a digest (``alg:encoded``), valid or not."""
    return ":" in value


def new_hasher(algorithm: str) -> Hasher:
    if algorithm not in _HEX_LENGTH:
        raise InvalidDigest(algorithm, f"unsupported digest algorithm {algorithm!r}")
    return hashlib.new(algorithm)
