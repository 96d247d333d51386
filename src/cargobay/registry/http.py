"""HTTP plumbing of the registry layer: error bodies, request bodies, Range and Content-Range.

``registry_error`` is the one place where domain errors become OCI errors (code, status, detail,
headers).
"""

from __future__ import annotations

import json
import re
from collections.abc import AsyncIterator, Callable
from typing import Any

from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response

from cargobay.domain.errors import (
    BlobUnknown,
    Conflict,
    DigestMismatch,
    DomainError,
    InvalidDigest,
    InvalidInput,
    InvalidManifest,
    InvalidName,
    InvalidTag,
    InvalidUpload,
    ManifestBlobUnknown,
    ManifestChildUnknown,
    ManifestUnknown,
    NotFound,
    OciCode,
    PermissionDenied,
    RangeMismatch,
    RegistryError,
    RepositoryUnknown,
    StorageFull,
    TooLarge,
    Unauthenticated,
    Unavailable,
    UploadUnknown,
)
from cargobay.domain.registries import RegistryInfo
from cargobay.logs import get_logger
from cargobay.storage.base import IntegrityError

API_VERSION_HEADER = {"Docker-Distribution-API-Version": "registry/2.0"}
log = get_logger("cargobay.registry")


def error_response(exc: RegistryError, head: bool = False) -> Response:
    body = {"errors": [{"code": exc.code.name, "message": exc.message, "detail": exc.detail}]}
    headers = {**API_VERSION_HEADER, **exc.headers}
    content = b"" if head else json.dumps(body).encode()
    response = Response(content, status_code=exc.status, headers=headers, media_type="application/json")
    if head:
        response.headers["Content-Length"] = "0"
    return response


def range_header(size: int) -> str:
    """The ``Range`` an upload session reports: the bytes it holds (``0-0`` when empty, by convention)."""
    return f"0-{size - 1 if size > 0 else 0}"


def _range_mismatch(e: RangeMismatch) -> RegistryError:
    return RegistryError(
        OciCode.BLOB_UPLOAD_INVALID,
        e.message,
        {"offset": e.offset} if e.report_offset else None,
        status=416,
        headers={"Range": range_header(e.offset), "Docker-Upload-UUID": e.upload_id},
    )


# Most specific class first is not needed: the lookup walks each error's MRO.
_OCI: dict[type[DomainError], Callable[[Any], RegistryError]] = {
    InvalidDigest: lambda e: RegistryError(OciCode.DIGEST_INVALID, e.message, {"digest": e.value[:200]}),
    DigestMismatch: lambda e: RegistryError(
        OciCode.DIGEST_INVALID, e.message, {"expected": e.expected, "actual": e.actual}
    ),
    InvalidName: lambda e: RegistryError(OciCode.NAME_INVALID, e.message, {"name": e.name[:300]}),
    InvalidTag: lambda e: RegistryError(OciCode.TAG_INVALID, e.message, {"tag": e.tag[:200]}, status=400),
    InvalidManifest: lambda e: RegistryError(OciCode.MANIFEST_INVALID, e.message, e.detail),
    TooLarge: lambda e: RegistryError(OciCode.SIZE_INVALID, e.message, {"limit": e.limit}, status=413),
    RangeMismatch: _range_mismatch,
    InvalidUpload: lambda e: RegistryError(OciCode.BLOB_UPLOAD_INVALID, e.message, status=400),
    ManifestBlobUnknown: lambda e: RegistryError(
        OciCode.MANIFEST_BLOB_UNKNOWN, e.message, {"digest": e.digest[:200]}
    ),
    InvalidInput: lambda e: RegistryError(OciCode.UNSUPPORTED, e.message, status=400),
    BlobUnknown: lambda e: RegistryError(OciCode.BLOB_UNKNOWN, e.message, {"digest": e.digest[:200]}),
    ManifestChildUnknown: lambda e: RegistryError(
        OciCode.MANIFEST_UNKNOWN, e.message, {"digest": e.reference[:200]}
    ),
    ManifestUnknown: lambda e: RegistryError(
        OciCode.MANIFEST_UNKNOWN, e.message, {"reference": e.reference[:200]}
    ),
    UploadUnknown: lambda e: RegistryError(
        OciCode.BLOB_UPLOAD_UNKNOWN, e.message, {"uuid": e.upload_id[:64]}
    ),
    RepositoryUnknown: lambda e: RegistryError(OciCode.NAME_UNKNOWN, e.message, {"name": e.name[:300]}),
    NotFound: lambda e: RegistryError(OciCode.NAME_UNKNOWN, e.message),
    Conflict: lambda e: RegistryError(OciCode.UNSUPPORTED, e.message, status=409),
    PermissionDenied: lambda e: RegistryError(OciCode.DENIED, e.message),
    StorageFull: lambda e: RegistryError(OciCode.INSUFFICIENT_STORAGE, e.message),
    Unavailable: lambda e: RegistryError(OciCode.UNAVAILABLE, e.message),
    Unauthenticated: lambda e: RegistryError(OciCode.UNAUTHORIZED, e.message),
}


def registry_error(exc: DomainError) -> RegistryError:
    """The OCI error for a domain error."""
    for cls in type(exc).__mro__:
        render = _OCI.get(cls)
        if render is not None:
            return render(exc)
    return RegistryError(OciCode.UNKNOWN, exc.message)


def integrity_failure(registry: RegistryInfo, digest: str | None, exc: IntegrityError) -> RegistryError:
    """Log the one event that names the damaged data; the client learns only that it failed."""
    log.error(
        "stored_data_failed_verification",
        registry=registry.name,
        registry_id=registry.id,
        digest=exc.digest or digest,
        key=exc.key,
        reason=str(exc),
    )
    return RegistryError(OciCode.UNKNOWN, "stored data failed verification")


def json_response(
    data: Any, status: int = 200, headers: dict[str, str] | None = None, media_type: str = "application/json"
) -> Response:
    return Response(
        json.dumps(data, separators=(",", ":")).encode(),
        status_code=status,
        headers={**API_VERSION_HEADER, **(headers or {})},
        media_type=media_type,
    )


def empty(status: int, headers: dict[str, str] | None = None) -> Response:
    response = Response(b"", status_code=status, headers={**API_VERSION_HEADER, **(headers or {})})
    response.headers["Content-Length"] = "0"
    return response


def content_length(request: Request) -> int | None:
    raw = request.headers.get("content-length")
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()):
        raise RegistryError(OciCode.BLOB_UPLOAD_INVALID, "invalid Content-Length", status=400)
    return int(raw)


def has_body(request: Request) -> bool:
    length = request.headers.get("content-length")
    if length is not None:
        return length.strip() not in ("", "0")
    return "chunked" in request.headers.get("transfer-encoding", "").lower()


async def body_stream(request: Request) -> AsyncIterator[bytes]:
    """The request body as it arrives; a client that hangs up mid-body is a bad upload."""
    try:
        async for chunk in request.stream():
            if chunk:
                yield chunk
    except ClientDisconnect:
        raise RegistryError(OciCode.BLOB_UPLOAD_INVALID, "client disconnected during upload") from None


async def read_limited(request: Request, limit: int) -> bytes:
    declared = request.headers.get("content-length")
    if declared is not None and declared.isascii() and declared.isdigit() and int(declared) > limit:
        raise RegistryError(OciCode.SIZE_INVALID, f"body exceeds {limit} bytes", {"limit": limit}, status=413)
    data = bytearray()
    async for chunk in body_stream(request):
        data += chunk
        if len(data) > limit:
            raise RegistryError(
                OciCode.SIZE_INVALID, f"body exceeds {limit} bytes", {"limit": limit}, status=413
            )
    return bytes(data)


_CONTENT_RANGE = re.compile(r"^(?:bytes[ =])?(\d+)-(\d+)(?:/(?:\d+|\*))?$")


def parse_content_range(value: str | None) -> tuple[int, int] | None:
    """``start-end`` (inclusive) of a chunk; malformed or backwards ranges are 416."""
    if value is None:
        return None
    m = _CONTENT_RANGE.match(value.strip())
    if m is None:
        raise RegistryError(OciCode.BLOB_UPLOAD_INVALID, f"invalid Content-Range {value[:64]!r}", status=416)
    start, end = int(m[1]), int(m[2])
    if end < start:
        raise RegistryError(OciCode.BLOB_UPLOAD_INVALID, f"invalid Content-Range {value[:64]!r}", status=416)
    return start, end


_RANGE = re.compile(r"^bytes=(\d*)-(\d*)$")


def parse_range(value: str | None, size: int) -> tuple[int, int] | None:
    """A single ``bytes=`` range resolved against ``size`` as (start, end inclusive).

    None means "the whole blob" (no header, or a form we ignore per RFC 9110 such as several ranges);
    an unsatisfiable range raises a 416 with ``Content-Range: bytes */size``.
    """
    if value is None:
        return None
    m = _RANGE.match(value.strip().replace(" ", ""))
    if m is None:
        if value.strip().startswith("bytes=") and "," not in value:
            raise _unsatisfiable(size)
        return None
    first, last = m[1], m[2]
    if not first and not last:
        raise _unsatisfiable(size)
    if not first:  # suffix: the last N bytes
        suffix = int(last)
        if suffix == 0 or size == 0:
            raise _unsatisfiable(size)
        return max(0, size - suffix), size - 1
    start = int(first)
    end = int(last) if last else size - 1
    if start >= size or end < start:
        raise _unsatisfiable(size)
    return start, min(end, size - 1)


def _unsatisfiable(size: int) -> RegistryError:
    return RegistryError(
        OciCode.RANGE_INVALID,
        "requested range not satisfiable",
        {"size": size},
        status=416,
        headers={"Content-Range": f"bytes */{size}"},
    )
