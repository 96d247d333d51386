"""Garbage collection runs in the console. Two images pushed with crane share a base layer and one's
repository is deleted; a run started from the "Run now" form (the server has no grace period) frees
the deleted image's own layer and config, which its page and the list show, and the kept image still
validates. A dry run reports the same and deletes nothing. Bad run ids, bad paging and a bad form
value are answered in plain words, another contract's registry is not found, a read-only user sees
the runs but cannot start one, older runs are paged to, and the pages fit a phone."""

from __future__ import annotations

import random
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest
from playwright.sync_api import Browser, Locator, Page, expect

from tests.browser.conftest import Seeded
from tests.support.browser import (
    assert_every_input_labelled,
    csrf,
    fits_phone,
    phone_page,
    screenshot,
    sign_in,
)
from tests.support.clients import ClientEnv
from tests.support.images import tar_layer
from tests.support.mgmt import api, new_contract, unique

pytestmark = pytest.mark.slow

GC = "garbage-collection"
MANAGERS_ONLY = "only contract owners, admins and users with the manageregistry permission"
FINISHED = ("succeeded", "failed")


def _new_registry(client: httpx.Client, prefix: str) -> tuple[str, str]:
    name = unique(prefix)
    made = client.post("/registries", json={"properties": {"name": name, "location": "de/fra"}})
    made.raise_for_status()
    return str(made.json()["id"]), name


def _storage(client: httpx.Client, rid: str) -> int:
    return int(client.get(f"/registries/{rid}").json()["properties"]["storageUsage"]["bytes"])


def _runs(client: httpx.Client, rid: str, limit: int = 100) -> list[dict[str, Any]]:
    answer = client.get(f"/registries/{rid}/garbageCollection/runs", params={"limit": limit})
    answer.raise_for_status()
    return list(answer.json()["items"])


@dataclass(frozen=True)
class Dropped:
    """A registry holding ``keep`` and, deleted, ``drop``: images of one shared layer and their own."""

    registry_id: str
    name: str
    drop_layer_bytes: int
    storage_before: int


def _keep_and_drop(seeded: Seeded, clients: ClientEnv, tmp_path: Path) -> Dropped:
    with seeded.api() as client:
        rid, name = _new_registry(client, "gc")
    rng = random.Random(name)
    layers: dict[str, Path] = {}
    for part, size in (("base", 60_000), ("keep", 20_000), ("drop", 40_000)):
        layers[part] = tmp_path / f"{part}.tar.gz"
        layers[part].write_bytes(tar_layer(rng, [size]))
    host = seeded.server.host
    clients.run("crane", "auth", "login", host, "-u", seeded.owner.email, "-p", seeded.owner.password)
    for repo in ("keep", "drop"):
        layer = ["-f", str(layers["base"]), "-f", str(layers[repo])]
        clients.run("crane", "--insecure", "append", *layer, "-t", f"{host}/{name}/{repo}:v1")
    with seeded.api() as client:
        assert client.delete(f"/registries/{rid}/repositories/drop").status_code == 204
        before = _storage(client, rid)
    return Dropped(rid, name, layers["drop"].stat().st_size, before)


def _follow(page: Page) -> str:
    """Reload the run's page (as its Reload link does) until the run has finished; its state."""
    state = page.get_by_role("region", name="Run").locator(".run-state")
    deadline = time.monotonic() + 60
    while state.inner_text().lower() not in FINISHED and time.monotonic() < deadline:
        page.wait_for_timeout(300)
        page.get_by_role("link", name="Reload").click()
    return state.inner_text()


def _tab(page: Page) -> Locator:
    return page.get_by_role("navigation", name="Registry").get_by_role("link", name="Garbage collection")


def _run_id(page: Page) -> str:
    return page.url.split("?", 1)[0].rsplit("/", 1)[-1]


def _cells(page: Page, run_id: str) -> Locator:
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=f"Run {run_id}", exact=True))
    return row.get_by_role("cell")


def test_a_run_from_the_form_frees_the_deleted_repository_s_own_layers(
    page: Page, seeded: Seeded, clients: ClientEnv, tmp_path: Path
) -> None:
    dropped = _keep_and_drop(seeded, clients, tmp_path)
    sign_in(page, seeded.url, seeded.owner)
    page.goto(f"/console/registries/{dropped.registry_id}")
    _tab(page).click()
    expect(page.get_by_role("heading", name="No runs yet")).to_be_visible()
    assert_every_input_labelled(page)
    page.get_by_role("button", name="Run now").click()
    expect(page.get_by_role("status")).to_contain_text("The run is queued")
    assert _follow(page) == "Succeeded"
    run_id = _run_id(page)
    with seeded.api() as client:
        run = client.get(f"/registries/{dropped.registry_id}/garbageCollection/runs/{run_id}").json()
        after = _storage(client, dropped.registry_id)
    freed = run["properties"]
    # the deleted image's own layer and its config; the shared base layer stays
    assert freed["blobsFreed"] == 2 and freed["bytesFreed"] >= dropped.drop_layer_bytes
    assert dropped.storage_before - after == freed["bytesFreed"]
    what = page.get_by_role("region", name="What it freed")
    expect(what.locator("dd").first).to_have_text("2")
    expect(what).to_contain_text(f"({freed['bytesFreed']:,} bytes)")
    facts = page.get_by_role("region", name=f"Run {run_id}")
    for shown in ("On request", seeded.owner.email, "Collection: deletes", "0 s", "Took"):
        expect(facts).to_contain_text(shown)
    screenshot(page, "gc-run")
    clients.run("crane", "--insecure", "validate", "--remote", f"{seeded.server.host}/{dropped.name}/keep:v1")

    _tab(page).click()
    cells = _cells(page, run_id)
    expect(cells.nth(0)).to_have_text("Succeeded")
    expect(cells.nth(1)).to_have_text(f"On request by {seeded.owner.email}")
    expect(cells.nth(3)).to_contain_text("UTC")  # finished
    expect(cells.nth(5)).to_have_text("2")  # blobs freed
    expect(cells.nth(6)).not_to_have_text("0 bytes")
    expect(page.get_by_role("columnheader", name="Error")).to_have_count(0)  # no run failed
    screenshot(page, "gc-runs")


def test_a_dry_run_reports_what_a_run_would_free_and_deletes_nothing(
    page: Page, seeded: Seeded, clients: ClientEnv, tmp_path: Path
) -> None:
    dropped = _keep_and_drop(seeded, clients, tmp_path)
    sign_in(page, seeded.url, seeded.owner)
    page.goto(f"/console/registries/{dropped.registry_id}/{GC}")
    dry = page.get_by_label("Dry run")
    dry.focus()  # from the keyboard: tick, then on to the button
    page.keyboard.press("Space")
    expect(dry).to_be_checked()
    page.keyboard.press("Tab")
    expect(page.get_by_role("button", name="Run now")).to_be_focused()
    page.keyboard.press("Enter")
    expect(page.get_by_role("status")).to_contain_text("The run is queued")
    assert _follow(page) == "Succeeded"
    what = page.get_by_role("region", name="What it would free")
    expect(what.locator("dd").first).to_have_text("2")
    expect(page.get_by_role("region", name="Run").locator(".dry")).to_have_text("Dry run")
    screenshot(page, "gc-dry-run")
    with seeded.api() as client:
        (run,) = _runs(client, dropped.registry_id)
        assert run["properties"]["dryRun"] is True and run["properties"]["blobsFreed"] == 2
        assert _storage(client, dropped.registry_id) == dropped.storage_before  # nothing deleted
    _tab(page).click()
    expect(_cells(page, run["id"]).nth(0)).to_have_text("Succeeded Dry run")


def test_bad_input_is_answered_in_plain_words_and_queues_nothing(page: Page, seeded: Seeded) -> None:
    with seeded.api() as client:
        rid, _ = _new_registry(client, "gcbad")
    base = f"/console/registries/{rid}/{GC}"
    sign_in(page, seeded.url, seeded.owner)
    for path, status, said in (
        (f"{base}/abc", 400, "Run 'abc' is not a run number."),
        (f"{base}/99999999999999999999", 400, "is not a run number"),
        (f"{base}/987654321", 404, "Garbage collection run 987654321 not found."),
        (f"{base}?before=last", 400, "Before 'last' is not a run number."),
        (f"{base}?limit=7", 400, "Per page must be one of 10, 25, 50, 100, got '7'."),
    ):
        answer = page.goto(path)
        assert answer is not None and answer.status == status, path
        expect(page.get_by_role("alert")).to_contain_text(said)

    page.goto(base)
    box = page.get_by_label("Dry run")
    box.evaluate("box => { box.value = 'yes'; }")  # what a tampered form would send
    box.check()
    with page.expect_response(lambda r: r.request.method == "POST") as posted:
        page.get_by_role("button", name="Run now").click()
    assert posted.value.status == 400
    expect(page.locator(".error-summary")).to_contain_text(
        "The dry-run box is ticked or not, it cannot be 'yes'"
    )
    expect(page.get_by_label("Dry run")).to_have_attribute("aria-invalid", "true")
    screenshot(page, "gc-bad-input")
    answer = page.request.post(base, form={"dry_run": "on"}, max_redirects=0)  # no form token
    assert answer.status == 403 and "nothing was changed" in answer.text()
    with seeded.api() as client:
        assert _runs(client, rid) == []


def test_another_contract_s_registry_and_runs_are_not_found(page: Page, seeded: Seeded) -> None:
    stranger = new_contract(seeded.server, "gcstranger")
    with api(seeded.server, stranger) as client:
        theirs, _ = _new_registry(client, "theirs")
        ran = client.post(
            f"/registries/{theirs}/garbageCollection/runs", json={"properties": {"dryRun": True}}
        )
        assert ran.status_code == 202, ran.text
    sign_in(page, seeded.url, seeded.owner)
    for path in (
        f"/console/registries/{theirs}/{GC}",
        f"/console/registries/{theirs}/{GC}/{ran.json()['id']}",
    ):
        answer = page.goto(path)
        assert answer is not None and answer.status == 404, path
    page.goto(f"/console/registries/{seeded.registry_id}/{GC}")
    answer = page.request.post(
        f"/console/registries/{theirs}/{GC}", form={"csrf": csrf(page)}, max_redirects=0
    )
    assert answer.status == 404
    # another registry's run is not this registry's either
    answer = page.goto(f"/console/registries/{seeded.registry_id}/{GC}/{ran.json()['id']}")
    assert answer is not None and answer.status == 404
    with api(seeded.server, stranger) as client:
        assert len(_runs(client, theirs)) == 1


@pytest.fixture(scope="module")
def with_runs(seeded: Seeded) -> Iterator[str]:
    """A registry (nothing pushed) with 12 finished runs, dry and not, requested through the API."""
    with seeded.api() as client:
        rid, _ = _new_registry(client, "gcmany")
        for _ in range(6):
            for dry in (True, False):
                answer = client.post(
                    f"/registries/{rid}/garbageCollection/runs", json={"properties": {"dryRun": dry}}
                )
                assert answer.status_code == 202, answer.text
            deadline = time.monotonic() + 60
            while any(r["properties"]["state"] not in FINISHED for r in _runs(client, rid, 2)):
                assert time.monotonic() < deadline, _runs(client, rid, 2)
                time.sleep(0.2)
        assert len(_runs(client, rid)) == 12
    yield rid


def test_older_runs_are_a_page_away(page: Page, seeded: Seeded, with_runs: str) -> None:
    with seeded.api() as client:
        ids = [r["id"] for r in _runs(client, with_runs)]
    sign_in(page, seeded.url, seeded.owner)
    page.goto(f"/console/registries/{with_runs}/{GC}")
    page.get_by_label("Per page").select_option("10")
    page.get_by_role("button", name="Show").click()
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(10)
    expect(rows.first.get_by_role("link")).to_have_text(f"Run {ids[0]}")  # the newest first
    expect(page.get_by_role("link", name="Newest runs")).to_have_count(0)
    page.get_by_role("link", name="Older runs").click()
    expect(rows).to_have_count(2)
    expect(rows.first.get_by_role("link")).to_have_text(f"Run {ids[10]}")
    expect(page.get_by_role("link", name="Older runs")).to_have_count(0)
    page.get_by_role("link", name="Newest runs").click()
    expect(rows).to_have_count(10)
    answer = page.goto(f"/console/registries/{with_runs}/{GC}?before={ids[-1]}")
    assert answer is not None and answer.status == 200
    expect(page.get_by_text(f"No runs older than run {ids[-1]}.")).to_be_visible()


def test_a_read_only_user_sees_the_runs_but_cannot_start_one(
    page: Page, seeded: Seeded, with_runs: str
) -> None:
    sign_in(page, seeded.url, seeded.reader)
    page.goto(f"/console/registries/{with_runs}/{GC}")
    expect(page.locator("tbody tr")).to_have_count(12)
    expect(page.get_by_role("button", name="Run now")).to_have_count(0)
    expect(page.get_by_label("Dry run")).to_have_count(0)
    expect(page.get_by_text("Your role is read-only")).to_be_visible()
    screenshot(page, "read-only-gc-runs")
    answer = page.request.post(
        f"/console/registries/{with_runs}/{GC}", form={"csrf": csrf(page), "dry_run": "on"}, max_redirects=0
    )
    assert answer.status == 403 and MANAGERS_ONLY in answer.text().lower()
    page.locator("tbody tr").first.get_by_role("link").click()
    expect(page.get_by_role("region", name="Run").locator(".run-state")).to_have_text("Succeeded")
    with seeded.api() as client:
        assert len(_runs(client, with_runs)) == 12  # nothing queued


def test_the_runs_fit_a_phone_screen(browser: Browser, seeded: Seeded, with_runs: str) -> None:
    phone = phone_page(browser, seeded.url)
    sign_in(phone, seeded.url, seeded.owner)
    phone.goto(f"/console/registries/{with_runs}/{GC}")
    assert fits_phone(phone)  # the table scrolls inside its own box, the page does not
    screenshot(phone, "phone-gc-runs")
    phone.locator("tbody tr").first.get_by_role("link").click()
    expect(phone.get_by_role("region", name="What it freed")).to_be_visible()
    assert fits_phone(phone)
    phone.context.close()
