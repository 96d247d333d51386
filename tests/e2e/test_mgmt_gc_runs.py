"""The management API's garbage-collection extension: an owner triggers a run and lists recent runs
(POST/GET /registries/{registryId}/garbageCollection/runs) beside the IONOS shapes; bad input is
answered with IONOS error bodies, read-only users may list but not start runs, other contracts see
nothing."""

from __future__ import annotations

import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.support.mgmt import Login, add_user, api, assert_error, new_contract, push_image, unique
from tests.support.server import Server

RUNS = "/registries/{}/garbageCollection/runs"


@pytest.fixture(scope="module")
def gc_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server whose collections have no grace period, so a run frees what was just dropped."""
    base = tmp_path_factory.mktemp("gc-api")
    with Server(
        data_dir=base / "data",
        extra_env={"CARGOBAY_GC_GRACE_SECONDS": "0", "CARGOBAY_GC_IN_CHILD_PROCESS": "true"},
    ) as srv:
        yield srv


@pytest.fixture(scope="module")
def owner(gc_server: Server) -> Login:
    return new_contract(gc_server, "gc-owner")


@pytest.fixture
def http(gc_server: Server, owner: Login) -> Iterator[httpx.Client]:
    with api(gc_server, owner) as client:
        yield client


def make_registry(http: httpx.Client) -> dict[str, Any]:
    r = http.post("/registries", json={"properties": {"name": unique("gcapi"), "location": "de/fra"}})
    assert r.status_code == 201, r.text
    return dict(r.json())


def wait_done(http: httpx.Client, href: str) -> dict[str, Any]:
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        run = http.get(href).json()
        if run["properties"]["state"] in ("succeeded", "failed"):
            return dict(run)
        time.sleep(0.2)
    raise AssertionError(f"the run at {href} did not finish: {run}")


def test_an_owner_triggers_a_run_that_frees_a_deleted_repositorys_layers(
    gc_server: Server, owner: Login, http: httpx.Client
) -> None:
    registry = make_registry(http)
    rid, name = registry["id"], registry["properties"]["name"]
    push_image(gc_server, owner.auth, name, "keep")
    dropped = push_image(gc_server, owner.auth, name, "drop")
    assert http.delete(f"/registries/{rid}/repositories/drop").status_code == 204
    before = http.get(f"/registries/{rid}").json()["properties"]["storageUsage"]["bytes"]

    r = http.post(RUNS.format(rid))  # no body: a run that deletes
    assert r.status_code == 202, r.text
    assert r.headers["location"] == r.json()["href"]
    assert r.json()["type"] == "garbageCollectionRun"
    assert r.json()["properties"]["state"] in ("queued", "running", "succeeded")
    assert r.json()["properties"]["trigger"] == "api"
    assert r.json()["properties"]["requestedBy"] == owner.email
    run = wait_done(http, r.headers["location"])
    props = run["properties"]
    assert props["state"] == "succeeded", props
    assert props["blobsFreed"] == 2 and props["bytesFreed"] >= dropped.layer_size  # layer and config
    assert props["startedDate"] and props["finishedDate"] and props["error"] is None
    after = http.get(f"/registries/{rid}").json()["properties"]["storageUsage"]["bytes"]
    assert before - after == props["bytesFreed"]

    listed = http.get(RUNS.format(rid)).json()
    assert listed["type"] == "collection" and listed["limit"] == 20
    assert [item["id"] for item in listed["items"]] == [run["id"]]


def test_a_dry_run_reports_and_deletes_nothing(gc_server: Server, owner: Login, http: httpx.Client) -> None:
    registry = make_registry(http)
    rid, name = registry["id"], registry["properties"]["name"]
    push_image(gc_server, owner.auth, name, "drop")
    assert http.delete(f"/registries/{rid}/repositories/drop").status_code == 204
    r = http.post(RUNS.format(rid), json={"properties": {"dryRun": True}})
    assert r.status_code == 202, r.text
    dry = wait_done(http, r.json()["href"])["properties"]
    assert dry["dryRun"] is True and dry["state"] == "succeeded" and dry["blobsFreed"] == 2
    real = wait_done(http, http.post(RUNS.format(rid), json={}).json()["href"])["properties"]
    assert real["dryRun"] is False and real["blobsFreed"] == 2  # the dry run left them
    newest_first = [i["properties"]["dryRun"] for i in http.get(RUNS.format(rid)).json()["items"]]
    assert newest_first == [False, True]
    assert len(http.get(RUNS.format(rid), params={"limit": 1}).json()["items"]) == 1


@pytest.mark.parametrize(
    ("body", "fragment"),
    [
        ({"properties": {"dryRun": "yes"}}, "dryRun"),
        ({"properties": {"dryRun": 1}}, "dryRun"),
        ({"properties": []}, "properties"),
        ([], ""),
    ],
)
def test_a_bad_run_request_is_a_400(http: httpx.Client, body: Any, fragment: str) -> None:
    rid = make_registry(http)["id"]
    assert_error(http.post(RUNS.format(rid), json=body), 400, fragment)


def test_a_body_that_is_not_json_is_a_400(http: httpx.Client) -> None:
    rid = make_registry(http)["id"]
    r = http.post(RUNS.format(rid), content=b"{not json", headers={"Content-Type": "application/json"})
    assert_error(r, 400)


@pytest.mark.parametrize("limit", ["0", "101", "abc", "-1"])
def test_a_bad_limit_is_a_400(http: httpx.Client, limit: str) -> None:
    rid = make_registry(http)["id"]
    assert_error(http.get(RUNS.format(rid), params={"limit": limit}), 400, "limit")


@pytest.mark.parametrize("run_id", ["abc", "1.5", "-3", "9" * 19, "%E2%82%AC"])
def test_a_malformed_run_id_is_a_400_naming_it(http: httpx.Client, run_id: str) -> None:
    rid = make_registry(http)["id"]
    assert_error(http.get(f"{RUNS.format(rid)}/{run_id}"), 400, "run number")


def test_unknown_runs_and_registries_are_404_and_malformed_registry_ids_400(http: httpx.Client) -> None:
    rid = make_registry(http)["id"]
    assert_error(http.get(f"{RUNS.format(rid)}/999999999"), 404)
    missing = "00000000-0000-4000-8000-000000000000"
    assert_error(http.get(RUNS.format(missing)), 404)
    assert_error(http.post(RUNS.format(missing)), 404)
    assert_error(http.get(RUNS.format("not-a-uuid")), 400, "UUID")


def test_a_run_of_another_registry_is_not_found_under_this_one(http: httpx.Client) -> None:
    first, second = make_registry(http)["id"], make_registry(http)["id"]
    run = http.post(RUNS.format(first)).json()
    assert_error(http.get(f"{RUNS.format(second)}/{run['id']}"), 404)


def test_read_only_users_list_runs_but_may_not_start_one(
    gc_server: Server, owner: Login, http: httpx.Client
) -> None:
    rid = make_registry(http)["id"]
    http.post(RUNS.format(rid))
    reader = add_user(gc_server, owner.contract, role="user")
    with api(gc_server, reader) as client:
        assert_error(client.post(RUNS.format(rid)), 403)
        assert_error(client.post(RUNS.format(rid), json={"properties": {"dryRun": True}}), 403)
        assert len(client.get(RUNS.format(rid)).json()["items"]) == 1
    manager = add_user(gc_server, owner.contract, role="user", manage_registry=True)
    with api(gc_server, manager) as client:
        assert client.post(RUNS.format(rid), json={"properties": {"dryRun": True}}).status_code == 202


def test_other_contracts_see_no_runs(gc_server: Server, http: httpx.Client) -> None:
    rid = make_registry(http)["id"]
    stranger = new_contract(gc_server, "gc-stranger")
    with api(gc_server, stranger) as client:
        assert_error(client.get(RUNS.format(rid)), 404)
        assert_error(client.post(RUNS.format(rid)), 404)


def test_anonymous_callers_are_refused(gc_server: Server, http: httpx.Client) -> None:
    rid = make_registry(http)["id"]
    r = httpx.post(f"{gc_server.url}/containerregistries{RUNS.format(rid)}")
    assert_error(r, 401)


def test_the_extension_is_in_the_openapi_document(http: httpx.Client) -> None:
    paths = http.get("/openapi.json").json()["paths"]
    runs = paths["/registries/{registryId}/garbageCollection/runs"]
    assert set(runs) == {"get", "post"}
    assert "202" in runs["post"]["responses"] and "403" in runs["post"]["responses"]
    assert "get" in paths["/registries/{registryId}/garbageCollection/runs/{runId}"]
