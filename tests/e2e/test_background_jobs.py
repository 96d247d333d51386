"""Background jobs in a live ``cargobay serve``: abandoned uploads expire; PostgreSQL works end to end."""

from __future__ import annotations

import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest
from sqlalchemy import create_engine, select

from cargobay.db.models import Job, Upload
from tests.support.postgres import PostgresServer, to_sqlalchemy
from tests.support.push import digest_of, push_blob, push_image
from tests.support.server import Server


@pytest.fixture
def expiring_server(tmp_path: Path) -> Iterator[Server]:
    """A server whose uploads expire after one second (the upload-expiry job runs every second)."""
    server = Server(data_dir=tmp_path / "data", extra_env={"CARGOBAY_UPLOAD_EXPIRY_SECONDS": "1"})
    server.data_dir.mkdir()
    server.start()
    yield server
    server.stop()


def _wait_for(check, timeout: float = 30) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while not check():
        assert time.monotonic() < deadline, "condition not reached in time"
        time.sleep(0.1)


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
        staged = (
            server.data_dir / "storage" / "staging" / registry_id / "uploads" / upload_id.replace("-", "")
        )
        assert staged.is_file() and staged.stat().st_size == 1000

        engine = create_engine(f"sqlite:///{server.data_dir / 'cargobay.db'}")
        try:

            def row_gone() -> bool:
                with engine.connect() as connection:
                    return connection.execute(select(Upload.id).where(Upload.id == upload_id)).first() is None

            _wait_for(lambda: not staged.exists() and row_gone())
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
        with httpx.Client(base_url=server.url, auth=server.auth, timeout=30) as client:
            layer = b"layer on postgres" * 1000
            manifest_digest, manifest = push_image(client, "pgreg/team/app", "v1", layer)
            pulled = client.get(
                "/v2/pgreg/team/app/manifests/v1",
                headers={"Accept": "application/vnd.oci.image.manifest.v1+json"},
            )
            assert pulled.status_code == 200 and pulled.content == manifest
            assert pulled.headers["Docker-Content-Digest"] == manifest_digest
            blob = client.get(f"/v2/pgreg/team/app/blobs/{digest_of(layer)}")
            assert blob.status_code == 200 and blob.content == layer
            assert push_blob(client, "pgreg/team/app", layer) == digest_of(layer)  # idempotent re-push
            tags = client.get("/v2/pgreg/team/app/tags/list")
            assert tags.json()["tags"] == ["v1"]
        engine = create_engine(to_sqlalchemy(url))
        try:
            with engine.connect() as connection:
                _wait_for(
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
