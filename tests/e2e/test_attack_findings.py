"""What an attack run against a live server found, each replayed with its exact requests against a
`cargobay serve` with two worker processes, on SQLite and on PostgreSQL."""

from __future__ import annotations

import statistics
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import jwt
import pytest

from tests.support.authz import make_registry, make_token, registry_scope, repository_scope
from tests.support.mgmt import Login, api, new_contract, push_image, unique
from tests.support.postgres import PostgresServer
from tests.support.server import Server


@dataclass(frozen=True)
class Place:
    server: Server
    owner: Login
    registry: str
    registry_id: str

    def mgmt(self) -> httpx.Client:
        return api(self.server, self.owner)

    def v2(self, path: str, **kwargs: object) -> httpx.Response:
        return httpx.get(f"{self.server.url}/v2/{path}", **kwargs)  # type: ignore[arg-type]

    def token_request(self, auth: tuple[str, str], *scopes: str) -> httpx.Response:
        params: list[tuple[str, str]] = [("service", self.server.host)]
        params += [("scope", s) for s in scopes]
        return httpx.get(f"{self.server.url}/auth/token", params=params, auth=auth)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def place(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Place]:
    extra: dict[str, str] = {}
    if request.param == "postgresql":
        pg: PostgresServer = request.getfixturevalue("pg_server")
        extra["CARGOBAY_DATABASE_URL"] = pg.url(pg.create_database(unique("attack").replace("-", "_")))
    base: Path = tmp_path_factory.mktemp(f"attack-{request.param}")
    server = Server(data_dir=base / "data", workers=2, extra_env=extra)
    with server:
        owner = new_contract(server, "attack")
        name = unique("atk")
        with api(server, owner) as http:
            registry_id = make_registry(http, name)
        push_image(server, owner.auth, name, "team/app", "v1")
        push_image(server, owner.auth, name, "other/app", "v1")
        yield Place(server, owner, name, registry_id)


def _claims(response: httpx.Response) -> dict[str, object]:
    assert response.status_code == 200, response.text
    return dict(jwt.decode(response.json()["token"], options={"verify_signature": False}))


# -- 2.1: the token service signed grants for names that are not repository names -----------------


@pytest.mark.parametrize(
    "name",
    [
        "team/../other/app",
        "team/%2e%2e/other/app",
        "team//../other/app",
        "team/./../other/app",
        "team/app/../../other/app",
        "team/../../other/app",
        "team/APP",
    ],
)
def test_no_grant_names_what_is_not_a_repository_name(place: Place, name: str) -> None:
    with place.mgmt() as http:
        token = make_token(http, place.registry_id, unique("glob"), [repository_scope("team/*", ["pull"])])
    for auth in (token.auth, place.owner.auth):
        claims = _claims(place.token_request(auth, f"repository:{place.registry}/{name}:pull"))
        assert claims["access"] == [], claims
    valid = _claims(place.token_request(token.auth, f"repository:{place.registry}/team/app:pull"))
    assert valid["access"] == [
        {"type": "repository", "name": f"{place.registry}/team/app", "actions": ["pull"]}
    ]


# -- 2.3: a wrong password for an existing user cost 19 ms, for a missing user 1 ms ---------------


def test_a_missing_login_costs_what_a_wrong_password_costs(place: Place) -> None:
    """Medians of interleaved GET /v2/ with Basic: the two kinds of failure take as long as each
    other (each is one argon2 check; the integration test counts them exactly)."""
    with place.mgmt() as http:
        token = make_token(http, place.registry_id, unique("timing"), [repository_scope("team/*", ["pull"])])
    cases = {
        "user, wrong password": (place.owner.email, "not-the-password"),
        "no such user": (f"{unique('nobody')}@example.com", "not-the-password"),
        "token, wrong password": (token.username, "not-the-password"),
        "no such token": (unique("nobody"), "not-the-password"),
    }
    times: dict[str, list[float]] = {case: [] for case in cases}
    with httpx.Client(base_url=place.server.url) as client:
        for _ in range(15):
            for case, auth in cases.items():
                began = time.perf_counter()
                assert client.get("/v2/", auth=auth).status_code == 401
                times[case].append(time.perf_counter() - began)
    medians = {case: statistics.median(values) for case, values in times.items()}
    reference = medians["user, wrong password"]
    assert all(0.5 * reference <= median <= 2 * reference for median in medians.values()), medians


# -- 2.4: a JWT kept working for up to 5 minutes after its token was disabled or deleted -----------


@pytest.mark.parametrize("end", ["disable", "delete"])
def test_a_jwt_of_an_ended_token_is_refused_within_a_second_by_every_process(place: Place, end: str) -> None:
    with place.mgmt() as http:
        token = make_token(http, place.registry_id, unique("jwt"), [repository_scope("team/*", ["pull"])])
    issued = place.token_request(token.auth, f"repository:{place.registry}/team/app:pull").json()["token"]
    bearer = {"Authorization": f"Bearer {issued}"}
    for _ in range(10):  # fresh connections: both worker processes serve it and remember it is good
        assert place.v2(f"{place.registry}/team/app/tags/list", headers=bearer).status_code == 200
    with place.mgmt() as http:
        url = f"/registries/{place.registry_id}/tokens/{token.id}"
        done = http.patch(url, json={"status": "disabled"}) if end == "disable" else http.delete(url)
        assert done.status_code in (200, 204), done.text
    time.sleep(1.1)
    answers = [place.v2(f"{place.registry}/team/app/tags/list", headers=bearer) for _ in range(10)]
    assert [a.status_code for a in answers] == [401] * 10
    assert all('error="invalid_token"' in a.headers["www-authenticate"] for a in answers)


# -- 3.1: the catalog answered a JWT without the catalog scope with an empty list -------------------


def test_the_catalog_challenges_a_jwt_without_the_catalog_scope(place: Place) -> None:
    without = place.token_request(place.owner.auth, f"repository:{place.registry}/team/app:pull")
    refused = place.v2("_catalog", headers={"Authorization": f"Bearer {without.json()['token']}"})
    assert refused.status_code == 401
    challenge = refused.headers["www-authenticate"]
    assert 'error="insufficient_scope"' in challenge and 'scope="registry:catalog:*"' in challenge
    granted = place.token_request(place.owner.auth, "registry:catalog:*")
    listed = place.v2("_catalog", headers={"Authorization": f"Bearer {granted.json()['token']}"})
    assert listed.status_code == 200
    assert {f"{place.registry}/team/app", f"{place.registry}/other/app"} <= set(listed.json()["repositories"])


# -- 4.1: a token name shared by many registries cost up to 50 argon2 checks per login -------------


def test_a_token_name_shared_by_many_registries_logs_in_path_style(place: Place) -> None:
    """`ci` in 52 registries: the newest logs in (it could not beyond the 50th), the wrong password
    is refused, both at GET /v2/ and at /auth/token without a scope."""
    passwords = []
    with place.mgmt() as http:
        for _ in range(52):
            registry_id = make_registry(http, unique("ci"))
            passwords.append(make_token(http, registry_id, "ci", [repository_scope("*", ["pull"])]).password)
    newest = ("ci", passwords[-1])
    assert place.v2("", auth=newest).status_code == 200
    assert place.token_request(newest).status_code == 200
    assert place.v2("", auth=("ci", "not-the-password")).status_code == 401
    assert place.token_request(("ci", "not-the-password")).status_code == 401


# -- 4.2: the catalog read every registry of the server; its JWT listed every registry id ----------


def test_the_catalog_jwt_is_small_and_the_catalog_holds_only_the_tenant(place: Place) -> None:
    tenant = new_contract(place.server, "many")
    with api(place.server, tenant) as http:
        names = [unique("many") for _ in range(60)]
        for name in names:
            make_registry(http, name)
        reader = make_token(http, make_registry(http, unique("rd")), "reader", [registry_scope("*")])
    push_image(place.server, tenant.auth, names[0], "mine/app", "v1")
    response = place.token_request(tenant.auth, "registry:catalog:*")
    assert len(response.json()["token"]) < 1000  # the same with one registry or 50,000
    claims = _claims(response)
    assert claims["rids"] == [] and claims["access"] == [
        {"type": "registry", "name": "catalog", "actions": ["*"]}
    ]
    listed = place.v2("_catalog", headers={"Authorization": f"Bearer {response.json()['token']}"}).json()
    assert listed["repositories"] == [f"{names[0]}/mine/app"]  # not the other tenant's
    own = place.v2("_catalog", auth=reader.auth).json()  # a token lists its own registry only
    assert own["repositories"] == []
