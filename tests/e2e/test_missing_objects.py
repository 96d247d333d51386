"""A blob whose bytes vanished from storage (disk trouble, a bad restore) is an error, said clearly."""

from __future__ import annotations

import time

from tests.support.server import Server
from tests.support.v2 import V2, assert_error, database, objects_dir


def test_blob_whose_object_is_missing_answers_an_oci_error_and_logs_it(
    server: Server, v2: V2, repo: str
) -> None:
    digest = v2.push_blob(repo, b"bytes that will go missing")
    with database(server) as db:
        (key,) = db.execute("SELECT object_key FROM blobs WHERE digest = ?", (digest,)).fetchone()
    stored = [
        p for p in objects_dir(server).rglob("*") if p.is_file() and p.name.startswith(key.rsplit("/", 1)[1])
    ]
    assert len(stored) == 1
    stored[0].unlink()

    response = v2.blob(repo, digest)
    assert_error(response, 500, "UNKNOWN")
    assert "missing" in response.json()["errors"][0]["message"]
    deadline = time.monotonic() + 5
    while "stored_object_missing" not in server.log_tail(200) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert "stored_object_missing" in server.log_tail(200)
