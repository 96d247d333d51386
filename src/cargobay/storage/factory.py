"""Builds the blob store named by ``CARGOBAY_STORAGE_URL`` (``file://…`` or ``s3://…``)."""

from __future__ import annotations

from urllib.parse import urlsplit

from cargobay.storage.base import BlobStore
from cargobay.storage.filesystem import FilesystemStore


def open_store(url: str) -> BlobStore:
    parts = urlsplit(url)
    if parts.scheme in ("", "file"):
        return FilesystemStore(parts.path if parts.scheme else url)
    raise ValueError(f"unsupported storage URL scheme {parts.scheme!r} (use file://)")
