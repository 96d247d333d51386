"""Manifest endpoints, tag listing, the referrers API and the catalog."""

from __future__ import annotations

import json
from collections.abc import Awaitable, Callable
from urllib.parse import quote

from starlette.responses import Response

from cargobay.domain import mediatypes
from cargobay.domain.digests import Digest, is_digest
from cargobay.domain.errors import OciCode, RegistryError
from cargobay.domain.manifests import MAX_MANIFEST_BYTES
from cargobay.domain.names import is_tag
from cargobay.registry.context import Call
from cargobay.registry.http import API_VERSION_HEADER, empty, json_response, read_limited
from cargobay.services.manifests import ManifestService, ManifestView
from cargobay.services.stats import PullRecorder

_UNKNOWN = "manifest unknown"


def _manifest_unknown(reference: str) -> RegistryError:
    return RegistryError(OciCode.MANIFEST_UNKNOWN, _UNKNOWN, {"reference": reference[:200]})


def accepted_types(accept_headers: list[str]) -> set[str] | None:
    """Media types the client accepts; None means anything (no header, or */*)."""
    types: set[str] = set()
    for header in accept_headers:
        for item in header.split(","):
            media_type = mediatypes.base_media_type(item)
            if media_type in ("*/*", "application/*"):
                return None
            if media_type:
                types.add(media_type)
    return types or None


def parse_page_size(raw: str | None) -> int | None:
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()):  # str.isdigit() alone admits "²", which int() refuses
        raise RegistryError(
            OciCode.PAGINATION_NUMBER_INVALID, "n must be a non-negative integer", {"n": raw[:20]}
        )
    return min(int(raw), 10_000)


def next_link(path: str, n: int, last: str) -> dict[str, str]:
    return {"Link": f'<{path}?n={n}&last={quote(last, safe="")}>; rel="next"'}


class ManifestEndpoints:
    def __init__(self, manifests: ManifestService, stats: PullRecorder) -> None:
        self.manifests = manifests
        self.stats = stats

    async def manifest(self, call: Call) -> Response:
        reference = call.route.param
        method = call.request.method
        if is_digest(reference):
            reference = str(Digest.parse(reference))
        elif not is_tag(reference):
            if method == "PUT":
                raise RegistryError(OciCode.TAG_INVALID, "invalid tag", {"tag": reference[:200]})
            raise _manifest_unknown(reference)
        if method == "PUT":
            return await self._put(call, reference)
        if method == "DELETE":
            if not await self.manifests.delete(call.registry.id, call.repository, reference):
                raise _manifest_unknown(reference)
            return empty(202)
        manifest = await self.manifests.get(call.registry.id, call.repository, reference)
        if manifest is None:
            raise _manifest_unknown(reference)
        manifest = await self._negotiate(call, manifest, reference)
        headers = {
            **API_VERSION_HEADER,
            "Docker-Content-Digest": manifest.digest,
            "ETag": f'"{manifest.digest}"',
            "Content-Length": str(manifest.size),
        }
        if call.head:
            return Response(b"", 200, headers, manifest.media_type)
        self.stats.record(manifest.id, manifest.repository_id)
        return Response(manifest.body, 200, headers, manifest.media_type)

    async def _negotiate(self, call: Call, manifest: ManifestView, reference: str) -> ManifestView:
        """Serve what the client accepts: a tag of an index asked without index types resolves to
        the linux/amd64 image (as the reference registry does); a digest is always served as is."""
        accepted = accepted_types(call.request.headers.getlist("accept"))
        if accepted is None or manifest.media_type in accepted or is_digest(reference):
            return manifest
        if manifest.media_type in mediatypes.INDEXES:
            child = _default_platform_child(manifest.body, accepted)
            if child is not None:
                found = await self.manifests.get_by_digest(call.registry.id, manifest.repository_id, child)
                if found is not None:
                    return found
        raise RegistryError(
            OciCode.MANIFEST_UNKNOWN,
            f"manifest is {manifest.media_type}, which the Accept header does not include",
            {"reference": reference},
        )

    async def _put(self, call: Call, reference: str) -> Response:
        body = await read_limited(call.request, MAX_MANIFEST_BYTES)
        if not body:
            raise RegistryError(OciCode.MANIFEST_INVALID, "manifest body is empty")
        result = await self.manifests.put(
            call.registry.id,
            call.repository,
            reference,
            body,
            call.request.headers.get("content-type"),
            tuple(call.request.query_params.getlist("tag")),
        )
        headers = {
            "Location": f"/v2/{call.name}/manifests/{result.digest}",
            "Docker-Content-Digest": result.digest,
        }
        if result.subject:
            headers["OCI-Subject"] = result.subject
        if is_digest(reference) and result.tags:
            headers["OCI-Tag"] = ", ".join(result.tags)
        return empty(201, headers)

    async def tags(self, call: Call) -> Response:
        params = call.request.query_params
        n = parse_page_size(params.get("n"))
        last = params.get("last")
        if n == 0:
            exists = await self.manifests.tags(call.registry.id, call.repository, 0, None)
            if exists is None:
                raise RegistryError(
                    OciCode.NAME_UNKNOWN, "repository name not known to registry", {"name": call.name}
                )
            return json_response({"name": call.name, "tags": []})
        tags = await self.manifests.tags(call.registry.id, call.repository, n + 1 if n else None, last)
        if tags is None:
            raise RegistryError(
                OciCode.NAME_UNKNOWN, "repository name not known to registry", {"name": call.name}
            )
        headers: dict[str, str] = {}
        if n is not None and len(tags) > n:
            tags = tags[:n]
            headers = next_link(f"/v2/{call.name}/tags/list", n, tags[-1])
        return json_response({"name": call.name, "tags": tags}, headers=headers)

    async def referrers(self, call: Call) -> Response:
        subject = str(Digest.parse(call.route.param))
        artifact_type = call.request.query_params.get("artifactType") or None
        descriptors = await self.manifests.referrers(
            call.registry.id, call.repository, subject, artifact_type
        )
        headers = {"OCI-Filters-Applied": "artifactType"} if artifact_type else {}
        index = {"schemaVersion": 2, "mediaType": mediatypes.OCI_INDEX, "manifests": descriptors}
        return json_response(index, headers=headers, media_type=mediatypes.OCI_INDEX)


def _default_platform_child(body: bytes, accepted: set[str]) -> str | None:
    try:
        doc = json.loads(body)
    except ValueError:
        return None
    for item in doc.get("manifests") or ():
        platform = item.get("platform") or {}
        is_default = platform.get("os") == "linux" and platform.get("architecture") == "amd64"
        if is_default and item.get("mediaType") in accepted:
            return str(item.get("digest"))
    return None


CatalogLister = Callable[[Call, int | None, str | None], Awaitable[list[str]]]
