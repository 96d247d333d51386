"""Registry tokens on the registry API: what their scopes grant, and how quickly a token that is
disabled, expired or deleted stops working (at once on /v2/ and at /auth/token; a JWT already issued
is refused within a second)."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

import httpx
import jwt
import pytest

from cargobay.auth.jwt_tokens import TokenSigner
from cargobay.config import Settings
from cargobay.domain.scopes import ResourceScope
from tests.support.authz import (
    TokenCreds,
    assert_denial_carries_no_content,
    make_registry,
    make_token,
    repository_scope,
    set_token_expiry,
)
from tests.support.images import sha256
from tests.support.mgmt import Login, api, new_contract, push_image, unique
from tests.support.server import Server


@dataclass(frozen=True)
class Place:
    server: Server
    owner: Login
    registry: str
    registry_id: str

    def mgmt(self) -> httpx.Client:
        return api(self.server, self.owner)

    def token(self, *actions: str, glob: str = "team/*") -> TokenCreds:
        with self.mgmt() as http:
            return make_token(http, self.registry_id, unique("tok"), [repository_scope(glob, list(actions))])


@pytest.fixture(scope="module")
def place(server: Server) -> Place:
    """A registry of a new contract on the session server."""
    owner = new_contract(server, "authz-tokens")
    name = unique("authz")
    with api(server, owner) as http:
        registry_id = make_registry(http, name)
    push_image(server, owner.auth, name, "team/app", "v1")
    return Place(server, owner, name, registry_id)


def _token_for(place: Place, creds: tuple[str, str], actions: str = "pull") -> httpx.Response:
    scope = f"repository:{place.registry}/team/app:{actions}"
    return httpx.get(
        f"{place.server.url}/auth/token", params={"service": place.server.host, "scope": scope}, auth=creds
    )


def _bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _tags(place: Place, auth: tuple[str, str] | None = None, token: str | None = None) -> httpx.Response:
    url = f"{place.server.url}/v2/{place.registry}/team/app/tags/list"
    return httpx.get(url, auth=auth, headers=_bearer(token) if token else None)


# -- a token that stops being good is refused at once ------------------------------------------


def _disable(place: Place, token: TokenCreds) -> None:
    with place.mgmt() as http:
        r = http.patch(f"/registries/{place.registry_id}/tokens/{token.id}", json={"status": "disabled"})
        assert r.status_code == 200, r.text


def _delete(place: Place, token: TokenCreds) -> None:
    with place.mgmt() as http:
        assert http.delete(f"/registries/{place.registry_id}/tokens/{token.id}").status_code == 204


def _expire(place: Place, token: TokenCreds) -> None:
    # Over the API an expiry date must lie at least an hour ahead, so a token is made to have
    # expired just now by moving the date in the server's database.
    set_token_expiry(place.server, token.id, datetime.now(UTC) - timedelta(seconds=1))


@pytest.mark.parametrize("end", [_disable, _expire, _delete], ids=["disabled", "expired", "deleted"])
def test_a_token_that_is_no_longer_good_is_refused_at_once(
    place: Place, end: Callable[[Place, TokenCreds], None]
) -> None:
    token = place.token("pull")
    assert _tags(place, auth=token.auth).status_code == 200
    assert _token_for(place, token.auth).status_code == 200  # and the success is cached
    end(place, token)
    refused = _tags(place, auth=token.auth)
    assert_denial_carries_no_content(refused, 401, "UNAUTHORIZED")
    issued = _token_for(place, token.auth)
    assert_denial_carries_no_content(issued, 401, "UNAUTHORIZED")
    assert issued.headers["www-authenticate"].startswith("Basic ")


@pytest.mark.parametrize("end", [_disable, _expire, _delete], ids=["disabled", "expired", "deleted"])
def test_a_jwt_issued_before_the_token_ended_is_refused_within_a_second(
    place: Place, end: Callable[[Place, TokenCreds], None]
) -> None:
    """A JWT names its registry token; the registry API re-reads the token's state at most a second
    after it last did, so a JWT outlives the token it came from by at most that second."""
    token = place.token("pull")
    issued = _token_for(place, token.auth).json()
    assert _tags(place, token=issued["token"]).status_code == 200
    end(place, token)
    ended = time.monotonic()
    while (refused := _tags(place, token=issued["token"])).status_code == 200:
        assert time.monotonic() - ended < 1.5, "the JWT still worked more than a second later"
        time.sleep(0.05)
    assert_denial_carries_no_content(refused, 401, "UNAUTHORIZED")
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]
    claims = jwt.decode(issued["token"], options={"verify_signature": False})
    assert claims["sub"] == f"token:{token.id}"


# -- JWT lifetime -------------------------------------------------------------------------------


def test_jwts_live_at_most_five_minutes(place: Place) -> None:
    body = _token_for(place, place.owner.auth).json()
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    assert 0 < body["expires_in"] <= 300
    assert claims["exp"] - claims["iat"] == body["expires_in"]
    assert claims["exp"] <= datetime.now(UTC).timestamp() + 300 + 1


@pytest.mark.parametrize("ttl", [301, 3600])
def test_a_ttl_longer_than_five_minutes_is_refused_by_the_configuration(ttl: int) -> None:
    with pytest.raises(ValueError, match="300"):
        Settings(token_ttl_seconds=ttl)
    assert TokenSigner(b"k" * 32, ttl_seconds=ttl).ttl == 300  # and the signer caps it regardless


@pytest.mark.parametrize("ttl", [0, 4, -1])
def test_a_ttl_under_five_seconds_is_refused_by_the_configuration(ttl: int) -> None:
    with pytest.raises(ValueError, match="greater than or equal to 5"):
        Settings(token_ttl_seconds=ttl)


def test_an_expired_jwt_is_refused(place: Place) -> None:
    """A JWT signed with the server's own key, granting pull, but past its expiry."""
    signer = TokenSigner(place.server.signing_key(), ttl_seconds=-10)
    grant = ResourceScope("repository", f"{place.registry}/team/app", frozenset({"pull"}))
    token = signer.issue("user:x", place.server.host, [place.registry_id], [grant]).token
    fresh = TokenSigner(place.server.signing_key())
    valid = fresh.issue("user:x", place.server.host, [place.registry_id], [grant]).token
    assert _tags(place, token=valid).status_code == 200
    refused = _tags(place, token=token)
    assert_denial_carries_no_content(refused, 401, "UNAUTHORIZED")
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]


@pytest.fixture(scope="module")
def short_lived(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("short-lived-jwts")
    with Server(data_dir=base / "data", extra_env={"CARGOBAY_TOKEN_TTL_SECONDS": "5"}) as server:
        yield server


@pytest.mark.slow
def test_a_jwt_stops_working_when_its_configured_ttl_ends(short_lived: Server) -> None:
    server = short_lived
    server.create_registry("ttl")
    push_image(server, server.auth, "ttl", "team/app", "v1")
    params = {"service": server.host, "scope": "repository:ttl/team/app:pull"}
    body = httpx.get(f"{server.url}/auth/token", params=params, auth=server.auth).json()
    assert body["expires_in"] == 5
    url = f"{server.url}/v2/ttl/team/app/tags/list"
    assert httpx.get(url, headers=_bearer(body["token"])).status_code == 200
    claims = jwt.decode(body["token"], options={"verify_signature": False})
    wait = claims["exp"] - datetime.now(UTC).timestamp() + 1.5
    time.sleep(max(wait, 0))
    refused = httpx.get(url, headers=_bearer(body["token"]))
    assert_denial_carries_no_content(refused, 401, "UNAUTHORIZED")
    assert 'error="invalid_token"' in refused.headers["www-authenticate"]


# -- upload sessions belong to pushing ----------------------------------------------------------


@pytest.mark.parametrize("method", ["GET", "PATCH", "PUT", "DELETE"])
def test_every_upload_session_request_needs_push(place: Place, method: str) -> None:
    """Reading a session's progress or cancelling it is part of a push: a pull-only or delete-only
    token may do neither, and a push token may do all (distribution would ask pull, resp. delete)."""
    pusher = place.token("pull", "push")
    with httpx.Client(base_url=place.server.url, auth=pusher.auth) as http:
        started = http.post(f"/v2/{place.registry}/team/app/blobs/uploads/")
        assert started.status_code == 202, started.text
        session = started.headers["location"]
        for actions in (("pull",), ("delete",)):
            other = place.token(*actions)
            refused = httpx.request(method, f"{place.server.url}{session}", auth=other.auth)
            assert_denial_carries_no_content(refused, 403, "DENIED")
            anonymous = httpx.request(method, f"{place.server.url}{session}")
            assert (
                f'scope="repository:{place.registry}/team/app:pull,push"'
                in (anonymous.headers["www-authenticate"])
            )
        allowed = http.request(method, session, params={"digest": sha256(b"")} if method == "PUT" else {})
        assert allowed.status_code == {"GET": 204, "PATCH": 202, "PUT": 201, "DELETE": 204}[method]
