"""Repositories, blobs and manifests in the database: idempotence, accounting and concurrency."""

from __future__ import annotations

import asyncio
import json
import threading

import pytest
from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cargobay.db.engine import Database, RawTx
from cargobay.db.models import Blob, Manifest, ManifestBlob, Registry, Repository, RepositoryBlob, Tag
from cargobay.db.queries import repositories
from cargobay.db.queries.blobs import record as record_blob
from cargobay.domain.digests import Digest
from cargobay.domain.errors import ManifestBlobUnknown
from cargobay.services.blobs import BlobService
from cargobay.services.manifests import ManifestService
from cargobay.storage.sealing import PlainSealer

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"


def _count(db: Database, model: type) -> int:
    return int(db.read_sync(lambda s: s.scalar(select(func.count()).select_from(model))) or 0)


def _storage(db: Database, registry_id: str) -> int:
    return db.read_sync(lambda s: s.get(Registry, registry_id).storage_bytes)


def _record(db: Database, *args: object) -> tuple[object, bool]:
    return db.write_sync(lambda session: record_blob(RawTx.of(session), *args))  # type: ignore[arg-type]


def _blob(db: Database, registry_id: str, repository: str, data: bytes) -> dict[str, object]:
    digest = str(Digest.of(data))
    _record(db, registry_id, repository, digest, len(data), f"k/{digest[7:]}")
    return {"digest": digest, "size": len(data)}


def _image(config: dict[str, object], layers: list[dict[str, object]], note: str = "") -> bytes:
    doc: dict[str, object] = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": {"mediaType": OCI_CONFIG, **config},
        "layers": [{"mediaType": OCI_LAYER, **layer} for layer in layers],
    }
    if note:
        doc["annotations"] = {"note": note}
    return json.dumps(doc).encode()


# -- repositories ------------------------------------------------------------------------------


def test_ensure_id_returns_the_same_repository(db: Database, registry_id: str) -> None:
    first = db.write_sync(lambda s: repositories.ensure_id(RawTx.of(s), registry_id, "team/app"))
    second = db.write_sync(lambda s: repositories.ensure_id(RawTx.of(s), registry_id, "team/app"))
    assert first == second
    assert _count(db, Repository) == 1


def test_concurrent_ensure_id_makes_one_row(db: Database, registry_id: str) -> None:
    """On PostgreSQL losers hit the unique index and re-read; on SQLite BEGIN IMMEDIATE queues them."""
    workers = 8
    # SQLite writers are serialised, so they cannot all be inside a transaction at once.
    barrier = threading.Barrier(1 if db.is_sqlite else workers)
    ids: list[int] = []
    errors: list[BaseException] = []

    def work(session: Session) -> int:
        barrier.wait()
        return repositories.ensure_id(RawTx.of(session), registry_id, "raced/repo")

    def run() -> None:
        try:
            ids.append(db.write_sync(work))
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(workers)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert len(ids) == workers and len(set(ids)) == 1
    assert _count(db, Repository) == 1


def test_postgres_ensure_id_recovers_from_a_unique_violation(db: Database, registry_id: str) -> None:
    """Force the race: both transactions look first, then both insert; the loser re-reads."""
    if db.is_sqlite:
        pytest.skip("SQLite writers never overlap (BEGIN IMMEDIATE)")
    looked = threading.Barrier(2)
    ids: list[int] = []

    def racer(session: Session) -> int:
        assert repositories.find(session, registry_id, "forced/race") is None
        looked.wait()
        return repositories.ensure_id(RawTx.of(session), registry_id, "forced/race")

    threads = [threading.Thread(target=lambda: ids.append(db.write_sync(racer))) for _ in range(2)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert len(ids) == 2 and ids[0] == ids[1]


# -- blobs -------------------------------------------------------------------------------------


def test_record_blob_is_idempotent_and_counts_storage_once(db: Database, registry_id: str) -> None:
    digest = str(Digest.of(b"layer"))
    info, created = _record(db, registry_id, "a/app", digest, 5, "k/1")
    again, created_again = _record(db, registry_id, "a/app", digest, 5, "k/2")
    assert created and not created_again
    assert again == info and again.object_key == "k/1"
    assert _count(db, Blob) == 1 and _count(db, RepositoryBlob) == 1
    assert _storage(db, registry_id) == 5


async def test_a_blob_is_stored_once_per_registry_and_linked_per_repository(
    db: Database, registry_id: str
) -> None:
    digest = str(Digest.of(b"shared"))
    _record(db, registry_id, "one", digest, 6, "k/1")
    _, created = _record(db, registry_id, "two", digest, 6, "k/2")
    assert not created
    assert _count(db, Blob) == 1 and _count(db, RepositoryBlob) == 2
    assert _storage(db, registry_id) == 6
    blobs = BlobService(db, store=None)  # type: ignore[arg-type]  # stat reads the database only
    found = await blobs.stat(registry_id, "two", digest)
    assert found is not None and (found.digest, found.size, found.object_key) == (digest, 6, "k/1")
    assert await blobs.stat(registry_id, "three", digest) is None


def test_concurrent_record_blob_creates_one_blob(db: Database, registry_id: str) -> None:
    digest = str(Digest.of(b"racy blob"))
    results: list[bool] = []
    errors: list[BaseException] = []

    def run(n: int) -> None:
        try:
            _, created = _record(db, registry_id, f"r{n % 2}", digest, 9, f"k/{n}")
            results.append(created)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run, args=(n,)) for n in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    assert results.count(True) == 1
    assert _count(db, Blob) == 1
    assert _storage(db, registry_id) == 9


# -- manifests ---------------------------------------------------------------------------------


@pytest.fixture
def manifests(db: Database) -> ManifestService:
    return ManifestService(db, PlainSealer())


async def test_manifest_store_find_and_storage(
    db: Database, registry_id: str, manifests: ManifestService
) -> None:
    config = _blob(db, registry_id, "app", b"{}")
    layer = _blob(db, registry_id, "app", b"layer-bytes")
    body = _image(config, [layer])
    result = await manifests.put(registry_id, "app", "v1", body, OCI_MANIFEST)
    assert result.created and result.digest == str(Digest.of(body))
    by_tag = await manifests.get(registry_id, "app", "v1")
    by_digest = await manifests.get(registry_id, "app", result.digest)
    assert by_tag is not None and by_digest is not None
    assert by_tag.body == body == by_digest.body and by_tag.media_type == OCI_MANIFEST
    assert _count(db, ManifestBlob) == 2
    assert _storage(db, registry_id) == 2 + len(b"layer-bytes") + len(body)
    assert await manifests.tags(registry_id, "app", None, None) == ["v1"]


async def test_pushing_the_same_manifest_again_creates_nothing(
    db: Database, registry_id: str, manifests: ManifestService
) -> None:
    config = _blob(db, registry_id, "app", b"{}")
    body = _image(config, [])
    await manifests.put(registry_id, "app", "v1", body, OCI_MANIFEST)
    again = await manifests.put(registry_id, "app", "v1", body, OCI_MANIFEST)
    assert not again.created
    assert _count(db, Manifest) == 1
    assert db.read_sync(lambda s: s.scalar(select(Manifest.push_count))) == 2


async def test_tag_moves_to_the_newest_manifest(
    db: Database, registry_id: str, manifests: ManifestService
) -> None:
    config = _blob(db, registry_id, "app", b"{}")
    old = _image(config, [], note="old")
    new = _image(config, [], note="new")
    old_digest = (await manifests.put(registry_id, "app", "latest", old, OCI_MANIFEST)).digest
    await manifests.put(registry_id, "app", "latest", new, OCI_MANIFEST)
    current = await manifests.get(registry_id, "app", "latest")
    assert current is not None and current.body == new
    assert await manifests.get(registry_id, "app", old_digest) is not None  # untagged, still there
    assert _count(db, Tag) == 1


async def test_deleting_a_tag_keeps_the_manifest(
    db: Database, registry_id: str, manifests: ManifestService
) -> None:
    config = _blob(db, registry_id, "app", b"{}")
    digest = (await manifests.put(registry_id, "app", "v1", _image(config, []), OCI_MANIFEST)).digest
    assert await manifests.delete(registry_id, "app", "v1")
    assert not await manifests.delete(registry_id, "app", "v1")
    assert await manifests.get(registry_id, "app", "v1") is None
    assert await manifests.get(registry_id, "app", digest) is not None


async def test_a_manifest_delete_locks_the_registry_row_last(
    db: Database, db_url: str, registry_id: str, manifests: ManifestService
) -> None:
    """Deleting a repository's last pushed manifest updates its repository row; a push updates the
    repository row and then the registry's storage counter, so the delete must take the registry row
    after the repository row too (else PostgreSQL finds a deadlock: seen in the GC stress test)."""
    if db.is_sqlite:
        pytest.skip("SQLite writers never overlap (BEGIN IMMEDIATE)")
    import psycopg

    config = _blob(db, registry_id, "app", b"{}")
    digest = (await manifests.put(registry_id, "app", "v1", _image(config, []), OCI_MANIFEST)).digest
    url = db_url.replace("postgresql+psycopg://", "postgresql://", 1)
    with psycopg.connect(url) as pusher, psycopg.connect(url, autocommit=True) as probe:
        pusher.execute("SELECT id FROM repositories WHERE name = 'app' FOR UPDATE")  # a push's lock
        deleting = threading.Thread(target=lambda: asyncio.run(manifests.delete(registry_id, "app", digest)))
        deleting.start()
        blocked = ""
        for _ in range(100):  # until the delete waits for the repository row
            row = probe.execute(
                "SELECT wait_event_type FROM pg_stat_activity WHERE datname = current_database() "
                "AND state = 'active' AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
            ).fetchone()
            if row:
                blocked = str(row[0])
                break
            await asyncio.sleep(0.05)
        assert blocked == "Lock", "the delete never waited for the repository row"
        probe.execute("SET lock_timeout = '200ms'")
        with probe.transaction():  # the push's next step: the registry row is not held by the delete
            probe.execute("SELECT id FROM registries WHERE id = %s FOR UPDATE", (registry_id,))
        pusher.rollback()
        deleting.join(30)
    assert not deleting.is_alive()
    assert await manifests.get(registry_id, "app", digest) is None


async def test_deleting_by_digest_removes_tags_links_and_storage(
    db: Database, registry_id: str, manifests: ManifestService
) -> None:
    config = _blob(db, registry_id, "app", b"{}")
    body = _image(config, [])
    digest = (await manifests.put(registry_id, "app", "v1", body, OCI_MANIFEST)).digest
    await manifests.put(registry_id, "app", "v2", body, OCI_MANIFEST)
    before = _storage(db, registry_id)
    assert await manifests.delete(registry_id, "app", digest)
    assert _count(db, Manifest) == 0 and _count(db, Tag) == 0 and _count(db, ManifestBlob) == 0
    assert _storage(db, registry_id) == before - len(body)
    assert _count(db, Blob) == 1  # blobs are freed by garbage collection, not here


async def test_manifest_with_an_unknown_blob_is_refused(
    db: Database, registry_id: str, manifests: ManifestService
) -> None:
    missing = {"digest": str(Digest.of(b"nowhere")), "size": 7}
    with pytest.raises(ManifestBlobUnknown) as caught:
        await manifests.put(registry_id, "app", "v1", _image(missing, []), OCI_MANIFEST)
    assert caught.value.digest == missing["digest"]
    assert _count(db, Manifest) == 0


async def test_tags_page_in_lexical_order(db: Database, registry_id: str, manifests: ManifestService) -> None:
    config = _blob(db, registry_id, "app", b"{}")
    body = _image(config, [])
    for tag in ["b", "a", "c", "a1"]:
        await manifests.put(registry_id, "app", tag, body, OCI_MANIFEST)
    assert await manifests.tags(registry_id, "app", 2, None) == ["a", "a1"]
    assert await manifests.tags(registry_id, "app", 2, "a1") == ["b", "c"]
    assert await manifests.tags(registry_id, "nothing", None, None) is None


def test_two_pushes_of_a_new_tag_at_once_both_succeed(db: Database, registry_id: str) -> None:
    """Force the race: both transactions find no tag to lock, then both set it (PostgreSQL; SQLite
    writers queue). The second waits for the first, finds its row and moves the tag."""
    import asyncio

    from cargobay.db.queries import manifests as manifest_rows
    from cargobay.db.types import utcnow

    config = _blob(db, registry_id, "race/app", b"{}")
    service = ManifestService(db, PlainSealer())
    pushed = [
        asyncio.run(service.put(registry_id, "race/app", f"v{i}", _image(config, [], f"{i}"), OCI_MANIFEST))
        for i in range(2)
    ]
    manifest_ids = [
        db.read_sync(lambda s, d=p.digest: s.scalar(select(Manifest.id).where(Manifest.digest == d)))
        for p in pushed
    ]
    repository_id = db.read_sync(
        lambda s: s.scalar(select(Repository.id).where(Repository.name == "race/app"))
    )
    looked = threading.Barrier(1 if db.is_sqlite else 2)
    errors: list[BaseException] = []

    def racer(manifest_id: int) -> None:
        def work(session: Session) -> None:
            assert session.get(Tag, (repository_id, "latest")) is None or db.is_sqlite
            looked.wait()
            manifest_rows.set_tag(session, repository_id, "latest", manifest_id, utcnow())

        try:
            db.write_sync(work)
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=racer, args=(m,)) for m in manifest_ids]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert errors == []
    tags = db.read_sync(lambda s: s.execute(select(Tag.manifest_id).where(Tag.name == "latest")).all())
    assert len(tags) == 1 and tags[0][0] in manifest_ids
