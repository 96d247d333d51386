"""Blob and upload endpoints: HEAD/GET/DELETE blobs; POST/PATCH/PUT/GET/DELETE upload sessions.

A blob GET is answered with its bytes, or, when the blob store redirects (S3 with ``redirect=true``),
with a 307 to a URL of the store, after the same access check; HEAD is always answered here.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Callable

from starlette.responses import Response, StreamingResponse

from cargobay.domain.digests import Digest
from cargobay.domain.errors import OciCode, RegistryError
from cargobay.domain.names import is_repository_name
from cargobay.observability import BLOB_REDIRECTED, upload_in_flight
from cargobay.registry.access import AccessControl
from cargobay.registry.context import Call
from cargobay.registry.http import (
    API_VERSION_HEADER,
    body_stream,
    content_length,
    empty,
    has_body,
    integrity_failure,
    parse_content_range,
    parse_range,
    range_header,
)
from cargobay.registry.routing import address
from cargobay.services.blobs import BlobInfo, BlobService
from cargobay.services.uploads import UploadInfo, UploadService
from cargobay.storage.base import IntegrityError


def _blob_unknown(digest: str) -> RegistryError:
    return RegistryError(OciCode.BLOB_UNKNOWN, "blob unknown to registry", {"digest": digest[:200]})


class BlobEndpoints:
    def __init__(
        self,
        blobs: BlobService,
        uploads: UploadService,
        gate: AccessControl,
        host_registry: Callable[[Call], str | None],
    ) -> None:
        self.blobs = blobs
        self.uploads = uploads
        self.gate = gate
        self._host_registry = host_registry

    # -- blobs ------------------------------------------------------------------------------
    async def blob(self, call: Call) -> Response:
        digest = str(Digest.parse(call.route.param))
        if call.request.method == "DELETE":
            if not await self.blobs.unlink(call.registry.id, call.repository, digest):
                raise _blob_unknown(digest)
            return empty(202)
        blob = await self.blobs.stat(call.registry.id, call.repository, digest)
        if blob is None:
            raise _blob_unknown(digest)
        headers = {
            **API_VERSION_HEADER,
            "Docker-Content-Digest": blob.digest,
            "Accept-Ranges": "bytes",
            "ETag": f'"{blob.digest}"',
            "Cache-Control": "max-age=31536000",
        }
        wanted = parse_range(call.request.headers.get("range"), blob.size)
        if call.head:
            return Response(
                b"", 200, {**headers, "Content-Length": str(blob.size)}, "application/octet-stream"
            )
        url = await self.blobs.redirect(blob)
        if url is not None:  # the client reads the store itself; a Range header goes with it
            BLOB_REDIRECTED.inc(blob.size if wanted is None else wanted[1] - wanted[0] + 1)
            return empty(307, {"Location": url, "Docker-Content-Digest": blob.digest})
        if wanted is None:
            return await _stream(call, self.blobs, blob, 0, blob.size, 200, headers)
        start, end = wanted
        headers["Content-Range"] = f"bytes {start}-{end}/{blob.size}"
        return await _stream(call, self.blobs, blob, start, end - start + 1, 206, headers)

    # -- uploads ----------------------------------------------------------------------------
    async def start(self, call: Call) -> Response:
        params = call.request.query_params
        registry_id, repository = call.registry.id, call.repository
        mount = params.get("mount")
        if mount is not None:
            blob = await self._mount(call, mount, params.get("from"))
            if blob is not None:
                return _created(call, blob.digest)
        digest_param = params.get("digest")
        if digest_param is not None:
            digest = Digest.parse(digest_param)
            # An empty body is a monolithic upload only when the digest says so (in any algorithm).
            if has_body(call.request) or digest == Digest.of(b"", digest.algorithm):
                with upload_in_flight():
                    blob = await self.uploads.monolithic(
                        registry_id,
                        repository,
                        digest,
                        body_stream(call.request),
                        content_length(call.request),
                    )
                return _created(call, blob.digest)
        upload = await self.uploads.start(registry_id, repository)
        return _session(call, upload, 0, 202)

    async def _mount(self, call: Call, mount: str, source_name: str | None) -> BlobInfo | None:
        digest = str(Digest.parse(mount))
        source: str | None = None
        if source_name is not None:
            source_address = address(source_name, self._host_registry(call))
            if (
                source_address is None
                or source_address.registry != call.registry.name
                or not is_repository_name(source_address.repository)
            ):
                return None  # not mountable (another registry, or nonsense): open a session instead
            source = source_address.repository
        may_pull = await self.gate.access.pull_judge(call.access)
        if may_pull is None:
            return None
        return await self.blobs.mount(call.registry.id, call.repository, digest, source, may_pull)

    async def upload(self, call: Call) -> Response:
        upload = await self.uploads.find(call.registry.id, call.repository, call.route.param)
        request = call.request
        method = request.method
        if method == "GET":
            size = await self.uploads.size(upload)
            return _session(call, upload, size, 204)
        if method == "DELETE":
            await self.uploads.cancel(upload)
            return empty(204)
        content_range = parse_content_range(request.headers.get("content-range"))
        length = content_length(request)
        if method == "PATCH":
            with upload_in_flight():
                size = await self.uploads.append(upload, body_stream(request), content_range, length)
            return _session(call, upload, size, 202)
        digest_param = request.query_params.get("digest")
        if not digest_param:
            raise RegistryError(
                OciCode.DIGEST_INVALID, "the digest query parameter is required to finish an upload"
            )
        digest = Digest.parse(digest_param)
        chunks = body_stream(request) if has_body(request) else None
        with upload_in_flight():
            blob = await self.uploads.finish(upload, digest, chunks, content_range, length)
        return _created(call, blob.digest)


async def _stream(
    call: Call,
    blobs: BlobService,
    blob: BlobInfo,
    offset: int,
    length: int,
    status: int,
    headers: dict[str, str],
) -> Response:
    """Stream a blob; the first block is read (and verified) before any header goes out.

    Data failing verification later, once the status is sent, is logged and cuts the connection, so
    the client sees a broken transfer and never a wrong byte.
    """
    headers = {**headers, "Content-Length": str(length)}
    chunks = blobs.open(blob, offset, length)
    try:
        first = await anext(chunks)
    except StopAsyncIteration:
        first = b""

    async def body() -> AsyncIterator[bytes | memoryview]:
        yield first
        try:
            async for chunk in chunks:
                yield chunk
        except IntegrityError as exc:
            integrity_failure(call.registry, blob.digest, exc)
            raise

    return StreamingResponse(body(), status, headers, "application/octet-stream")


def _created(call: Call, digest: str) -> Response:
    return empty(201, {"Location": f"/v2/{call.name}/blobs/{digest}", "Docker-Content-Digest": digest})


def _session(call: Call, upload: UploadInfo, size: int, status: int) -> Response:
    return empty(
        status,
        {
            "Location": f"/v2/{call.name}/blobs/uploads/{upload.id}",
            "Range": range_header(size),
            "Docker-Upload-UUID": upload.id,
        },
    )
