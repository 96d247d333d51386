"""Background jobs in a live ``cargobay serve``: abandoned uploads expire; PostgreSQL works end to end."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select

from cargobay.db.models import Job, Upload
from tests.support.postgres import PostgresServer, to_sqlalchemy
from tests.support.registry_client import RegistryClient, digest_of
from tests.support.server import Server, wait_for


@pytest.fixture
def expiring_server(tmp_path: Path) -> Iterator[Server]:
    """A server whose uploads expire after one second (the upload-expiry job runs every second)."""
    with Server(data_dir=tmp_path / "data", extra_env={"CARGOBAY_UPLOAD_EXPIRY_SECONDS": "1"}) as server:
        yield server


@pytest.mark.slow
def test_abandoned_upload_is_expired_by_the_in_process_job(expiring_server: Server) -> None:
    server = expiring_server
    registry_id = server.create_registry("expiry")
    with httpx.Client(base_url=server.url, auth=server.auth, timeout=30) as client:
        started = client.post("/v2/expiry/app/blobs/uploads/")
        assert started.status_code == 202, started.text
        upload_id = started.headers["Docker-Upload-UUID"]
        location = started.headers["Location"]
        patched = client.patch(
            location, content=b"x" * 1000, headers={"Content-Type": "application/octet-stream"}
        )
        assert patched.status_code == 202, patched.text
        storage = server.data_dir / "storage"
        oid = upload_id.replace("-", "")
        # The writer's file is named for the upload's object id (encrypted ones add ".cbe"); with
        # encryption on, the 1000 bytes (less than a segment) wait sealed in a tail object beside it.
        staged = [
            p for p in (storage / "staging" / registry_id / "uploads").iterdir() if p.name.startswith(oid)
        ]
        tails = list((storage / "objects" / registry_id / "uploads").glob(f"{oid}.*.tail"))
        assert len(staged) == 1 and staged[0].stat().st_size + sum(t.stat().st_size for t in tails) >= 1000

        engine = create_engine(f"sqlite:///{server.data_dir / 'cargobay.db'}")
        try:

            def row_gone() -> bool:
                with engine.connect() as connection:
                    return connection.execute(select(Upload.id).where(Upload.id == upload_id)).first() is None

            wait_for(lambda: not staged[0].exists() and not any(t.exists() for t in tails) and row_gone())
            with engine.connect() as connection:
                expiries = connection.execute(
                    select(Job.result).where(Job.kind == "uploads.expire", Job.status == "succeeded")
                ).all()
        finally:
            engine.dispose()
        assert {"expired": 1} in [r.result for r in expiries]

        status = client.get(f"/v2/expiry/app/blobs/uploads/{upload_id}")
        assert status.status_code == 404
        assert status.json()["errors"][0]["code"] == "BLOB_UPLOAD_UNKNOWN"


@pytest.mark.slow
@pytest.mark.postgres
def test_serve_on_postgresql_pushes_and_pulls(pg_server: PostgresServer, tmp_path: Path) -> None:
    url = pg_server.url(pg_server.create_database("serve"))  # empty: serve migrates it
    server = Server(data_dir=tmp_path / "data", extra_env={"CARGOBAY_DATABASE_URL": url}, workers=2)
    server.data_dir.mkdir()
    server.start(timeout=60)
    try:
        server.create_registry("pgreg")
        client = RegistryClient(server.url, server.auth)
        layer = b"layer on postgres" * 1000
        manifest_digest = client.push_image("pgreg/team/app", "v1", [layer], {})["manifest"]
        pulled = client.get_manifest("pgreg/team/app", "v1")
        assert pulled.status_code == 200 and digest_of(pulled.content) == manifest_digest
        assert pulled.headers["Docker-Content-Digest"] == manifest_digest
        blob = client.get_blob("pgreg/team/app", digest_of(layer))
        assert blob.status_code == 200 and blob.content == layer
        assert client.push_blob("pgreg/team/app", layer) == digest_of(layer)  # idempotent re-push
        with client.client() as http:
            tags = http.get("/v2/pgreg/team/app/tags/list")
        assert tags.json()["tags"] == ["v1"]
        engine = create_engine(to_sqlalchemy(url))
        try:
            with engine.connect() as connection:
                wait_for(
                    lambda: (
                        connection.execute(select(Job.id).where(Job.status == "succeeded")).first()
                        is not None
                    )
                )
        finally:
            engine.dispose()
    finally:
        server.stop()
    assert "Traceback" not in server.log_tail(200)
