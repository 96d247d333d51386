"""Garbage-collection schedules through POST, PUT and PATCH /registries, on a server over SQLite and one
over PostgreSQL: bad input is a 400 that changes nothing (the stored row is checked), a schedule with
no day is kept and echoed, a PATCH wrapped in ``properties`` is refused, and ``gc_schedule_since``
records when the schedule was set."""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

import httpx
import pytest

from cargobay.db.engine import Database
from cargobay.db.models import Registry
from cargobay.db.types import utcnow
from tests.support.mgmt import Login, api, new_contract, unique
from tests.support.postgres import to_sqlalchemy
from tests.support.server import Server


@dataclass
class Target:
    server: Server
    owner: Login
    db: Database

    def stored(self, registry_id: str) -> tuple[Any, Any, datetime | None] | None:
        """(gc_days, gc_time, gc_schedule_since) as stored, None when there is no such registry."""

        def read(session):  # type: ignore[no-untyped-def]
            row = session.get(Registry, registry_id)
            return None if row is None else (row.gc_days, row.gc_time, row.gc_schedule_since)

        return self.db.read_sync(read)


@pytest.fixture(scope="module", params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def target(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Target]:
    base = tmp_path_factory.mktemp(f"schedules-{request.param}")
    data = base / "data"
    data.mkdir()
    if request.param == "sqlite":
        server = Server(data_dir=data)
        url = f"sqlite:///{data / 'cargobay.db'}"
    else:
        pg = request.getfixturevalue("pg_server")
        raw = pg.url(pg.create_database(f"schedules_{uuid.uuid4().hex[:8]}"))
        server = Server(data_dir=data, extra_env={"CARGOBAY_DATABASE_URL": raw})
        url = to_sqlalchemy(raw)
    server.start(timeout=60)
    db = Database(url)
    try:
        yield Target(server, new_contract(server, "schedules"), db)
    finally:
        db.dispose()
        server.stop()


@pytest.fixture
def http(target: Target) -> Iterator[httpx.Client]:
    with api(target.server, target.owner) as client:
        yield client


KEPT = {"days": ["Monday", "Thursday"], "time": "01:00:00Z"}


def _properties(name: str, schedule: Any = KEPT) -> dict[str, Any]:
    return {"name": name, "location": "de/fra", "garbageCollectionSchedule": schedule}


def _create(http: httpx.Client, schedule: Any = KEPT) -> dict[str, Any]:
    r = http.post("/registries", json={"properties": _properties(unique("gc"), schedule)})
    assert r.status_code == 201, r.text
    return dict(r.json())


def _assert_400(r: httpx.Response, fragment: str) -> None:
    assert r.status_code == 400, r.text
    body = r.json()
    assert body["httpStatus"] == 400 and body["messages"][0]["errorCode"] == "400"
    assert fragment in " ".join(m["message"] for m in body["messages"]), body


BAD_SCHEDULES = [
    ("x", "garbageCollectionSchedule must be a JSON object"),
    (5, "garbageCollectionSchedule must be a JSON object"),
    ([], "garbageCollectionSchedule must be a JSON object"),
    ({"days": "Monday", "time": "01:00:00Z"}, "garbageCollectionSchedule.days"),
    ({"days": [1], "time": "01:00:00Z"}, "garbageCollectionSchedule.days[0]"),
    ({"days": ["monday"], "time": "01:00:00Z"}, "garbageCollectionSchedule.days[0]"),
    ({"days": ["Monday", "Friday", "Monday"], "time": "01:00:00Z"}, "days[2] 'Monday' is listed twice"),
    ({"days": ["Monday"], "time": "10:00:00+02:00"}, "garbageCollectionSchedule.time"),
    ({"days": ["Monday"], "time": "25:00:00"}, "garbageCollectionSchedule.time"),
    ({"days": ["Monday"], "time": 5}, "garbageCollectionSchedule.time"),
    ({"days": ["Monday"]}, "garbageCollectionSchedule.time is required"),
]


@pytest.mark.parametrize(("schedule", "fragment"), BAD_SCHEDULES, ids=[repr(s) for s, _ in BAD_SCHEDULES])
def test_a_bad_schedule_is_a_400_through_post_put_and_patch_and_changes_nothing(
    target: Target, http: httpx.Client, schedule: Any, fragment: str
) -> None:
    name = unique("gc")
    _assert_400(http.post("/registries", json={"properties": _properties(name, schedule)}), fragment)
    assert http.head(f"/names/{name}").status_code == 404  # nothing was created
    fresh = str(uuid.uuid4())
    _assert_400(http.put(f"/registries/{fresh}", json={"properties": _properties(name, schedule)}), fragment)
    assert target.stored(fresh) is None

    registry = _create(http)
    url = f"/registries/{registry['id']}"
    before, stored = http.get(url).json(), target.stored(registry["id"])
    name = registry["properties"]["name"]
    _assert_400(http.put(url, json={"properties": _properties(name, schedule)}), fragment)
    _assert_400(
        http.patch(url, json={"garbageCollectionSchedule": schedule}), fragment.split(" is required")[0]
    )
    assert http.get(url).json() == before
    assert target.stored(registry["id"]) == stored


@pytest.mark.parametrize(
    "body",
    [
        {"properties": {"garbageCollectionSchedule": "x"}},
        {"properties": {"garbageCollectionSchedule": {"days": ["Friday"], "time": "02:00:00Z"}}},
        {"properties": {"apiSubnetAllowList": ["10.0.0.0/8"]}, "apiSubnetAllowList": []},
        {"properties": None},
    ],
)
def test_a_patch_wrapped_in_properties_is_refused_and_changes_nothing(
    target: Target, http: httpx.Client, body: dict[str, Any]
) -> None:
    registry = _create(http)
    url = f"/registries/{registry['id']}"
    before, stored = http.get(url).json(), target.stored(registry["id"])
    _assert_400(http.patch(url, json=body), "properties is not a field of this PATCH")
    assert http.get(url).json() == before
    assert target.stored(registry["id"]) == stored
    assert before["properties"]["garbageCollectionSchedule"] == KEPT


@pytest.mark.parametrize("days", [None, []])
def test_a_schedule_without_days_is_kept_echoed_and_never_runs(
    target: Target, http: httpx.Client, days: list[str] | None
) -> None:
    dayless = {"days": days, "time": "03:04:05.5+00:00"}
    echoed = {"days": [], "time": "03:04:05.5+00:00"}
    created = _create(http, dayless)
    assert created["properties"]["garbageCollectionSchedule"] == echoed
    assert target.stored(created["id"])[:2] == ([], "03:04:05.5+00:00")  # type: ignore[index]

    fresh = str(uuid.uuid4())
    put = http.put(f"/registries/{fresh}", json={"properties": _properties(unique("gc"), dayless)})
    assert put.status_code == 201 and put.json()["properties"]["garbageCollectionSchedule"] == echoed

    registry = _create(http)
    url = f"/registries/{registry['id']}"
    replaced = http.put(url, json={"properties": _properties(registry["properties"]["name"], dayless)})
    assert replaced.json()["properties"]["garbageCollectionSchedule"] == echoed
    patched = http.patch(url, json={"garbageCollectionSchedule": {"days": days, "time": "23:59:59Z"}})
    assert patched.status_code == 200
    assert patched.json()["properties"]["garbageCollectionSchedule"] == {"days": [], "time": "23:59:59Z"}
    assert http.get(url).json()["properties"]["garbageCollectionSchedule"] == {
        "days": [],
        "time": "23:59:59Z",
    }
    assert target.stored(registry["id"])[:2] == ([], "23:59:59Z")  # type: ignore[index]


def test_the_ionosctl_put_with_null_days_is_a_schedule_without_days(
    target: Target, http: httpx.Client
) -> None:
    registry = _create(http)
    body = {
        "properties": {
            "name": registry["properties"]["name"],
            "location": "de/fra",
            "garbageCollectionSchedule": {"days": None, "time": "01:23:00+00:00"},
            "features": {"vulnerabilityScanning": {"enabled": True}},
        }
    }
    r = http.put(f"/registries/{registry['id']}", json=body)
    assert r.status_code == 201, r.text
    assert r.json()["properties"]["garbageCollectionSchedule"] == {"days": [], "time": "01:23:00+00:00"}
    assert http.get(f"/registries/{registry['id']}").json()["properties"]["garbageCollectionSchedule"] == {
        "days": [],
        "time": "01:23:00+00:00",
    }


def test_gc_schedule_since_records_when_the_schedule_was_set_or_changed(
    target: Target, http: httpx.Client
) -> None:
    start = utcnow() - timedelta(seconds=1)
    assert target.stored(_create(http, None)["id"])[2] is None  # type: ignore[index]
    registry = _create(http)
    rid, url, name = registry["id"], f"/registries/{registry['id']}", registry["properties"]["name"]
    since = target.stored(rid)[2]  # type: ignore[index]
    assert since is not None and start <= since <= utcnow()

    http.patch(url, json={"garbageCollectionSchedule": KEPT})  # the same schedule: not a change
    http.put(url, json={"properties": _properties(name, KEPT)})
    http.patch(url, json={"apiSubnetAllowList": ["10.0.0.0/8"]})
    assert target.stored(rid)[2] == since  # type: ignore[index]

    changed = {"days": ["Sunday"], "time": "01:00:00Z"}
    assert http.patch(url, json={"garbageCollectionSchedule": changed}).status_code == 200
    later = target.stored(rid)[2]  # type: ignore[index]
    assert later is not None and later > since
    assert http.put(url, json={"properties": _properties(name, KEPT)}).status_code == 201
    again = target.stored(rid)[2]  # type: ignore[index]
    assert again is not None and again > later

    assert http.patch(url, json={"garbageCollectionSchedule": None}).status_code == 200
    assert target.stored(rid) == (None, None, None)
    http.put(url, json={"properties": _properties(name, KEPT)})
    assert target.stored(rid)[2] is not None  # type: ignore[index]
    assert http.put(url, json={"properties": {"name": name, "location": "de/fra"}}).status_code == 201
    assert target.stored(rid) == (None, None, None)
