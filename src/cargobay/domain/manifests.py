"""Parsing and validation of manifest bodies: what a manifest references and says about itself."""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any

from cargobay.domain import mediatypes
from cargobay.domain.digests import Digest
from cargobay.domain.errors import InvalidDigest, InvalidManifest, TooLarge

MAX_MANIFEST_BYTES = 4 * 1024 * 1024


@dataclass(frozen=True, slots=True)
class Descriptor:
    media_type: str
    digest: Digest
    size: int
    artifact_type: str | None = None
    annotations: dict[str, str] | None = None
    platform: dict[str, Any] | None = None


@dataclass(frozen=True, slots=True)
class ParsedManifest:
    media_type: str
    artifact_type: str | None
    config: Descriptor | None
    layers: tuple[Descriptor, ...] = ()
    children: tuple[Descriptor, ...] = ()
    subject: Descriptor | None = None
    annotations: dict[str, str] = field(default_factory=dict)

    @property
    def blob_references(self) -> tuple[Descriptor, ...]:
        """Blobs that must exist in the repository for the manifest to be accepted."""
        refs = [d for d in self.layers if d.media_type not in mediatypes.NON_DISTRIBUTABLE_LAYERS]
        if self.config is not None:
            refs.insert(0, self.config)
        return tuple(refs)

    @property
    def referrer_artifact_type(self) -> str | None:
        """artifactType reported by the referrers API (falls back to the config media type)."""
        if self.artifact_type:
            return self.artifact_type
        if self.config is not None and self.media_type == mediatypes.OCI_MANIFEST:
            return self.config.media_type
        return None


def _invalid(message: str, detail: Any = None) -> InvalidManifest:
    return InvalidManifest(message, detail)


def _descriptor(raw: Any, where: str) -> Descriptor:
    if not isinstance(raw, dict):
        raise _invalid(f"{where} must be a descriptor object")
    media_type = raw.get("mediaType")
    digest = raw.get("digest")
    size = raw.get("size")
    if not isinstance(media_type, str) or not media_type:
        raise _invalid(f"{where}.mediaType must be a non-empty string")
    if not isinstance(digest, str):
        raise _invalid(f"{where}.digest must be a string")
    if isinstance(size, bool) or not isinstance(size, int) or size < 0:
        raise _invalid(f"{where}.size must be a non-negative integer")
    try:
        parsed = Digest.parse(digest)
    except InvalidDigest as exc:
        raise InvalidDigest(digest, exc.reason, field=f"{where}.digest") from None
    artifact_type = raw.get("artifactType")
    if artifact_type is not None and not isinstance(artifact_type, str):
        raise _invalid(f"{where}.artifactType must be a string")
    annotations = raw.get("annotations")
    if annotations is not None and not _is_string_map(annotations):
        raise _invalid(f"{where}.annotations must map strings to strings")
    platform = raw.get("platform")
    if platform is not None and not isinstance(platform, dict):
        raise _invalid(f"{where}.platform must be an object")
    return Descriptor(media_type, parsed, size, artifact_type, annotations, platform)


def _is_string_map(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(k, str) and isinstance(v, str) for k, v in value.items()
    )


def _descriptor_list(body: dict[str, Any], key: str, required: bool) -> tuple[Descriptor, ...]:
    raw = body.get(key)
    if raw is None:
        if required:
            raise _invalid(f"{key} is required")
        return ()
    if not isinstance(raw, list):
        raise _invalid(f"{key} must be an array")
    return tuple(_descriptor(item, f"{key}[{i}]") for i, item in enumerate(raw))


def parse_manifest(body: bytes, content_type: str | None) -> ParsedManifest:
    """Validate a manifest as pushed; the media type comes from ``Content-Type`` or the body."""
    if len(body) > MAX_MANIFEST_BYTES:
        raise TooLarge("manifest exceeds 4 MiB", MAX_MANIFEST_BYTES)
    try:
        doc = json.loads(body)
    except (UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise _invalid("manifest is not valid JSON", str(exc)[:200]) from None
    except RecursionError:  # a few MiB of "[[[[…" nest deeper than the parser's stack
        raise _invalid("manifest nests too deeply") from None
    if not isinstance(doc, dict):
        raise _invalid("manifest must be a JSON object")
    declared = doc.get("mediaType")
    if declared is not None and not isinstance(declared, str):
        raise _invalid("mediaType must be a string")
    header_type = mediatypes.base_media_type(content_type) if content_type else None
    media_type = header_type or declared
    if not media_type:
        raise _invalid("manifest media type unknown: send Content-Type or set mediaType")
    if media_type not in mediatypes.MANIFESTS:
        raise _invalid(f"unsupported manifest media type {media_type!r}")
    if declared is not None and declared != media_type:
        raise _invalid(f"mediaType {declared!r} does not match Content-Type {media_type!r}")
    if doc.get("schemaVersion") != 2:
        raise _invalid("schemaVersion must be 2")
    if media_type in (mediatypes.DOCKER_MANIFEST, mediatypes.DOCKER_MANIFEST_LIST) and declared is None:
        raise _invalid("Docker manifests must declare mediaType")
    annotations = doc.get("annotations") or {}
    if not _is_string_map(annotations):
        raise _invalid("annotations must map strings to strings")
    artifact_type = doc.get("artifactType")
    if artifact_type is not None and (not isinstance(artifact_type, str) or not artifact_type):
        raise _invalid("artifactType must be a non-empty string")
    subject_raw = doc.get("subject")
    subject = _descriptor(subject_raw, "subject") if subject_raw is not None else None
    if media_type in mediatypes.IMAGE_MANIFESTS:
        if "config" not in doc:
            raise _invalid("config is required")
        config = _descriptor(doc["config"], "config")
        layers = _descriptor_list(doc, "layers", required=media_type == mediatypes.DOCKER_MANIFEST)
        if media_type == mediatypes.DOCKER_MANIFEST and (subject is not None or artifact_type):
            raise _invalid("Docker manifests cannot carry subject or artifactType")
        return ParsedManifest(media_type, artifact_type, config, layers, (), subject, annotations)
    children = _descriptor_list(doc, "manifests", required=True)
    return ParsedManifest(media_type, artifact_type, None, (), children, subject, annotations)
