"""A small, precise /v2/ client for protocol tests, plus views of the server's state on disk.

Requests go out exactly as written (no retries, no redirects); helpers that push content assert
each step so a test failing on its real subject is never confused with a setup failure.
"""

from __future__ import annotations

import base64
import http.client
import json
import socket
import sqlite3
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx

from tests.support.images import Image, Index, sha256
from tests.support.server import Server


def error_code(response: httpx.Response) -> str:
    """The first OCI error code of a response body ("" when there is none)."""
    try:
        errors = response.json()["errors"]
    except (ValueError, KeyError, TypeError):
        return ""
    return str(errors[0]["code"]) if errors else ""


def assert_error(response: httpx.Response, status: int, code: str) -> None:
    assert (response.status_code, error_code(response)) == (status, code), (
        response.status_code,
        response.headers,
        response.text[:500],
    )
    assert response.headers["content-type"].startswith("application/json")


class V2:
    """An authenticated client of one live server."""

    def __init__(self, server: Server, auth: tuple[str, str] | None = None) -> None:
        self.server = server
        self.http = httpx.Client(base_url=server.url, auth=auth or server.auth, timeout=60)

    def close(self) -> None:
        self.http.close()

    def __enter__(self) -> V2:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- raw --------------------------------------------------------------------------------
    def request(self, method: str, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.request(method, path, **kwargs)

    def get(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.get(path, **kwargs)

    def head(self, path: str, **kwargs: Any) -> httpx.Response:
        return self.http.head(path, **kwargs)

    # -- uploads ----------------------------------------------------------------------------
    def start_upload(self, repo: str) -> str:
        """Open a session; returns its Location (a path with any query)."""
        response = self.http.post(f"/v2/{repo}/blobs/uploads/")
        assert response.status_code == 202, response.text
        return response.headers["location"]

    def push_blob(self, repo: str, data: bytes, digest: str | None = None) -> str:
        digest = digest or sha256(data)
        response = self.http.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data)
        assert response.status_code == 201, response.text
        return digest

    def push_manifest(
        self, repo: str, reference: str, body: bytes, media_type: str, expect: int = 201
    ) -> httpx.Response:
        response = self.http.put(
            f"/v2/{repo}/manifests/{reference}", content=body, headers={"Content-Type": media_type}
        )
        assert response.status_code == expect, response.text
        return response

    def push_image(self, repo: str, image: Image, tag: str | None = None) -> str:
        for blob in image.blobs:
            self.push_blob(repo, blob.data)
        self.push_manifest(repo, tag or image.digest, image.manifest.data, image.manifest.media_type)
        return image.digest

    def push_index(self, repo: str, index: Index, tag: str | None = None) -> str:
        for image in index.images:
            self.push_image(repo, image)
        self.push_manifest(repo, tag or index.digest, index.manifest.data, index.manifest.media_type)
        return index.digest

    # -- reads ------------------------------------------------------------------------------
    def tags(self, repo: str) -> list[str] | None:
        response = self.http.get(f"/v2/{repo}/tags/list")
        if response.status_code == 404:
            return None
        assert response.status_code == 200, response.text
        return list(response.json()["tags"])

    def manifest(self, repo: str, reference: str, accept: str | None = None) -> httpx.Response:
        headers = {"Accept": accept} if accept else {}
        return self.http.get(f"/v2/{repo}/manifests/{reference}", headers=headers)

    def blob(self, repo: str, digest: str) -> httpx.Response:
        return self.http.get(f"/v2/{repo}/blobs/{digest}")


@dataclass(frozen=True)
class RawResponse:
    status: int
    headers: dict[str, str]
    body: bytes

    @property
    def code(self) -> str:
        try:
            return str(json.loads(self.body)["errors"][0]["code"])
        except (ValueError, KeyError, IndexError, TypeError):
            return ""


def send_as_is(server: Server, method: str, path: str, auth: bool = True) -> RawResponse:
    """A request whose path goes out byte for byte (no dot-segment removal, no re-encoding)."""
    connection = http.client.HTTPConnection("127.0.0.1", server.port, timeout=30)
    try:
        connection.putrequest(method, path, skip_accept_encoding=True)
        if auth:
            token = base64.b64encode(f"{server.admin_user}:{server.admin_password}".encode()).decode()
            connection.putheader("Authorization", f"Basic {token}")
        connection.putheader("Content-Length", "0")
        connection.endheaders()
        response = connection.getresponse()
        return RawResponse(response.status, {k.lower(): v for k, v in response.getheaders()}, response.read())
    finally:
        connection.close()


def raw_request(server: Server, head: bytes, body: bytes = b"", half_close: bool = False) -> bytes:
    """Send bytes as they are (any framing, even broken) and return what comes back until EOF."""
    with closing(socket.create_connection(("127.0.0.1", server.port), timeout=10)) as sock:
        sock.sendall(head + body)
        if half_close:  # the client is done sending (for a body cut short: it hung up mid-body)
            sock.shutdown(socket.SHUT_WR)
        chunks = []
        try:
            while data := sock.recv(65536):
                chunks.append(data)
        except (TimeoutError, ConnectionResetError):
            pass
        return b"".join(chunks)


def raw_status(reply: bytes) -> int:
    """The status code of a raw HTTP reply (0 when the server answered nothing)."""
    return int(reply.split(b" ", 2)[1]) if reply else 0


def basic_header(server: Server) -> bytes:
    token = base64.b64encode(f"{server.admin_user}:{server.admin_password}".encode())
    return b"Authorization: Basic " + token + b"\r\n"


# -- the server's state, read from disk --------------------------------------------------------


@contextmanager
def database(server: Server) -> Iterator[sqlite3.Connection]:
    """The server's SQLite metadata, read-only (safe while the server runs, WAL mode)."""
    path = server.data_dir / "cargobay.db"
    connection = sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=30)
    try:
        yield connection
    finally:
        connection.close()


def objects_dir(server: Server) -> Path:
    return server.data_dir / "storage" / "objects"


@dataclass(frozen=True)
class Snapshot:
    """What a rejected request must leave exactly as it was."""

    objects: frozenset[str]
    repositories: frozenset[tuple[str, str]]
    blobs: frozenset[tuple[str, str]]
    repository_blobs: frozenset[tuple[int, int]]
    manifests: frozenset[tuple[int, str]]
    tags: frozenset[tuple[int, str, int]]


def snapshot(server: Server) -> Snapshot:
    root = objects_dir(server)
    objects = frozenset(  # committed objects; uploads' temporary ones (sealed tails) are no content
        str(p.relative_to(root)) for p in root.rglob("*") if p.is_file() and p.parent.name != "uploads"
    )
    with database(server) as db:
        return Snapshot(
            objects,
            frozenset(db.execute("SELECT registry_id, name FROM repositories")),
            frozenset(db.execute("SELECT registry_id, digest FROM blobs")),
            frozenset(db.execute("SELECT repository_id, blob_id FROM repository_blobs")),
            frozenset(db.execute("SELECT repository_id, digest FROM manifests")),
            frozenset(db.execute("SELECT repository_id, name, manifest_id FROM tags")),
        )
