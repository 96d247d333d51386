"""Helpers for authorisation tests: registries and tokens made over the management API, token rows
changed behind the API's back, the Docker Bearer flow done by hand, and checks of denied answers."""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit

import httpx

from cargobay.db.engine import Database
from cargobay.db.models import Token
from tests.support.server import Server

ALL_ACTIONS = ["pull", "push", "delete"]

# Headers that only ever describe content or an upload session: a denial must carry none of them.
CONTENT_HEADERS = frozenset(
    {
        "docker-content-digest",
        "docker-upload-uuid",
        "location",
        "range",
        "content-range",
        "etag",
        "link",
        "oci-subject",
        "oci-tag",
        "oci-filters-applied",
    }
)


@dataclass(frozen=True)
class TokenCreds:
    id: str
    username: str
    password: str

    @property
    def auth(self) -> tuple[str, str]:
        return (self.username, self.password)


def repository_scope(name: str, actions: list[str]) -> dict[str, Any]:
    return {"type": "repository", "name": name, "actions": actions}


def registry_scope(name: str = "*") -> dict[str, Any]:
    return {"type": "registry", "name": name, "actions": ["pull"]}


def make_registry(http: httpx.Client, name: str, **properties: Any) -> str:
    """Create a registry over the management API; returns its id."""
    body = {"properties": {"name": name, "location": "de/fra", **properties}}
    r = http.post("/registries", json=body)
    assert r.status_code == 201, r.text
    return str(r.json()["id"])


def make_token(
    http: httpx.Client, registry_id: str, name: str, scopes: list[dict[str, Any]], **properties: Any
) -> TokenCreds:
    body = {"properties": {"name": name, "scopes": scopes, **properties}}
    r = http.post(f"/registries/{registry_id}/tokens", json=body)
    assert r.status_code == 201, r.text
    credentials = r.json()["properties"]["credentials"]
    return TokenCreds(str(r.json()["id"]), credentials["username"], credentials["password"])


def set_token_expiry(server: Server, token_id: str, when: datetime) -> None:
    """Move a token's expiry date in the server's SQLite database.

    The management API refuses an expiry less than an hour ahead (the IONOS rule), so a token can
    only be made to have expired *now* by changing its row directly.
    """
    db = Database(f"sqlite:///{server.data_dir / 'cargobay.db'}")
    try:
        db.write_sync(lambda s: setattr(s.get(Token, token_id), "expiry_date", when))
    finally:
        db.dispose()


# -- the Docker token flow ----------------------------------------------------------------------

_PARAM = re.compile(r'(\w+)="([^"]*)"')


def parse_challenge(value: str) -> dict[str, str]:
    """The parameters of a ``WWW-Authenticate: Bearer realm=…,service=…[,scope=…][,error=…]``."""
    assert value.startswith("Bearer "), value
    return dict(_PARAM.findall(value))


def request_token(
    http: httpx.Client, challenge: dict[str, str], auth: tuple[str, str], scope: str | None = None
) -> httpx.Response:
    """Ask the challenge's realm for a token, as a client would (sent to the test server itself,
    with the realm's host as ``Host``, so host-style registry names need no DNS)."""
    realm = urlsplit(challenge["realm"])
    params = {"service": challenge["service"]}
    wanted = scope if scope is not None else challenge.get("scope")
    if wanted:
        params["scope"] = wanted
    return http.get(realm.path, params=params, auth=auth, headers={"Host": realm.netloc})


# -- denied answers -----------------------------------------------------------------------------


def oci_errors(response: httpx.Response) -> list[dict[str, Any]]:
    body = json.loads(response.content)
    assert set(body) == {"errors"}, body
    errors = body["errors"]
    assert isinstance(errors, list) and errors, body
    return list(errors)


def assert_denial_carries_no_content(response: httpx.Response, status: int, code: str) -> None:
    """A 401/403 with the OCI error body (empty for HEAD) and no header describing content."""
    described = (response.request.method, str(response.request.url), response.status_code, response.text)
    assert response.status_code == status, described
    assert response.headers["content-type"].startswith("application/json"), described
    leaked = CONTENT_HEADERS & set(response.headers)
    assert not leaked, (leaked, described)
    assert int(response.headers["content-length"]) == len(response.content), described
    if response.request.method == "HEAD":
        assert response.content == b"", described
    else:
        assert [e["code"] for e in oci_errors(response)] == [code], described


def denial_shape(response: httpx.Response, names: dict[str, str]) -> tuple[Any, ...]:
    """What a client can observe of a denial, with repository names mapped by ``names`` so answers
    about different targets compare equal when they say the same thing."""

    def same(text: str) -> str:
        for name, replacement in names.items():
            text = text.replace(name, replacement)
        return text

    headers = {key: same(value) for key, value in response.headers.items() if key not in ("date", "server")}
    return (response.status_code, same(response.text), sorted(headers.items()))
