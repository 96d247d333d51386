"""Requests that are wrong before any content is involved: names, paths, methods, pagination and
credentials. Each is a 4xx with the exact OCI error, never a 500, and changes nothing."""

from __future__ import annotations

import httpx
import pytest

from tests.support.images import sha256
from tests.support.server import Server
from tests.support.v2 import V2, assert_error, basic_header, raw_request, raw_status, send_as_is, snapshot

DIGEST = sha256(b"anything")


def _endpoints(name: str) -> list[tuple[str, str]]:
    return [
        ("GET", f"/v2/{name}/tags/list"),
        ("POST", f"/v2/{name}/blobs/uploads/"),
        ("PUT", f"/v2/{name}/manifests/v1"),
        ("HEAD", f"/v2/{name}/blobs/{DIGEST}"),
        ("GET", f"/v2/{name}/referrers/{DIGEST}"),
    ]


INVALID_NAMES = {
    "uppercase": "protocol/Team/app",
    "dot-dot": "protocol/team/../app",
    "leading-dot-dot": "protocol/../app",
    "single-dot": "protocol/./app",
    "empty-component": "protocol/team//app",
    "trailing-slash": "protocol/team/app/",
    "empty-registry": "/team/app",
    "bad-separator": "protocol/team/a_-b",
    "leading-separator": "protocol/-app",
    "colon": "protocol/app:v1",
    "backslash": "protocol/team\\app",
    "percent-encoded-dot-dot": "protocol/team/%2e%2e/app",
    "nul": "protocol/team%00/app",
    "space": "protocol/team%20app",
    "too-long": "protocol/" + "a" * 256,
    "too-long-components": "protocol/" + "/".join(["abcdefg"] * 40),
}


@pytest.mark.parametrize("name", list(INVALID_NAMES.values()), ids=list(INVALID_NAMES))
def test_invalid_repository_name_is_name_invalid(server: Server, name: str) -> None:
    before = snapshot(server)
    for method, path in _endpoints(name):
        response = send_as_is(server, method, path)
        assert response.status == 400, (method, path, response.status, response.body[:300])
        if method != "HEAD":
            assert response.code == "NAME_INVALID", (method, path, response.body[:300])
    assert snapshot(server) == before


def test_repository_name_of_255_characters_is_accepted(v2: V2, registry: str) -> None:
    name = f"{registry}/" + "/".join(["a" * 50] * 4) + "/" + "b" * 51
    assert len(name) - len(registry) - 1 == 255
    v2.push_blob(name, b"long name")
    assert v2.head(f"/v2/{name}/blobs/{sha256(b'long name')}").status_code == 200


TRAVERSALS = [
    "/v2/protocol/../../etc/passwd/blobs/" + DIGEST,
    "/v2/protocol/%2e%2e/%2e%2e/etc/passwd/blobs/" + DIGEST,
    "/v2/protocol/%2E%2E%2F%2E%2E%2Fetc%2Fpasswd/tags/list",
    "/v2/protocol/..%5C..%5Cetc%5Cpasswd/tags/list",
    "/v2/protocol/x/blobs/..%2F..%2F..%2F..%2Fetc%2Fpasswd",
    "/v2/protocol/x/blobs/sha256:..%2F..%2F..%2Fetc%2Fpasswd",
    "/v2/protocol/x/blobs/uploads/..",
    "/v2/protocol/x/blobs/uploads/..%2F..%2F..%2Fetc%2Fpasswd",
    "/v2/protocol/x/blobs/uploads/..%5C..%5Cetc%5Cpasswd",
    "/v2/protocol/x/manifests/..%2F..%2F..%2Fetc%2Fpasswd",
    "/v2/protocol/x/manifests/..%5C..%5Cetc%5Cpasswd",
    "/v2/protocol/x/referrers/..%2F..%2Fetc%2Fpasswd",
    "/v2/../../../../etc/passwd",
    "/v2/protocol/x/blobs/" + DIGEST + "%00.txt",
    "/v2/protocol/x%00/../../etc/passwd/tags/list",
]


@pytest.mark.parametrize("path", TRAVERSALS)
@pytest.mark.parametrize("method", ["GET", "HEAD", "PUT", "PATCH", "DELETE"])
def test_path_traversal_is_a_client_error_and_reads_nothing(server: Server, method: str, path: str) -> None:
    before = snapshot(server)
    response = send_as_is(server, method, path)
    assert 400 <= response.status < 500, (response.status, response.body[:300])
    assert b"root:" not in response.body
    assert snapshot(server) == before


def test_raw_nul_and_backslash_bytes_in_the_request_line_are_refused(server: Server) -> None:
    for path in (b"/v2/protocol/x\x00/tags/list", b"/v2/protocol/..\\..\\etc\\passwd/tags/list"):
        reply = raw_request(
            server,
            b"GET "
            + path
            + b" HTTP/1.1\r\nHost: x\r\nConnection: close\r\n"
            + basic_header(server)
            + b"\r\n",
        )
        assert 400 <= raw_status(reply) < 500, reply[:300]
        assert b"root:" not in reply


UNSUPPORTED = [
    ("POST", "/manifests/v1"),
    ("PATCH", "/manifests/v1"),
    ("PUT", f"/blobs/{DIGEST}"),
    ("POST", f"/blobs/{DIGEST}"),
    ("PATCH", f"/blobs/{DIGEST}"),
    ("POST", "/tags/list"),
    ("PUT", "/tags/list"),
    ("DELETE", "/tags/list"),
    ("GET", "/blobs/uploads/"),
    ("PUT", "/blobs/uploads/"),
    ("POST", "/blobs/uploads/3d1c4c8e-1cf4-4f2f-9ac4-5f5b0b1b7c3e"),
    ("POST", f"/referrers/{DIGEST}"),
    ("DELETE", f"/referrers/{DIGEST}"),
]


@pytest.mark.parametrize(("method", "suffix"), UNSUPPORTED)
def test_unsupported_method_is_405(server: Server, v2: V2, repo: str, method: str, suffix: str) -> None:
    before = snapshot(server)
    assert_error(v2.request(method, f"/v2/{repo}{suffix}", content=b"x"), 405, "UNSUPPORTED")
    assert snapshot(server) == before


@pytest.mark.parametrize(("method", "path"), [("POST", "/v2/_catalog"), ("DELETE", "/v2/"), ("PUT", "/v2/")])
def test_unsupported_method_on_base_and_catalog_is_405(v2: V2, method: str, path: str) -> None:
    assert_error(v2.request(method, path), 405, "UNSUPPORTED")


@pytest.mark.parametrize("n", ["-1", "abc", "1.5", "1e3", " 3", "0x10", "\u00b2", "\u0663"])
def test_bad_page_size_is_400(v2: V2, repo: str, n: str) -> None:
    v2.push_blob(repo, b"x")
    assert_error(v2.get(f"/v2/{repo}/tags/list", params={"n": n}), 400, "PAGINATION_NUMBER_INVALID")
    assert_error(v2.get("/v2/_catalog", params={"n": n}), 400, "PAGINATION_NUMBER_INVALID")


# -- credentials ----------------------------------------------------------------------------


def _assert_challenge(server: Server, response: httpx.Response, scope: str | None) -> None:
    assert response.status_code == 401
    challenge = response.headers["www-authenticate"]
    assert challenge.startswith(f'Bearer realm="{server.url}/auth/token",service="{server.host}"')
    if scope is not None:
        assert f'scope="{scope}"' in challenge
    if response.request.method != "HEAD":
        assert_error(response, 401, "UNAUTHORIZED")


@pytest.mark.parametrize(
    ("method", "suffix", "actions"),
    [
        ("GET", "/tags/list", "pull"),
        ("HEAD", f"/manifests/{DIGEST}", "pull"),
        ("GET", f"/blobs/{DIGEST}", "pull"),
        ("POST", "/blobs/uploads/", "pull,push"),
        ("PUT", "/manifests/v1", "pull,push"),
        ("DELETE", "/manifests/v1", "delete"),
    ],
)
def test_anonymous_request_gets_a_bearer_challenge_with_scope(
    server: Server, repo: str, method: str, suffix: str, actions: str
) -> None:
    before = snapshot(server)
    response = httpx.request(method, f"{server.url}/v2/{repo}{suffix}", content=b"{}")
    _assert_challenge(server, response, f"repository:{repo}:{actions}")
    assert snapshot(server) == before


def test_anonymous_base_request_gets_a_bearer_challenge(server: Server) -> None:
    for method in ("GET", "HEAD"):
        _assert_challenge(server, httpx.request(method, f"{server.url}/v2/"), None)


@pytest.mark.parametrize(
    "credentials",
    [
        ("owner@example.com", "wrong-password"),
        ("owner@example.com", ""),
        ("nobody@example.com", "owner-password-1"),
        ("no-such-token", "owner-password-1"),
    ],
    ids=["wrong-password", "empty-password", "unknown-user", "unknown-token"],
)
def test_wrong_credentials_are_401(server: Server, repo: str, credentials: tuple[str, str]) -> None:
    for path in ("/v2/", f"/v2/{repo}/tags/list"):
        response = httpx.get(f"{server.url}{path}", auth=credentials)
        _assert_challenge(server, response, None)
    token = httpx.get(
        f"{server.url}/auth/token",
        params={"service": server.host, "scope": f"repository:{repo}:pull"},
        auth=credentials,
    )
    assert_error(token, 401, "UNAUTHORIZED")


def test_token_endpoint_without_credentials_is_401(server: Server, repo: str) -> None:
    response = httpx.get(f"{server.url}/auth/token", params={"scope": f"repository:{repo}:pull"})
    assert_error(response, 401, "UNAUTHORIZED")
    assert "www-authenticate" in response.headers


@pytest.mark.parametrize("token", ["garbage", "a.b.c", "eyJhbGciOiJub25lIn0.eyJzdWIiOiJ1c2VyOngifQ."])
def test_invalid_bearer_token_is_401_invalid_token(server: Server, repo: str, token: str) -> None:
    response = httpx.get(f"{server.url}/v2/{repo}/tags/list", headers={"Authorization": f"Bearer {token}"})
    _assert_challenge(server, response, f"repository:{repo}:pull")
    assert 'error="invalid_token"' in response.headers["www-authenticate"]


def test_unknown_registry_answers_like_a_denial_and_reveals_nothing(server: Server, v2: V2) -> None:
    response = v2.get("/v2/no-such-registry/app/tags/list")
    _assert_challenge(server, response, "repository:no-such-registry/app:pull")
