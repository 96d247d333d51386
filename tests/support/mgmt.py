"""Helpers for management-API tests: tenants made with the CLI, images pushed over /v2/, SDK clients."""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from typing import Any

import httpx
from ionoscloud_container_registry import ApiClient, Configuration

from tests.support.server import Server

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def unique(prefix: str) -> str:
    """A registry-name-safe unique name (registry names are global across the whole session)."""
    return f"{prefix}-{uuid.uuid4().hex[:10]}"


@dataclass(frozen=True)
class Login:
    email: str
    password: str
    contract: int

    @property
    def auth(self) -> tuple[str, str]:
        return (self.email, self.password)


def new_contract(server: Server, prefix: str = "owner") -> Login:
    """A fresh contract whose owner is a fresh user."""
    email = f"{unique(prefix)}@example.com"
    password = f"pw-{uuid.uuid4().hex}"
    out = server.cli("contract", "create", "--name", prefix, "--owner", email, "--password", password).stdout
    number = int(out.split("contract", 1)[1].split()[0])
    return Login(email, password, number)


def add_user(
    server: Server,
    contract: int,
    role: str = "user",
    manage_registry: bool = False,
    login: Login | None = None,
) -> Login:
    """A new user (or ``login``'s user, with its password) as ``role`` of ``contract``."""
    email = login.email if login else f"{unique(role)}@example.com"
    password = login.password if login else f"pw-{uuid.uuid4().hex}"
    args = ["user", "create", email, "--contract", str(contract), "--role", role, "--password", password]
    args.append("--manage-registry" if manage_registry else "--no-manage-registry")
    server.cli(*args)
    return Login(email, password, contract)


def bearer_token(server: Server, login: Login, contract: int | None = None) -> str:
    headers = {"X-Contract-Number": str(contract)} if contract is not None else {}
    response = httpx.get(f"{server.url}/auth/v1/tokens/generate", auth=login.auth, headers=headers)
    response.raise_for_status()
    return str(response.json()["token"])


def sdk(server: Server, login: Login | None = None, token: str | None = None) -> ApiClient:
    config = Configuration(
        host=f"{server.url}/containerregistries",
        username=login.email if login and token is None else None,
        password=login.password if login and token is None else None,
        token=token,
    )
    return ApiClient(config)


def api(server: Server, login: Login) -> httpx.Client:
    return httpx.Client(base_url=f"{server.url}/containerregistries", auth=login.auth, timeout=30)


@dataclass(frozen=True)
class Pushed:
    digest: str
    size: int
    layer_size: int


def push_image(
    server: Server,
    auth: tuple[str, str],
    registry: str,
    repository: str,
    tag: str | None = "latest",
    seed: str = "",
) -> Pushed:
    """Push a one-layer OCI image over /v2/ (path-style addressing) with a user's Basic credentials."""
    name = f"{registry}/{repository}"
    with httpx.Client(base_url=server.url, auth=auth, timeout=30) as client:
        config = json.dumps(
            {"architecture": "amd64", "os": "linux", "seed": seed or uuid.uuid4().hex}
        ).encode()
        layer = (seed or uuid.uuid4().hex).encode() * 64
        for blob in (config, layer):
            digest = "sha256:" + hashlib.sha256(blob).hexdigest()
            r = client.post(f"/v2/{name}/blobs/uploads/", params={"digest": digest}, content=blob)
            assert r.status_code == 201, r.text
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": _descriptor("application/vnd.oci.image.config.v1+json", config),
                "layers": [_descriptor("application/vnd.oci.image.layer.v1.tar", layer)],
            }
        ).encode()
        digest = "sha256:" + hashlib.sha256(manifest).hexdigest()
        r = client.put(
            f"/v2/{name}/manifests/{tag or digest}", content=manifest, headers={"Content-Type": OCI_MANIFEST}
        )
        assert r.status_code == 201, r.text
    return Pushed(digest, len(manifest), len(layer))


def pull_manifest(
    server: Server, auth: tuple[str, str], registry: str, repository: str, reference: str
) -> None:
    with httpx.Client(base_url=server.url, auth=auth, timeout=30) as client:
        r = client.get(f"/v2/{registry}/{repository}/manifests/{reference}", headers={"Accept": OCI_MANIFEST})
        assert r.status_code == 200, r.text


def _descriptor(media_type: str, blob: bytes) -> dict[str, Any]:
    return {
        "mediaType": media_type,
        "digest": "sha256:" + hashlib.sha256(blob).hexdigest(),
        "size": len(blob),
    }


def assert_error(r: httpx.Response, status: int, *fragments: str) -> None:
    """An IONOS error body with that status, whose messages hold every fragment."""
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json")
    body = r.json()
    assert body["httpStatus"] == status
    assert body["messages"] and all(isinstance(m["errorCode"], str) for m in body["messages"])
    text = " ".join(m["message"] for m in body["messages"])
    for fragment in fragments:
        assert fragment in text, text
