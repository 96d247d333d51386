"""The management API on the wire: what the SDK hides (null vs absent, headers, timestamp text, HEAD,
pagination envelopes, error bodies, percent-encoding), validation of every input, and isolation."""

from __future__ import annotations

import re
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from tests.support.authz import set_token_expiry
from tests.support.mgmt import (
    Login,
    add_user,
    api,
    assert_error,
    bearer_token,
    new_contract,
    push_image,
    unique,
)
from tests.support.server import Server

TIMESTAMP = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?Z$")
UUID = "00000000-0000-4000-8000-000000000000"


@pytest.fixture(scope="module")
def owner(server: Server) -> Login:
    return new_contract(server, "http-owner")


@pytest.fixture
def http(server: Server, owner: Login) -> Iterator[httpx.Client]:
    with api(server, owner) as client:
        yield client


def make_registry(http: httpx.Client, **properties: Any) -> dict[str, Any]:
    body = {"properties": {"name": unique("http"), "location": "de/fra", **properties}}
    r = http.post("/registries", json=body)
    assert r.status_code == 201, r.text
    return dict(r.json())


def make_token(http: httpx.Client, registry_id: str, **properties: Any) -> dict[str, Any]:
    r = http.post(
        f"/registries/{registry_id}/tokens", json={"properties": {"name": unique("tok"), **properties}}
    )
    assert r.status_code == 201, r.text
    return dict(r.json())


def timestamps(value: Any, key: str = "") -> Iterator[tuple[str, Any]]:
    if isinstance(value, dict):
        for k, v in value.items():
            yield from timestamps(v, k)
    elif isinstance(value, list):
        for item in value:
            yield from timestamps(item, key)
    elif key.endswith(("Date", "At")) and value is not None:
        yield key, value


# -- PATCH: absent vs null vs [] --------------------------------------------------------------------
def test_registry_patch_absent_keeps_and_empty_list_or_null_clears(http: httpx.Client) -> None:
    registry = make_registry(
        http,
        apiSubnetAllowList=["10.0.0.0/8"],
        garbageCollectionSchedule={"days": ["Monday"], "time": "01:00:00Z"},
    )
    url = f"/registries/{registry['id']}"
    kept = http.patch(url, json={}).json()["properties"]
    assert kept["apiSubnetAllowList"] == ["10.0.0.0/8"]
    assert kept["garbageCollectionSchedule"] == {"days": ["Monday"], "time": "01:00:00Z"}
    cleared = http.patch(url, json={"apiSubnetAllowList": []}).json()["properties"]
    assert cleared["apiSubnetAllowList"] == [] and cleared["garbageCollectionSchedule"]["days"] == ["Monday"]
    http.patch(url, json={"apiSubnetAllowList": ["192.0.2.1"]})
    assert http.patch(url, json={"apiSubnetAllowList": None}).json()["properties"]["apiSubnetAllowList"] == []
    unscheduled = http.patch(url, json={"garbageCollectionSchedule": None}).json()["properties"]
    assert unscheduled["garbageCollectionSchedule"] is None


def test_token_patch_absent_keeps_and_null_expiry_clears(http: httpx.Client) -> None:
    registry = make_registry(http)
    expiry = (datetime.now(UTC) + timedelta(days=3)).replace(microsecond=0)
    token = make_token(
        http,
        registry["id"],
        expiryDate=expiry.isoformat(),
        scopes=[{"name": "app", "type": "repository", "actions": ["pull"]}],
    )
    url = f"/registries/{registry['id']}/tokens/{token['id']}"
    kept = http.patch(url, json={"status": "disabled"}).json()["properties"]
    assert kept["expiryDate"] == expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert kept["scopes"] == [{"name": "app", "type": "repository", "actions": ["pull"]}]
    cleared = http.patch(url, json={"expiryDate": None}).json()["properties"]
    assert cleared["expiryDate"] is None and cleared["status"] == "disabled"
    assert http.patch(url, json={"scopes": []}).json()["properties"]["scopes"] == []
    assert http.patch(url, json={"scopes": None}).json()["properties"]["scopes"] == []


def test_terraform_may_resend_an_expiry_that_is_now_close(http: httpx.Client, server: Server) -> None:
    registry = make_registry(http)
    token = make_token(http, registry["id"], expiryDate=(datetime.now(UTC) + timedelta(days=1)).isoformat())
    set_token_expiry(server, token["id"], datetime.now(UTC) + timedelta(minutes=30))
    stored = http.get(f"/registries/{registry['id']}/tokens/{token['id']}").json()["properties"]["expiryDate"]
    url = f"/registries/{registry['id']}/tokens/{token['id']}"
    assert http.patch(url, json={"expiryDate": stored, "status": "disabled"}).status_code == 200
    soon = (datetime.now(UTC) + timedelta(minutes=40)).isoformat()
    assert_error(http.patch(url, json={"expiryDate": soon}), 400, "expiryDate", "at least one hour")


# -- headers, timestamps, integers ------------------------------------------------------------------
def test_creates_answer_201_with_an_absolute_location(http: httpx.Client, server: Server) -> None:
    r = http.post("/registries", json={"properties": {"name": unique("loc"), "location": "de/fra"}})
    rid = r.json()["id"]
    assert r.status_code == 201
    assert r.headers["location"] == f"{server.url}/containerregistries/registries/{rid}" == r.json()["href"]
    put_id = str(uuid.uuid4())
    r = http.put(f"/registries/{put_id}", json={"properties": {"name": unique("loc"), "location": "de/fra"}})
    assert r.status_code == 201 and r.headers["location"].endswith(f"/registries/{put_id}")
    r = http.post(f"/registries/{rid}/tokens", json={"properties": {"name": "t1"}})
    assert r.status_code == 201 and r.headers["location"].endswith(
        f"/registries/{rid}/tokens/{r.json()['id']}"
    )
    tid = str(uuid.uuid4())
    r = http.put(f"/registries/{rid}/tokens/{tid}", json={"properties": {"name": "t2"}})
    assert r.status_code == 201 and r.headers["location"].endswith(f"/tokens/{tid}")


def test_every_timestamp_is_utc_with_z_and_integers_are_integers(
    http: httpx.Client, server: Server, owner: Login
) -> None:
    registry = make_registry(http)
    push_image(server, owner.auth, registry["properties"]["name"], "ts/app", "v1")
    offset_expiry = (datetime.now(UTC) + timedelta(days=5)).astimezone(
        __import__("datetime").timezone(timedelta(hours=2))
    )
    token = make_token(http, registry["id"], expiryDate=offset_expiry.isoformat())
    assert token["properties"]["expiryDate"].endswith("Z")
    rid = registry["id"]
    bodies = [
        http.get(f"/registries/{rid}").json(),
        http.get("/registries").json(),
        http.get(f"/registries/{rid}/tokens").json(),
        http.get(f"/registries/{rid}/repositories").json(),
        http.get(f"/registries/{rid}/artifacts").json(),
    ]
    found = [pair for body in bodies for pair in timestamps(body)]
    assert {k for k, _ in found} >= {
        "createdDate",
        "updatedAt",
        "expiryDate",
        "lastPushedAt",
        "lastModifiedDate",
    }
    for key, value in found:
        assert TIMESTAMP.match(value), (key, value)
    parsed = datetime.fromisoformat(token["properties"]["expiryDate"].replace("Z", "+00:00"))
    assert parsed == offset_expiry.replace(microsecond=parsed.microsecond)
    usage = http.get(f"/registries/{rid}").json()["properties"]["storageUsage"]["bytes"]
    assert isinstance(usage, int) and not isinstance(usage, bool) and usage > 0


def test_storage_usage_follows_pushes_and_repository_deletes(
    http: httpx.Client, server: Server, owner: Login
) -> None:
    registry = make_registry(http)
    name, rid = registry["properties"]["name"], registry["id"]

    def usage() -> int:
        return int(http.get(f"/registries/{rid}").json()["properties"]["storageUsage"]["bytes"])

    first = push_image(server, owner.auth, name, "keep", "v1")
    second = push_image(server, owner.auth, name, "drop", "v1")
    before = usage()
    assert before >= first.size + first.layer_size + second.size + second.layer_size
    assert http.delete(f"/registries/{rid}/repositories/drop").status_code == 204
    assert usage() == before - second.size  # manifests at once; blobs when GC runs


# -- HEAD /names ------------------------------------------------------------------------------------
def test_names_head_codes_without_bodies(http: httpx.Client, server: Server) -> None:
    registry = make_registry(http)
    taken = http.head(f"/names/{registry['properties']['name']}")
    free = http.head(f"/names/{unique('free')}")
    bad = http.head("/names/-bad-")
    assert (taken.status_code, free.status_code, bad.status_code) == (200, 404, 400)
    assert taken.content == free.content == bad.content == b""
    assert httpx.head(f"{server.url}/containerregistries/names/abc").status_code == 401
    assert http.get("/names/abc").status_code == 405


# -- pagination envelopes ---------------------------------------------------------------------------
def test_registry_list_uses_an_opaque_cursor(http: httpx.Client) -> None:
    stem = unique("cur")
    for i in range(3):
        make_registry(http, name=f"{stem}-{i}")
    page = http.get("/registries", params={"filter.name": stem, "limit": "2"}).json()
    assert page["id"] == "registries" and page["type"] == "collection"
    assert page["pagination"]["limit"] == 2 and page["pagination"]["token"]
    links = page["_links"]
    assert set(links) == {"self", "previous", "next"} and all(isinstance(v, str) for v in links.values())
    assert "pagination.token=" in links["next"] and links["previous"] == ""
    last = httpx.get(links["next"], auth=http.auth).json()
    assert [r["properties"]["name"] for r in last["items"]] == [f"{stem}-2"]
    assert last["pagination"]["token"] == "" and last["_links"]["next"] == ""
    assert_error(http.get("/registries", params={"pagination.token": "forged"}), 400, "pagination.token")
    assert_error(http.get("/registries", params={"limit": "0"}), 400, "limit")
    assert_error(http.get("/registries", params={"limit": "ten"}), 400, "limit")


def test_token_list_uses_string_offsets_with_counts(http: httpx.Client) -> None:
    registry = make_registry(http)
    for i in range(3):
        make_token(http, registry["id"], name=f"tok{i}")
    page = http.get(f"/registries/{registry['id']}/tokens", params={"offset": "1", "limit": "1"}).json()
    assert (page["count"], page["offset"], page["limit"], page["total"]) == (1, 1, 1, 3)
    assert page["items"][0]["properties"]["name"] == "tok1"
    assert "offset=0" in page["_links"]["previous"] and "offset=2" in page["_links"]["next"]
    last = http.get(f"/registries/{registry['id']}/tokens", params={"offset": "2", "limit": "5"}).json()
    assert last["count"] == 1 and last["_links"]["next"] == ""
    assert_error(http.get(f"/registries/{registry['id']}/tokens", params={"offset": "-1"}), 400, "offset")
    assert_error(
        http.get(f"/registries/{registry['id']}/tokens", params={"offset": str(2**70)}), 400, "offset"
    )


def _follow(http: httpx.Client, url: str, params: dict[str, Any]) -> list[list[str]]:
    """Every page of a list, following its ``next`` links."""
    pages: list[list[str]] = []
    page = http.get(url, params=params)
    while True:
        assert page.status_code == 200, page.text
        body = page.json()
        pages.append([item["id"] for item in body["items"]])
        if body["_links"].get("next") is None:
            return pages
        page = http.get(body["_links"]["next"])


def test_next_links_carry_a_cursor_that_pages_like_offsets(
    http: httpx.Client, server: Server, owner: Login
) -> None:
    registry = make_registry(http)
    name = registry["properties"]["name"]
    for i in range(5):
        push_image(server, owner.auth, name, f"r{i}/app", "v1")
        push_image(server, owner.auth, name, "one/app", f"v{i}")
    rid = registry["id"]
    lists = [
        (f"/registries/{rid}/repositories", {"orderBy": "-lastPush", "limit": 2}),
        (f"/registries/{rid}/repositories", {"orderBy": "lastPull", "limit": 2, "filter.name": "app"}),
        (f"/registries/{rid}/artifacts", {"orderBy": "-pullCount", "limit": 3}),
        (f"/registries/{rid}/repositories/one%2Fapp/artifacts", {"orderBy": "lastPush", "limit": 2}),
    ]
    for url, params in lists:
        followed = _follow(http, url, params)
        first = http.get(url, params=params).json()
        assert "pagination.token=" in first["_links"]["next"] and "offset=" in first["_links"]["next"]
        by_offset = [
            [item["id"] for item in http.get(url, params={**params, "offset": at}).json()["items"]]
            for at in range(0, sum(map(len, followed)), params["limit"])
        ]
        assert followed == by_offset, url
        assert len({i for page in followed for i in page}) == sum(map(len, followed)) >= 5
    # a token made for another offset, order or filter is not used: the offset places the page
    url, params = lists[0]
    token = http.get(url, params=params).json()["_links"]["next"].split("pagination.token=")[1]
    plain = http.get(url, params={**params, "offset": 4}).json()["items"]
    assert http.get(url, params={**params, "offset": 4, "pagination.token": token}).json()["items"] == plain
    other = {**params, "orderBy": "lastPush", "offset": 2}
    assert (
        http.get(url, params={**other, "pagination.token": token}).json()["items"]
        == http.get(url, params=other).json()["items"]
    )
    assert_error(
        http.get(url, params={**params, "pagination.token": "bm90LWEtdG9rZW4"}), 400, "pagination.token"
    )


def test_repository_list_uses_integer_offsets_with_optional_links(
    http: httpx.Client, server: Server, owner: Login
) -> None:
    registry = make_registry(http)
    for repo in ("a1", "b2", "c3"):
        push_image(server, owner.auth, registry["properties"]["name"], repo, "v1")
    url = f"/registries/{registry['id']}/repositories"
    first = http.get(url, params={"limit": 2, "orderBy": "name"}).json()
    assert (first["offset"], first["limit"]) == (0, 2)
    assert [r["id"] for r in first["items"]] == ["a1", "b2"]
    assert first["_links"]["prev"] is None and "offset=2" in first["_links"]["next"]
    second = http.get(url, params={"offset": 2, "limit": 2, "orderBy": "name"}).json()
    assert [r["id"] for r in second["items"]] == ["c3"]
    assert "offset=0" in second["_links"]["prev"] and second["_links"]["next"] is None
    assert [r["id"] for r in http.get(url, params={"filter.name": "b"}).json()["items"]] == ["b2"]
    assert http.get(url, params={"filter.vulnerabilitySeverity": "high,critical"}).json()["items"] == []
    for params, field in [
        ({"limit": 0}, "limit"),
        ({"limit": 1001}, "limit"),
        ({"offset": -1}, "offset"),
        ({"offset": 2**70}, "offset"),  # would overflow the database's integers
        ({"orderBy": "-name"}, "orderBy"),
        ({"filter.vulnerabilitySeverity": "severe"}, "filter.vulnerabilitySeverity"),
    ]:
        assert_error(http.get(url, params=params), 400, field)


# -- error bodies everywhere ------------------------------------------------------------------------
def test_unknown_paths_methods_and_credentials_answer_with_the_error_body(
    http: httpx.Client, server: Server
) -> None:
    assert_error(http.get("/no/such/thing"), 404, "no such endpoint")
    assert_error(http.get("/registries/"), 404)
    r = http.post("/locations")
    assert_error(r, 405, "POST")
    assert r.headers["allow"] == "GET"
    assert set(http.request("OPTIONS", f"/registries/{UUID}").headers["allow"].split(", ")) == {
        "DELETE",
        "GET",
        "PATCH",
        "PUT",
    }
    base = f"{server.url}/containerregistries"
    assert_error(httpx.get(f"{base}/registries"), 401, "authentication required")
    assert_error(httpx.get(f"{base}/registries", auth=("owner@example.com", "wrong")), 401, "invalid")
    assert_error(httpx.get(f"{base}/registries", auth=("ci-token", "x")), 401, "user@domain")
    assert_error(httpx.get(f"{base}/registries", headers={"Authorization": "Bearer nope"}), 401, "bearer")
    assert_error(http.get("/registries", headers={"X-Contract-Number": "12ab"}), 400, "X-Contract-Number")


def test_request_bodies_must_be_json_objects(http: httpx.Client) -> None:
    headers = {"Content-Type": "application/json"}
    assert_error(http.post("/registries", content=b"{nope", headers=headers), 400, "not valid JSON")
    assert_error(http.post("/registries", content=b"", headers=headers), 400, "request body")
    assert_error(http.post("/registries", json=[1, 2]), 400, "JSON object")
    assert_error(http.post("/registries", json={}), 400, "properties is required")


def _invalid_registry_bodies() -> list[tuple[dict[str, Any], str]]:
    ok = {"name": "valid-name", "location": "de/fra"}
    return [
        ({**ok, "name": "Bad_Name"}, "properties.name"),
        ({**ok, "name": "ab"}, "properties.name"),
        ({**ok, "name": 7}, "properties.name"),
        ({"location": "de/fra"}, "properties.name is required"),
        ({**ok, "location": "mars/base"}, "properties.location"),
        ({"name": "valid-name"}, "properties.location is required"),
        ({**ok, "apiSubnetAllowList": ["10.0.0.0/33"]}, "properties.apiSubnetAllowList[0]"),
        ({**ok, "apiSubnetAllowList": ["not-an-ip"]}, "properties.apiSubnetAllowList[0]"),
        ({**ok, "apiSubnetAllowList": [f"10.0.0.{i}" for i in range(26)]}, "at most 25"),
        ({**ok, "garbageCollectionSchedule": {"days": ["monday"], "time": "01:00:00Z"}}, "days[0]"),
        ({**ok, "garbageCollectionSchedule": {"days": ["Monday"], "time": "25:00:00"}}, "time"),
        (
            {**ok, "garbageCollectionSchedule": {"days": ["Monday"]}},
            "garbageCollectionSchedule.time is required",
        ),
        ({**ok, "features": {"vulnerabilityScanning": {"enabled": "yes"}}}, "vulnerabilityScanning.enabled"),
    ]


@pytest.mark.parametrize(("properties", "fragment"), _invalid_registry_bodies())
def test_invalid_registry_bodies_are_refused_and_nothing_is_stored(
    http: httpx.Client, properties: dict[str, Any], fragment: str
) -> None:
    before = http.get("/registries").json()["items"]
    assert_error(http.post("/registries", json={"properties": properties}), 400, fragment)
    assert_error(http.put(f"/registries/{uuid.uuid4()}", json={"properties": properties}), 400, fragment)
    assert http.get("/registries").json()["items"] == before


@pytest.mark.parametrize(
    ("patch", "fragment"),
    [
        ({"apiSubnetAllowList": ["300.1.1.1"]}, "apiSubnetAllowList[0]"),
        ({"apiSubnetAllowList": "10.0.0.0/8"}, "apiSubnetAllowList"),
        (
            {"garbageCollectionSchedule": {"days": ["Someday"], "time": "01:00:00"}},
            "garbageCollectionSchedule.days[0]",
        ),
        ({"features": {"vulnerabilityScanning": {"enabled": False}}}, "cannot be switched off"),
    ],
)
def test_invalid_registry_patches_change_nothing(
    http: httpx.Client, patch: dict[str, Any], fragment: str
) -> None:
    registry = make_registry(http, apiSubnetAllowList=["10.0.0.0/8"])
    url = f"/registries/{registry['id']}"
    before = http.get(url).json()
    assert_error(http.patch(url, json=patch), 400, fragment)
    assert http.get(url).json() == before


@pytest.mark.parametrize(
    ("properties", "fragment"),
    [
        ({}, "properties.name is required"),
        ({"name": "-x"}, "properties.name"),
        ({"name": "a"}, "properties.name"),
        ({"name": "ok1", "status": "paused"}, "properties.status"),
        ({"name": "ok1", "expiryDate": "2000-01-01T00:00:00Z"}, "properties.expiryDate"),
        ({"name": "ok1", "expiryDate": "next week"}, "properties.expiryDate"),
        ({"name": "ok1", "scopes": [{"name": "a", "type": "bucket", "actions": ["pull"]}]}, "scopes[0].type"),
        (
            {"name": "ok1", "scopes": [{"name": "a", "type": "repository", "actions": ["read"]}]},
            "unknown action",
        ),
        (
            {"name": "ok1", "scopes": [{"name": "a", "type": "repository", "actions": ["push"]}]},
            "push needs pull",
        ),
        (
            {"name": "ok1", "scopes": [{"name": "A B", "type": "repository", "actions": ["pull"]}]},
            "scopes[0].name",
        ),
        (
            {"name": "ok1", "scopes": [{"type": "repository", "actions": ["pull"]}]},
            "scopes[0].name is required",
        ),
    ],
)
def test_invalid_token_bodies_are_refused_and_nothing_is_stored(
    http: httpx.Client, properties: dict[str, Any], fragment: str
) -> None:
    registry = make_registry(http)
    url = f"/registries/{registry['id']}/tokens"
    assert_error(http.post(url, json={"properties": properties}), 400, fragment)
    assert_error(http.put(f"{url}/{uuid.uuid4()}", json={"properties": properties}), 400, fragment)
    assert http.get(url).json()["total"] == 0


@pytest.mark.parametrize(
    ("patch", "fragment"),
    [
        ({"status": "off"}, "status"),
        ({"expiryDate": "yesterday"}, "expiryDate"),
        ({"expiryDate": "2001-01-01T00:00:00Z"}, "at least one hour"),
        ({"scopes": [{"name": "x", "type": "repository", "actions": []}]}, "scopes[0].actions"),
        ({"scopes": "all"}, "scopes"),
        # wrapped as POST and PUT bodies are: refused, not ignored (a 200 that would change nothing)
        ({"properties": {"status": "disabled"}}, "properties is not a field of this PATCH"),
        ({"properties": {"expiryDate": None}, "status": "disabled"}, "send expiryDate, scopes, status"),
    ],
)
def test_invalid_token_patches_change_nothing(
    http: httpx.Client, patch: dict[str, Any], fragment: str
) -> None:
    registry = make_registry(http)
    token = make_token(
        http, registry["id"], scopes=[{"name": "*", "type": "repository", "actions": ["pull"]}]
    )
    url = f"/registries/{registry['id']}/tokens/{token['id']}"
    before = http.get(url).json()
    assert_error(http.patch(url, json=patch), 400, fragment)
    assert http.get(url).json() == before


def test_ids_names_digests_and_list_parameters_are_validated(http: httpx.Client) -> None:
    registry = make_registry(http)
    rid = registry["id"]
    assert_error(http.get("/registries/not-a-uuid"), 400, "registryId")
    assert_error(http.delete("/registries/1234"), 400, "registryId")
    assert_error(http.get(f"/registries/{rid}/tokens/nope"), 400, "tokenId")
    assert_error(http.get(f"/registries/{rid}/repositories/UPPER"), 400, "repositoryName")
    assert_error(http.delete(f"/registries/{rid}/repositories/a%2F%2Fb"), 400, "repositoryName")
    assert_error(http.get(f"/registries/{rid}/repositories/app/artifacts/md5:abc"), 400, "digest")
    assert_error(http.get(f"/registries/{rid}/artifacts", params={"orderBy": "size"}), 400, "orderBy")
    assert_error(http.get(f"/registries/{rid}/artifacts", params={"filter.vulnerabilityId": "x" * 65}), 400)
    digest = "sha256:" + "0" * 64
    vulns = f"/registries/{rid}/repositories/app/artifacts/{digest}/vulnerabilities"
    assert_error(http.get(vulns, params={"filter.severity": "bad"}), 400, "filter.severity")
    assert_error(http.get(vulns, params={"filter.fixable": "maybe"}), 400, "filter.fixable")
    assert_error(http.get(vulns, params={"orderBy": "name"}), 400, "orderBy")
    assert_error(http.get("/vulnerabilities/" + "C" * 65), 400, "vulnerabilityId")
    assert_error(http.get(vulns, params={"orderBy": "-publishedAt", "filter.fixable": "true"}), 404, "app")
    assert_error(http.get(vulns, params={"limit": 0}), 400, "limit")
    assert_error(http.get(vulns, params={"offset": -1}), 400, "offset")
    assert_error(http.get(vulns.replace(digest, "sha256:xyz")), 400, "digest")
    artifacts = f"/registries/{rid}/artifacts"
    assert_error(http.get(artifacts, params={"orderBy": "vulnTotalScore"}), 400, "orderBy")  # not here
    assert_error(http.get(artifacts, params={"filter.vulnerabilityId": "CVE-1", "limit": 0}), 400, "limit")
    assert http.get(artifacts, params={"filter.vulnerabilityId": "CVE-2024-0001"}).json()["items"] == []
    assert_error(http.get("/vulnerabilities/CVE-2024-0001"), 404, "CVE-2024-0001")


# -- percent-encoded path segments ------------------------------------------------------------------
def test_repository_names_and_digests_are_single_encoded_segments(
    http: httpx.Client, server: Server, owner: Login
) -> None:
    registry = make_registry(http)
    rid = registry["id"]
    pushed = push_image(server, owner.auth, registry["properties"]["name"], "team/sub/app", "v1")
    repo = http.get(f"/registries/{rid}/repositories/team%2Fsub%2Fapp")
    assert repo.status_code == 200 and repo.json()["id"] == "team/sub/app"
    assert repo.json()["href"].endswith("/repositories/team%2Fsub%2Fapp")
    python_form = http.get(
        f"/registries/{rid}/repositories/team%2Fsub%2Fapp/artifacts/{pushed.digest.replace(':', '%3A')}"
    )
    go_form = http.get(f"/registries/{rid}/repositories/team%2Fsub%2Fapp/artifacts/{pushed.digest}")
    assert python_form.status_code == go_form.status_code == 200
    assert python_form.json() == go_form.json()
    assert python_form.json()["properties"]["tags"] == ["v1"]
    assert_error(http.get(f"/registries/{rid}/repositories/team/sub/app"), 404)  # literal '/' splits segments
    assert http.delete(f"/registries/{rid}/repositories/team%2Fsub%2Fapp").status_code == 204
    assert_error(http.get(f"/registries/{rid}/repositories/team%2Fsub%2Fapp"), 404, "team/sub/app")


# -- tenancy ----------------------------------------------------------------------------------------
def test_content_of_another_contract_is_not_found(server: Server, http: httpx.Client, owner: Login) -> None:
    registry = make_registry(http)
    pushed = push_image(server, owner.auth, registry["properties"]["name"], "private", "v1")
    stranger = new_contract(server, "http-stranger")
    rid = registry["id"]
    with api(server, stranger) as other:
        for r in [
            other.get(f"/registries/{rid}/repositories"),
            other.get(f"/registries/{rid}/repositories/private"),
            other.get(f"/registries/{rid}/artifacts"),
            other.get(f"/registries/{rid}/repositories/private/artifacts/{pushed.digest}"),
            other.delete(f"/registries/{rid}/repositories/private"),
        ]:
            assert_error(r, 404, "not found")
        assert_error(
            other.post(
                "/registries",
                json={"properties": {"name": registry["properties"]["name"], "location": "de/fra"}},
            ),
            409,
            "already in use",
        )
        assert_error(
            other.put(f"/registries/{rid}", json={"properties": {"name": unique("x"), "location": "de/fra"}}),
            404,
        )
    assert http.get(f"/registries/{rid}/repositories/private").status_code == 200


def test_a_plain_user_cannot_delete_repositories(server: Server, http: httpx.Client, owner: Login) -> None:
    registry = make_registry(http)
    push_image(server, owner.auth, registry["properties"]["name"], "kept", "v1")
    reader = add_user(server, owner.contract, role="user")
    with api(server, reader) as plain:
        assert plain.get(f"/registries/{registry['id']}/repositories/kept").status_code == 200
        assert_error(plain.delete(f"/registries/{registry['id']}/repositories/kept"), 403, "manageRegistry")
    assert http.get(f"/registries/{registry['id']}/repositories/kept").status_code == 200


def test_token_ids_are_unique_across_registries(http: httpx.Client) -> None:
    first, second = make_registry(http), make_registry(http)
    token = make_token(http, first["id"])
    r = http.put(f"/registries/{second['id']}/tokens/{token['id']}", json={"properties": {"name": "other"}})
    assert_error(r, 409, "tokenId")


# -- registry tokens on /v2/ ------------------------------------------------------------------------
def _v2_status(server: Server, auth: tuple[str, str], path: str) -> int:
    return httpx.get(f"{server.url}/v2/{path}", auth=auth).status_code


def test_tokens_work_on_the_registry_api_and_stop_when_disabled_or_expired(
    http: httpx.Client, server: Server, owner: Login
) -> None:
    registry = make_registry(http)
    name, rid = registry["properties"]["name"], registry["id"]
    push_image(server, owner.auth, name, "team/app", "v1")
    token = make_token(http, rid, scopes=[{"name": "team/*", "type": "repository", "actions": ["pull"]}])
    creds = (token["properties"]["credentials"]["username"], token["properties"]["credentials"]["password"])
    url = f"/registries/{rid}/tokens/{token['id']}"
    assert _v2_status(server, creds, f"{name}/team/app/tags/list") == 200
    http.patch(url, json={"scopes": [{"name": "other", "type": "repository", "actions": ["pull"]}]})
    assert _v2_status(server, creds, f"{name}/team/app/tags/list") in (401, 403)
    http.patch(url, json={"scopes": [{"name": "team/*", "type": "repository", "actions": ["pull"]}]})
    http.patch(url, json={"status": "disabled"})
    assert _v2_status(server, creds, f"{name}/team/app/tags/list") == 401
    http.patch(url, json={"status": "enabled"})
    assert _v2_status(server, creds, f"{name}/team/app/tags/list") == 200
    set_token_expiry(server, token["id"], datetime.now(UTC) - timedelta(seconds=1))
    assert _v2_status(server, creds, f"{name}/team/app/tags/list") == 401  # at once
    assert_error(http.get(url), 404)
    assert http.get(f"/registries/{rid}/tokens").json()["total"] == 0
    # the name is free again even before the periodic sweep removed the row
    assert (
        http.post(
            f"/registries/{rid}/tokens", json={"properties": {"name": token["properties"]["name"]}}
        ).status_code
        == 201
    )


# -- bearer tokens ----------------------------------------------------------------------------------
def test_bearer_tokens_list_revoke_and_stay_off_the_registry_api(server: Server, owner: Login) -> None:
    registry_name = None
    with api(server, owner) as http:
        registry_name = make_registry(http)["properties"]["name"]
    auth_api = f"{server.url}/auth/v1"
    token = bearer_token(server, owner)
    bearer = {"Authorization": f"Bearer {token}"}
    assert httpx.get(f"{server.url}/containerregistries/locations", headers=bearer).status_code == 200
    assert httpx.get(f"{server.url}/v2/{registry_name}/x/tags/list", headers=bearer).status_code == 401
    listed = httpx.get(f"{auth_api}/tokens", headers=bearer).json()["tokens"]
    mine = [t for t in listed if t["href"].endswith(listed[-1]["id"])]
    assert mine and all(
        TIMESTAMP.match(t["createdDate"]) and TIMESTAMP.match(t["expirationDate"]) for t in listed
    )
    ids = {t["id"] for t in listed}
    short = httpx.get(f"{auth_api}/tokens/generate", params={"ttl": 120}, auth=owner.auth).json()["token"]
    new_ids = {t["id"] for t in httpx.get(f"{auth_api}/tokens", auth=owner.auth).json()["tokens"]} - ids
    assert len(new_ids) == 1
    (new_id,) = new_ids
    info = httpx.get(f"{auth_api}/tokens/{new_id}", auth=owner.auth).json()
    created = datetime.fromisoformat(info["createdDate"].replace("Z", "+00:00"))
    expires = datetime.fromisoformat(info["expirationDate"].replace("Z", "+00:00"))
    assert expires - created == timedelta(seconds=120)
    assert httpx.delete(f"{auth_api}/tokens/{new_id}", auth=owner.auth).json() == {"success": True}
    r = httpx.get(f"{server.url}/containerregistries/locations", headers={"Authorization": f"Bearer {short}"})
    assert_error(r, 401, "revoked")
    assert_error(httpx.get(f"{auth_api}/tokens/generate", params={"ttl": 5}, auth=owner.auth), 400, "ttl")
    assert_error(
        httpx.delete(f"{auth_api}/tokens", params={"criteria": "SOME"}, auth=owner.auth), 400, "criteria"
    )
    assert httpx.delete(f"{auth_api}/tokens", params={"criteria": "CURRENT"}, headers=bearer).json()[
        "success"
    ]
    assert_error(httpx.get(f"{server.url}/containerregistries/locations", headers=bearer), 401)


def test_registry_jwts_are_not_management_tokens(server: Server, owner: Login) -> None:
    r = httpx.get(f"{server.url}/auth/token", params={"service": server.host}, auth=owner.auth)
    assert r.status_code == 200
    registry_jwt = r.json()["token"]
    r = httpx.get(
        f"{server.url}/containerregistries/locations", headers={"Authorization": f"Bearer {registry_jwt}"}
    )
    assert_error(r, 401)


# -- registry deletion ------------------------------------------------------------------------------
def test_deleting_a_registry_removes_tokens_content_and_stored_objects(
    http: httpx.Client, server: Server, owner: Login
) -> None:
    registry = make_registry(http)
    rid, name = registry["id"], registry["properties"]["name"]
    push_image(server, owner.auth, name, "gone", "v1")
    make_token(http, rid)
    objects = server.data_dir / "storage" / "objects" / rid
    assert any(objects.rglob("*"))
    assert http.delete(f"/registries/{rid}").status_code == 204
    assert not objects.exists() or not any(p.is_file() for p in objects.rglob("*"))
    assert_error(http.get(f"/registries/{rid}/tokens"), 404)
    assert http.head(f"/names/{name}").status_code == 404  # the name is free again
    assert _v2_status(server, owner.auth, f"{name}/gone/tags/list") in (401, 404)


# -- the OpenAPI description ------------------------------------------------------------------------
def test_openapi_describes_the_22_operations_and_the_gc_extension(server: Server) -> None:
    doc = httpx.get(f"{server.url}/containerregistries/openapi.json").json()
    operations = {op["operationId"] for path in doc["paths"].values() for op in path.values()}
    extension = {
        "registriesGarbageCollectionRunsPost",
        "registriesGarbageCollectionRunsGet",
        "registriesGarbageCollectionRunsFindById",
    }
    assert extension <= operations
    assert len(operations - extension) == 22
    assert {
        "namesCheckUsage",
        "registriesPut",
        "registriesTokensPatch",
        "vulnerabilitiesFindById",
    } <= operations
    assert doc["servers"] == [{"url": "/containerregistries"}]
    assert set(doc["components"]["securitySchemes"]) == {"basicAuth", "tokenAuth"}
    location = doc["components"]["schemas"]["PostRegistryProperties"]["properties"]["location"]
    assert "de/fra" in location["enum"]


# -- hostnames with a registry domain ---------------------------------------------------------------
@pytest.fixture(scope="module")
def domain_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("domain")
    with Server(data_dir=base / "data", extra_env={"CARGOBAY_REGISTRY_DOMAIN": "cr.example.test"}) as srv:
        yield srv


def test_hostname_is_name_dot_domain_when_a_domain_is_configured(domain_server: Server) -> None:
    auth = (domain_server.admin_user, domain_server.admin_password)
    with httpx.Client(base_url=f"{domain_server.url}/containerregistries", auth=auth) as http:
        created = http.post(
            "/registries", json={"properties": {"name": "hosted", "location": "de/fra"}}
        ).json()
        assert created["properties"]["hostname"] == ""
        found = http.get(f"/registries/{created['id']}").json()
        assert found["properties"]["hostname"] == "hosted.cr.example.test"
