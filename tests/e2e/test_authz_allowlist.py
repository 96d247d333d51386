"""``apiSubnetAllowList`` on the registry API and the token service: the peer address decides, and
``X-Forwarded-For`` only when the peer is a configured trusted proxy (off by default)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import httpx
import pytest

from tests.support.authz import (
    TokenCreds,
    assert_denial_carries_no_content,
    make_registry,
    make_token,
    parse_challenge,
    registry_scope,
    repository_scope,
)
from tests.support.mgmt import Login, api, new_contract, push_image, unique
from tests.support.server import Server

DOMAIN = "registry.test"
OUTSIDE = "203.0.113.0/24"  # TEST-NET-3: never the address of a test client


@dataclass(frozen=True)
class Tenant:
    server: Server
    owner: Login
    open: str  # a registry without an allowlist
    closed: str  # a registry whose allowlist is ``OUTSIDE``
    closed_id: str
    closed_token: TokenCreds  # may do everything in ``closed``

    def set_allowlist(self, *networks: str) -> None:
        with api(self.server, self.owner) as http:
            r = http.patch(f"/registries/{self.closed_id}", json={"apiSubnetAllowList": list(networks)})
            assert r.status_code == 200, r.text


def _tenant(server: Server) -> Tenant:
    owner = new_contract(server, "allowlist")
    open_name, closed_name = unique("open"), unique("closed")
    with api(server, owner) as http:
        make_registry(http, open_name)
        closed_id = make_registry(http, closed_name)
        token = make_token(
            http,
            closed_id,
            unique("tok"),
            [repository_scope("*", ["pull", "push", "delete"]), registry_scope("*")],
        )
    for name in (open_name, closed_name):
        push_image(server, owner.auth, name, "team/app", "v1")
    tenant = Tenant(server, owner, open_name, closed_name, closed_id, token)
    tenant.set_allowlist(OUTSIDE)
    return tenant


@pytest.fixture(scope="module")
def tenant(server: Server) -> Tenant:
    """Two registries on the session server (no trusted proxies, no registry domain)."""
    return _tenant(server)


@pytest.fixture(scope="module")
def proxied(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server behind a 'proxy' on 127.0.0.1 (every test request), with host-style names."""
    base = tmp_path_factory.mktemp("proxied")
    with Server(
        data_dir=base / "data",
        extra_env={"CARGOBAY_TRUSTED_PROXIES": '["127.0.0.1/32"]', "CARGOBAY_REGISTRY_DOMAIN": DOMAIN},
    ) as server:
        yield server


@pytest.fixture(scope="module")
def behind_proxy(proxied: Server) -> Tenant:
    return _tenant(proxied)


def _tags(tenant: Tenant, auth: tuple[str, str], forwarded: str | None = None) -> httpx.Response:
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    url = f"{tenant.server.url}/v2/{tenant.closed}/team/app/tags/list"
    return httpx.get(url, auth=auth, headers=headers)


def _token(
    tenant: Tenant, auth: tuple[str, str], forwarded: str | None = None, scope: str | None = "pull"
) -> httpx.Response:
    headers = {"X-Forwarded-For": forwarded} if forwarded is not None else {}
    params = {"service": tenant.server.host}
    if scope:
        params["scope"] = f"repository:{tenant.closed}/team/app:{scope}"
    return httpx.get(f"{tenant.server.url}/auth/token", params=params, auth=auth, headers=headers)


# -- X-Forwarded-For ------------------------------------------------------------------------------


def test_forwarded_for_is_ignored_without_trusted_proxies(tenant: Tenant) -> None:
    """A client cannot talk its way in (or out) by naming an address itself."""
    for auth in (tenant.owner.auth, tenant.closed_token.auth):
        assert_denial_carries_no_content(_tags(tenant, auth, "203.0.113.7"), 403, "DENIED")
        assert_denial_carries_no_content(_token(tenant, auth, "203.0.113.7"), 403, "DENIED")
    tenant.set_allowlist("127.0.0.1/32")
    try:
        assert _tags(tenant, tenant.closed_token.auth, "198.51.100.1").status_code == 200
        assert _token(tenant, tenant.closed_token.auth, "198.51.100.1").status_code == 200
    finally:
        tenant.set_allowlist(OUTSIDE)


@pytest.mark.parametrize(
    ("forwarded", "allowed"),
    [
        (None, False),  # the proxy's own address (127.0.0.1) is outside the list
        ("203.0.113.7", True),
        ("198.51.100.1", False),
        ("203.0.113.7, 127.0.0.1", True),  # hops through further trusted proxies are skipped
        ("203.0.113.7, 198.51.100.1", False),  # the nearest untrusted hop counts, not a forged first
        ("198.51.100.1, 203.0.113.7", True),
    ],
)
def test_forwarded_for_decides_behind_a_trusted_proxy(
    behind_proxy: Tenant, forwarded: str | None, allowed: bool
) -> None:
    tenant = behind_proxy
    for auth in (tenant.owner.auth, tenant.closed_token.auth):
        tags, token = _tags(tenant, auth, forwarded), _token(tenant, auth, forwarded)
        if allowed:
            assert (tags.status_code, token.status_code) == (200, 200), (tags.text, token.text)
        else:
            assert_denial_carries_no_content(tags, 403, "DENIED")
            assert_denial_carries_no_content(token, 403, "DENIED")


# -- requests that address no registry by path ----------------------------------------------------


def test_path_style_catalog_leaves_out_registries_outside_their_allowlist(tenant: Tenant) -> None:
    url = f"{tenant.server.url}/v2/_catalog"
    listed = httpx.get(url, auth=tenant.owner.auth).json()["repositories"]
    assert f"{tenant.open}/team/app" in listed
    assert not [name for name in listed if name.startswith(f"{tenant.closed}/")], listed
    params = {"service": tenant.server.host, "scope": "registry:catalog:*"}
    jwt = httpx.get(f"{tenant.server.url}/auth/token", params=params, auth=tenant.owner.auth).json()["token"]
    listed = httpx.get(url, headers={"Authorization": f"Bearer {jwt}"}).json()["repositories"]
    assert f"{tenant.open}/team/app" in listed
    assert not [name for name in listed if name.startswith(f"{tenant.closed}/")], listed


def test_path_style_catalog_lists_a_registry_once_the_proxy_vouches_for_the_client(
    behind_proxy: Tenant,
) -> None:
    tenant = behind_proxy
    url = f"{tenant.server.url}/v2/_catalog"
    listed = httpx.get(url, auth=tenant.owner.auth, headers={"X-Forwarded-For": "203.0.113.7"})
    assert {f"{tenant.open}/team/app", f"{tenant.closed}/team/app"} <= set(listed.json()["repositories"])
    listed = httpx.get(url, auth=tenant.owner.auth)
    assert f"{tenant.closed}/team/app" not in listed.json()["repositories"]


def test_a_token_cannot_log_in_from_outside_its_registrys_allowlist(tenant: Tenant) -> None:
    """GET /v2/ and a scope-less /auth/token name no registry, but a token belongs to one."""
    token = tenant.closed_token.auth
    assert_denial_carries_no_content(httpx.get(f"{tenant.server.url}/v2/", auth=token), 403, "DENIED")
    assert_denial_carries_no_content(_token(tenant, token, scope=None), 403, "DENIED")
    catalog = httpx.get(f"{tenant.server.url}/v2/_catalog", auth=token)
    assert_denial_carries_no_content(catalog, 403, "DENIED")
    # A user's login spans the contract's registries: it stands, and shows only what is reachable.
    assert httpx.get(f"{tenant.server.url}/v2/", auth=tenant.owner.auth).status_code == 200
    assert _token(tenant, tenant.owner.auth, scope=None).status_code == 200


def test_a_registrys_own_host_takes_only_its_own_credentials(behind_proxy: Tenant) -> None:
    """``docker login open.registry.test`` with another registry's token fails at once (it would
    otherwise 'succeed' and every push then be refused); a host naming no registry takes nothing."""
    tenant = behind_proxy
    port = tenant.server.port
    inside = {"X-Forwarded-For": "203.0.113.7"}  # the closed registry's token stays inside its list
    for host, auth in (
        (f"{tenant.open}.{DOMAIN}:{port}", tenant.closed_token.auth),
        (f"nosuch-registry.{DOMAIN}:{port}", tenant.owner.auth),
    ):
        login = httpx.get(f"{tenant.server.url}/v2/", auth=auth, headers={"Host": host, **inside})
        assert_denial_carries_no_content(login, 401, "UNAUTHORIZED")
        assert parse_challenge(login.headers["www-authenticate"])["service"] == host
        issued = httpx.get(
            f"{tenant.server.url}/auth/token", params={"service": host}, auth=auth, headers=inside
        )
        assert_denial_carries_no_content(issued, 401, "UNAUTHORIZED")
    # Each registry's own credentials, and the contract's users, log in where they belong.
    for host, auth in (
        (f"{tenant.open}.{DOMAIN}:{port}", tenant.owner.auth),
        (f"{tenant.closed}.{DOMAIN}:{port}", tenant.closed_token.auth),
        (f"{tenant.closed}.{DOMAIN}:{port}", tenant.owner.auth),
    ):
        login = httpx.get(f"{tenant.server.url}/v2/", auth=auth, headers={"Host": host, **inside})
        assert login.status_code == 200, (host, login.text)
        issued = httpx.get(
            f"{tenant.server.url}/auth/token", params={"service": host}, auth=auth, headers=inside
        )
        assert issued.status_code == 200, (host, issued.text)
        bearer = {"Authorization": f"Bearer {issued.json()['token']}", "Host": host, **inside}
        assert httpx.get(f"{tenant.server.url}/v2/", headers=bearer).status_code == 200


def test_a_login_to_a_registry_named_by_host_is_refused_from_outside(behind_proxy: Tenant) -> None:
    tenant = behind_proxy
    host = f"{tenant.closed}.{DOMAIN}:{tenant.server.port}"
    for auth in (tenant.owner.auth, tenant.closed_token.auth, None):
        r = httpx.get(f"{tenant.server.url}/v2/", auth=auth, headers={"Host": host})
        assert_denial_carries_no_content(r, 403, "DENIED")
    for auth in (tenant.owner.auth, tenant.closed_token.auth):
        r = httpx.get(f"{tenant.server.url}/auth/token", params={"service": host}, auth=auth)
        assert_denial_carries_no_content(r, 403, "DENIED")
    inside = {"Host": host, "X-Forwarded-For": "203.0.113.7"}
    assert httpx.get(f"{tenant.server.url}/v2/", auth=tenant.owner.auth, headers=inside).status_code == 200
