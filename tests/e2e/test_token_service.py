"""The token service at /auth/token: Basic GET (docker, skopeo, crane, oras) and the OAuth2
password grant POST that containerd-based clients (nerdctl, buildkit) send first."""

from __future__ import annotations

import httpx
import pytest

from tests.support.server import Server
from tests.support.v2 import V2, assert_error


@pytest.fixture
def pushed(v2: V2, repo: str) -> str:
    v2.push_blob(repo, b"token service")
    return repo


def _tags_with(server: Server, repo: str, token: str) -> httpx.Response:
    return httpx.get(f"{server.url}/v2/{repo}/tags/list", headers={"Authorization": f"Bearer {token}"})


def test_basic_get_issues_a_token_for_the_scope(server: Server, pushed: str) -> None:
    response = httpx.get(
        f"{server.url}/auth/token",
        params={"service": server.host, "scope": f"repository:{pushed}:pull"},
        auth=server.auth,
    )
    assert response.status_code == 200
    body = response.json()
    assert body["token"] == body["access_token"]
    assert 0 < body["expires_in"] <= 300
    assert _tags_with(server, pushed, body["token"]).status_code == 200


def test_oauth_password_grant_post_issues_a_token(server: Server, pushed: str) -> None:
    form = {
        "grant_type": "password",
        "username": server.admin_user,
        "password": server.admin_password,
        "service": server.host,
        "scope": f"repository:{pushed}:pull repository:{pushed}:push",
        "client_id": "containerd-client",
        "access_type": "offline",
    }
    response = httpx.post(f"{server.url}/auth/token", data=form)
    assert response.status_code == 200, response.text
    token = response.json()["access_token"]
    assert _tags_with(server, pushed, token).status_code == 200
    upload = httpx.post(
        f"{server.url}/v2/{pushed}/blobs/uploads/", headers={"Authorization": f"Bearer {token}"}
    )
    assert upload.status_code == 202


def test_oauth_password_grant_with_a_wrong_password_is_401(server: Server, pushed: str) -> None:
    form = {
        "grant_type": "password",
        "username": server.admin_user,
        "password": "wrong",
        "service": server.host,
    }
    assert_error(httpx.post(f"{server.url}/auth/token", data=form), 401, "UNAUTHORIZED")


def test_oauth_refresh_grant_without_refresh_tokens_is_401(server: Server, pushed: str) -> None:
    form = {"grant_type": "refresh_token", "refresh_token": "never-issued", "service": server.host}
    assert_error(httpx.post(f"{server.url}/auth/token", data=form), 401, "UNAUTHORIZED")


def test_oversize_token_form_is_413(server: Server) -> None:
    form = {"grant_type": "password", "username": server.admin_user, "password": "x" * 100_000}
    assert_error(httpx.post(f"{server.url}/auth/token", data=form), 413, "SIZE_INVALID")


@pytest.mark.parametrize("method", ["PUT", "DELETE", "PATCH"])
def test_other_methods_on_the_token_endpoint_are_405(server: Server, method: str) -> None:
    assert_error(httpx.request(method, f"{server.url}/auth/token", auth=server.auth), 405, "UNSUPPORTED")
