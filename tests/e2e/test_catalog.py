"""The catalog across tenants: paging, and only what the caller may see.

Runs its own server: a second contract would change how the session server creates registries.
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.server import Server
from tests.support.v2 import V2, assert_error

OTHER = ("other@example.com", "other-password-1")
READER = ("reader@example.com", "reader-password-1")
# `alpha-x` sorts before `alpha` in the catalog ("alpha-x/…" < "alpha/…"), though after it by name.
FIRST = ["alpha-x/r/app", "alpha/a1/app", "alpha/a2/app", "alpha/zeta", "beta/b/app", "beta/b/app-2"]
SECOND = ["gamma/g/app", "gamma/g/other"]
pytestmark = pytest.mark.slow  # its own server and five CLI calls: about 30 s of set-up
LINK = re.compile(r'^<(?P<path>/v2/_catalog\?[^>]+)>; rel="next"$')


@pytest.fixture(scope="module")
def tenants(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base: Path = tmp_path_factory.mktemp("tenants")
    server = Server(data_dir=base / "data")
    with server:
        server.create_registry("alpha")
        server.create_registry("alpha-x")
        server.create_registry("beta")
        out = server.cli(
            "contract", "create", "--name", "other", "--owner", OTHER[0], "--password", OTHER[1]
        ).stdout
        contract = int(out.split()[1])
        server.cli(
            "user",
            "create",
            READER[0],
            "--contract",
            str(contract),
            "--role",
            "user",
            "--password",
            READER[1],
        )
        server.create_registry("gamma", contract=contract)
        with V2(server) as owner:
            for name in FIRST:
                owner.push_blob(name, name.encode())
        with V2(server, OTHER) as other:
            for name in SECOND:
                other.push_blob(name, name.encode())
        yield server


def _catalog(server: Server, auth: tuple[str, str], **params: str) -> httpx.Response:
    return httpx.get(f"{server.url}/v2/_catalog", params=params, auth=auth)


def _all_pages(
    server: Server, auth: tuple[str, str] | None, n: int, bearer: str | None = None
) -> list[list[str]]:
    headers = {"Authorization": f"Bearer {bearer}"} if bearer else {}
    pages: list[list[str]] = []
    path: str | None = f"/v2/_catalog?n={n}"
    while path is not None:
        response = httpx.get(f"{server.url}{path}", auth=auth, headers=headers)
        assert response.status_code == 200, response.text
        pages.append(response.json()["repositories"])
        link = response.headers.get("link")
        path = None
        if link is not None:
            match = LINK.match(link)
            assert match, link
            path = match["path"]
        assert len(pages) <= 20
    return pages


def test_owner_sees_exactly_the_repositories_of_their_contract(tenants: Server) -> None:
    response = _catalog(tenants, tenants.auth)
    assert response.json() == {"repositories": FIRST}
    assert "link" not in response.headers


@pytest.mark.parametrize("auth", [OTHER, READER], ids=["owner", "member"])
def test_members_of_another_contract_see_only_theirs(tenants: Server, auth: tuple[str, str]) -> None:
    assert _catalog(tenants, auth).json() == {"repositories": SECOND}


@pytest.mark.parametrize("n", [1, 2, 4])
def test_catalog_pages_follow_link_headers_to_the_end(tenants: Server, n: int) -> None:
    pages = _all_pages(tenants, tenants.auth, n)
    assert [name for page in pages for name in page] == FIRST
    assert all(len(page) == n for page in pages[:-1])
    assert 1 <= len(pages[-1]) <= n


def test_catalog_last_is_exclusive(tenants: Server) -> None:
    after_a2 = FIRST[FIRST.index("alpha/a2/app") + 1 :]
    assert _catalog(tenants, tenants.auth, last="alpha/a2/app").json()["repositories"] == after_a2
    after_alpha = FIRST[FIRST.index("beta/b/app") :]
    assert _catalog(tenants, tenants.auth, last="alpha/zz").json()["repositories"] == after_alpha
    assert _catalog(tenants, tenants.auth, last="alpha-x/r/app").json()["repositories"] == FIRST[1:]
    assert _catalog(tenants, tenants.auth, n="0").json() == {"repositories": []}


def test_bearer_catalog_token_lists_only_the_callers_registries(tenants: Server) -> None:
    for auth, expected in ((tenants.auth, FIRST), (OTHER, SECOND)):
        token = httpx.get(
            f"{tenants.url}/auth/token",
            params={"service": tenants.host, "scope": "registry:catalog:*"},
            auth=auth,
        ).json()["token"]
        pages = _all_pages(tenants, None, 2, bearer=token)
        assert [name for page in pages for name in page] == expected


def test_plain_member_pulls_but_may_not_push(tenants: Server) -> None:
    with V2(tenants, READER) as reader:
        assert reader.get("/v2/gamma/g/app/tags/list").status_code == 200
        assert_error(reader.request("POST", "/v2/gamma/g/app/blobs/uploads/"), 403, "DENIED")


def test_other_contracts_registries_are_closed(tenants: Server) -> None:
    with V2(tenants, OTHER) as other:
        response = other.get("/v2/alpha/a1/app/tags/list")
        assert_error(response, 401, "UNAUTHORIZED")
    with V2(tenants) as owner:
        assert_error(owner.get("/v2/gamma/g/app/tags/list"), 401, "UNAUTHORIZED")
