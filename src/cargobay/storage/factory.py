"""Builds the blob store named by ``CARGOBAY_STORAGE_URL`` (``file://…`` or ``s3://…``)."""

from __future__ import annotations

from urllib.parse import urlsplit

from cargobay.storage.base import BlobStore, StorageConfigError
from cargobay.storage.filesystem import FilesystemStore


def open_store(url: str) -> BlobStore:
    parts = urlsplit(url)
    if parts.scheme in ("", "file"):
        return FilesystemStore(parts.path if parts.scheme else url)
    if parts.scheme == "s3":
        from cargobay.storage.s3 import S3Store  # boto3 loads only where S3 is used

        return S3Store.from_url(url)
    raise StorageConfigError(f"unsupported storage URL scheme {parts.scheme!r} (use file:// or s3://)")
