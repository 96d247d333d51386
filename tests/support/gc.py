"""Garbage collection tests: a runtime over a real database and store, images pushed through the
services, and checks that every manifest's blobs are stored intact."""

from __future__ import annotations

import hashlib
import json
import random
from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import timedelta
from pathlib import Path

from sqlalchemy import func, select

from cargobay.config import Settings
from cargobay.db.engine import Database
from cargobay.db.models import (
    Blob,
    GcBlobReview,
    GcManifestReview,
    GcOrphan,
    Manifest,
    ManifestBlob,
    Registry,
)
from cargobay.domain.digests import Digest
from cargobay.runtime import Runtime, assemble
from cargobay.storage.base import BlobStore
from cargobay.storage.encrypted import EncryptedStore
from cargobay.storage.filesystem import FilesystemStore
from cargobay.storage.sealing import PlainSealer
from tests.support.storage import StaticKeys

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def make_runtime(
    db: Database, db_url: str, tmp_path: Path, encrypted: bool = False, **settings: object
) -> Runtime:
    store: BlobStore = FilesystemStore(tmp_path / "storage")
    if encrypted:
        store = EncryptedStore(store, StaticKeys())  # type: ignore[arg-type]
    config = Settings(data_dir=tmp_path, database_url=db_url, **settings)  # type: ignore[arg-type]
    return assemble(config, db, store, PlainSealer())


async def _one(data: bytes) -> AsyncIterator[bytes]:
    yield data


@dataclass(frozen=True)
class Pushed:
    digest: str
    blobs: tuple[str, ...]
    body: bytes


async def upload(rt: Runtime, registry_id: str, repository: str, data: bytes) -> dict[str, object]:
    digest = Digest.of(data)
    await rt.services.uploads.monolithic(registry_id, repository, digest, _one(data), len(data))
    return {"digest": str(digest), "size": len(data)}


async def push_image(
    rt: Runtime,
    registry_id: str,
    repository: str,
    tag: str | None,
    layers: list[bytes],
    config: bytes | None = None,
    subject: Pushed | None = None,
) -> Pushed:
    config = (
        config if config is not None else json.dumps({"layers": len(layers), "r": random.random()}).encode()
    )
    config_descriptor = await upload(rt, registry_id, repository, config)
    layer_descriptors = [await upload(rt, registry_id, repository, layer) for layer in layers]
    doc: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, **config_descriptor},
        "layers": [{"mediaType": OCI_LAYER, **d} for d in layer_descriptors],
    }
    if subject is not None:
        doc["subject"] = {"mediaType": OCI_MANIFEST, "digest": subject.digest, "size": len(subject.body)}
        doc["artifactType"] = "application/example.signature"
    body = json.dumps(doc).encode()
    digest = str(Digest.of(body))
    await rt.services.manifests.put(registry_id, repository, tag or digest, body, OCI_MANIFEST)
    blobs = (str(config_descriptor["digest"]), *(str(d["digest"]) for d in layer_descriptors))
    return Pushed(digest, blobs, body)


async def push_index(
    rt: Runtime, registry_id: str, repository: str, tag: str | None, images: list[Pushed]
) -> Pushed:
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": i.digest, "size": len(i.body)} for i in images],
    }
    body = json.dumps(doc).encode()
    digest = str(Digest.of(body))
    await rt.services.manifests.put(registry_id, repository, tag or digest, body, OCI_INDEX)
    return Pushed(digest, (), body)


def age_reviews(db: Database, by: timedelta) -> None:
    """Pretend every queued review's last change, and every sweep sighting, happened ``by`` earlier."""

    def work(session):  # type: ignore[no-untyped-def]
        for model in (GcBlobReview, GcManifestReview):
            for row in session.scalars(select(model)):
                row.changed_at = row.changed_at - by
        for orphan in session.scalars(select(GcOrphan)):
            orphan.first_seen_at = orphan.first_seen_at - by

    db.write_sync(work)


def blob_digests(db: Database, registry_id: str) -> set[str]:
    return set(
        db.read_sync(lambda s: s.scalars(select(Blob.digest).where(Blob.registry_id == registry_id)).all())
    )


def storage_bytes(db: Database, registry_id: str) -> int:
    return int(db.read_sync(lambda s: s.get(Registry, registry_id).storage_bytes))


def expected_storage(db: Database, registry_id: str) -> int:
    """What ``storage_bytes`` should be: the sizes of the registry's blobs and manifests."""

    def work(session):  # type: ignore[no-untyped-def]
        blobs = session.scalar(
            select(func.coalesce(func.sum(Blob.size), 0)).where(Blob.registry_id == registry_id)
        )
        manifests = session.scalar(
            select(func.coalesce(func.sum(Manifest.size), 0)).where(Manifest.registry_id == registry_id)
        )
        return int(blobs) + int(manifests)

    return int(db.read_sync(work))


async def check_references_intact(rt: Runtime) -> int:
    """Every blob a manifest references has its row and its whole object, with the right digest."""

    def rows(session):  # type: ignore[no-untyped-def]
        return session.execute(
            select(Blob.id, Blob.digest, Blob.size, Blob.object_key)
            .join(ManifestBlob, ManifestBlob.blob_id == Blob.id)
            .distinct()
        ).all()

    checked = 0
    for _id, digest, size, key in rt.db.read_sync(rows):
        hasher = hashlib.new(digest.split(":")[0])
        length = 0
        async for chunk in rt.store.reader(key):
            hasher.update(chunk)
            length += len(chunk)
        assert length == size, f"blob {digest} is {length} bytes stored, {size} recorded"
        assert f"{digest.split(':')[0]}:{hasher.hexdigest()}" == digest, f"blob {digest} holds other bytes"
        checked += 1
    return checked
