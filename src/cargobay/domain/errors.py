"""Every error of the product, once: the OCI error codes, and the domain errors that carry data.

Domain code and services raise ``DomainError`` subclasses in the product's own terms (which digest,
which field, which offset); they never name an HTTP status, header or wire field path. Each HTTP
layer maps them to its wire format in one place: ``registry/http.py`` to the OCI error body
``{"errors": [{code, message, detail}]}``, ``management/errors.py`` to the IONOS body
``{httpStatus, messages: [{errorCode, message}]}`` (distribution's errcode registry, Quay's exceptions).
``RegistryError`` is the OCI wire error itself, raised only inside the registry layer.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator
from enum import Enum, unique
from typing import Any


@unique
class OciCode(Enum):
    """OCI distribution-spec error codes: (HTTP status, the spec's description) each.

    Values must differ (``@unique``): members with equal values become aliases, and an alias renders
    under the first member's name (every 400 would read ``BLOB_UPLOAD_INVALID``).
    """

    BLOB_UNKNOWN = (404, "blob unknown to registry")
    BLOB_UPLOAD_INVALID = (400, "blob upload invalid")
    BLOB_UPLOAD_UNKNOWN = (404, "blob upload unknown to registry")
    DIGEST_INVALID = (400, "provided digest did not match uploaded content")
    MANIFEST_BLOB_UNKNOWN = (400, "manifest references a manifest or blob unknown to registry")
    MANIFEST_INVALID = (400, "manifest invalid")
    MANIFEST_UNKNOWN = (404, "manifest unknown to registry")
    NAME_INVALID = (400, "invalid repository name")
    NAME_UNKNOWN = (404, "repository name not known to registry")
    SIZE_INVALID = (400, "provided length did not match content length")
    UNAUTHORIZED = (401, "authentication required")
    DENIED = (403, "requested access to the resource is denied")
    UNSUPPORTED = (405, "the operation is unsupported")
    TOOMANYREQUESTS = (429, "too many requests")
    # Not in the spec's table but used by distribution for the same situations.
    RANGE_INVALID = (416, "requested range not satisfiable")
    PAGINATION_NUMBER_INVALID = (400, "invalid number of results requested")
    TAG_INVALID = (400, "manifest tag did not match URI")
    UNKNOWN = (500, "unknown error")
    UNAVAILABLE = (503, "service unavailable")
    INSUFFICIENT_STORAGE = (507, "insufficient storage")

    @property
    def status(self) -> int:
        return self.value[0]


class RegistryError(Exception):
    """An error of the /v2/ API as the client sees it; ``status`` overrides the code's default."""

    def __init__(
        self,
        code: OciCode,
        message: str,
        detail: Any = None,
        *,
        status: int | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.detail = detail
        self.status = status if status is not None else code.status
        self.headers = headers or {}


# -- domain errors ---------------------------------------------------------------------------------


class DomainError(Exception):
    """A broken rule. ``field`` names the offending input, relative to what was validated (a wire
    layer puts it under its own path with ``fields_under``); the message is ``field reason``."""

    def __init__(self, reason: str, *, field: str | None = None) -> None:
        self.reason = reason
        self.field = field
        super().__init__(reason)

    @property
    def message(self) -> str:
        return f"{self.field} {self.reason}" if self.field else self.reason

    def __str__(self) -> str:
        return self.message


def field_path(prefix: str, field: str) -> str:
    """``properties`` + ``days[0]`` -> ``properties.days[0]``; ``scopes`` + ``[0]`` -> ``scopes[0]``."""
    if not prefix:
        return field
    return prefix + field if field.startswith("[") else f"{prefix}.{field}"


@contextlib.contextmanager
def fields_under(prefix: str) -> Iterator[None]:
    """Errors raised inside name their field under ``prefix`` (the wire path of the validated part)."""
    try:
        yield
    except DomainError as exc:
        if exc.field is not None:
            exc.field = field_path(prefix, exc.field)
        raise


class InvalidInput(DomainError):
    """A value breaks a rule (400 on every API)."""


class NotFound(DomainError):
    """The thing does not exist, or not for this caller (another tenant's data does not exist)."""

    def __init__(self, kind: str, ident: str, reason: str | None = None) -> None:
        self.kind = kind
        self.ident = ident
        super().__init__(reason or f"{kind} {ident} not found")


class Conflict(DomainError):
    """The change collides with what is stored (a name in use, an id of another resource)."""


class StorageFull(DomainError):
    """The disk (or the database) has no room for the write; deletes still work."""

    def __init__(self, reason: str = "storage is full: writes are refused until space is freed") -> None:
        super().__init__(reason)


class Unavailable(DomainError):
    """A part the request needs (the database) cannot be reached now; the client may retry."""

    def __init__(self, reason: str = "the database cannot be reached; retry shortly") -> None:
        super().__init__(reason)


class PermissionDenied(DomainError):
    """The caller is known but may not do this."""


class Unauthenticated(DomainError):
    """No credentials, or credentials that are wrong, expired or revoked."""


# -- content of the registry API --


class InvalidDigest(InvalidInput):
    def __init__(self, value: str, reason: str = "invalid digest", *, field: str | None = None) -> None:
        self.value = value
        super().__init__(reason, field=field)


class DigestMismatch(DomainError):
    """Content does not hash to the digest the client named."""

    def __init__(self, expected: str, actual: str, reason: str = "content does not match the digest") -> None:
        self.expected = expected
        self.actual = actual
        super().__init__(reason)


class InvalidName(InvalidInput):
    """Not a repository name of the distribution-spec grammar."""

    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__("invalid repository name")


class InvalidTag(InvalidInput):
    def __init__(self, tag: str) -> None:
        self.tag = tag
        super().__init__("invalid tag")


class InvalidManifest(InvalidInput):
    def __init__(self, reason: str, detail: Any = None) -> None:
        self.detail = detail
        super().__init__(reason)


class TooLarge(InvalidInput):
    def __init__(self, reason: str, limit: int) -> None:
        self.limit = limit
        super().__init__(reason)


class InvalidUpload(InvalidInput):
    """An upload's bytes do not add up (lengths, a client gone mid-body)."""


class RangeMismatch(InvalidUpload):
    """A chunk does not continue the upload where it stands; ``offset`` is its current size."""

    def __init__(self, upload_id: str, offset: int, reason: str, *, report_offset: bool = True) -> None:
        self.upload_id = upload_id
        self.offset = offset
        self.report_offset = report_offset
        super().__init__(reason)


class BlobUnknown(NotFound):
    def __init__(self, digest: str) -> None:
        self.digest = digest
        super().__init__("blob", digest, "blob unknown to registry")


class ManifestUnknown(NotFound):
    def __init__(self, reference: str, reason: str = "manifest unknown") -> None:
        self.reference = reference
        super().__init__("manifest", reference, reason)


class UploadUnknown(NotFound):
    def __init__(self, upload_id: str) -> None:
        self.upload_id = upload_id
        super().__init__("upload", upload_id, "upload unknown")


class RepositoryUnknown(NotFound):
    def __init__(self, name: str) -> None:
        self.name = name
        super().__init__("repository", name, "repository name not known to registry")


class ManifestBlobUnknown(InvalidInput):
    """A pushed manifest names a blob the repository does not hold."""

    def __init__(self, digest: str) -> None:
        self.digest = digest
        super().__init__("blob unknown to registry")


class ManifestChildUnknown(ManifestUnknown):
    """A pushed index names a manifest the repository does not hold."""

    def __init__(self, digest: str) -> None:
        super().__init__(digest, "manifest references an unknown manifest")
