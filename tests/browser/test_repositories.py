"""Repositories and artifacts in the console, as crane pushed them: the list with its VULNERABILITIES
column, per-page choice and paging, a repository's artifacts, one artifact, and deleting a repository."""

from __future__ import annotations

import re

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import REGISTRY, Seeded
from tests.support.browser import screenshot, sign_in
from tests.support.clients import ClientEnv
from tests.support.mgmt import unique

pytestmark = pytest.mark.slow


def test_the_registry_page_lists_its_repositories(page: Page, seeded: Seeded) -> None:
    sign_in(page, seeded.url, seeded.owner)
    page.get_by_role("link", name=REGISTRY).click()
    headers = page.get_by_role("columnheader")
    expect(headers).to_contain_text(["Repository", "Vulnerabilities", "Artifacts", "Last push", "Last pull"])
    web = page.get_by_role("row").filter(has=page.get_by_role("link", name="team/web", exact=True))
    # the highest severity of its last push: random bytes hold no package, so none once scanned
    expect(web.get_by_role("cell").first).to_have_text(re.compile("^(Not scanned|No vulnerabilities)$"))
    expect(web.get_by_role("cell").nth(1)).to_have_text("2")  # two artifacts: 1.0, and 1.1 = latest
    expect(web.get_by_role("cell").nth(4)).to_have_text(re.compile(r"^[1-9][0-9]*$"))  # pulled by crane
    for name in seeded.repositories:
        expect(page.get_by_role("link", name=name, exact=True)).to_be_visible()
    screenshot(page, "repositories")


def test_per_page_choice_and_paging(page: Page, seeded: Seeded, clients: ClientEnv) -> None:
    name = unique("many")
    with seeded.api() as client:
        client.post(
            "/registries", json={"properties": {"name": name, "location": "de/fra"}}
        ).raise_for_status()
        rid = client.get("/registries", params={"filter.name": name}).json()["items"][0]["id"]
    host = seeded.server.host
    clients.run("crane", "auth", "login", host, "-u", seeded.owner.email, "-p", seeded.owner.password)
    for i in range(12):
        clients.run(
            "crane",
            "--insecure",
            "copy",
            f"{host}/{REGISTRY}/tools/busybox:stable",
            f"{host}/{name}/r{i:02}:1",
        )
    sign_in(page, seeded.url, seeded.owner)
    page.goto(f"/console/registries/{rid}")
    page.get_by_label("Sort by").select_option("name")
    page.get_by_label("Per page").select_option("10")
    page.get_by_role("button", name="Show").click()
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(10)
    expect(rows.first).to_contain_text("r00")
    expect(page.locator(".pager-range")).to_have_text("1\u201310")
    expect(page.get_by_role("link", name="Previous page")).to_have_count(0)
    page.get_by_role("link", name="Next page").click()
    expect(rows).to_have_count(2)
    expect(rows.first).to_contain_text("r10")
    expect(page.locator(".pager-range")).to_have_text("11\u201312")
    expect(page.get_by_role("link", name="Next page")).to_have_count(0)
    page.get_by_role("link", name="Previous page").click()
    expect(rows).to_have_count(10)
    answer = page.goto(f"/console/registries/{rid}?limit=7")
    assert answer is not None and answer.status == 400
    expect(page.get_by_role("alert")).to_have_text("Per page must be one of 10, 25, 50, 100, got '7'.")


def test_a_repository_lists_its_artifacts_with_tags_and_times(page: Page, seeded: Seeded) -> None:
    sign_in(page, seeded.url, seeded.owner)
    page.goto(f"/console/registries/{seeded.registry_id}")
    page.get_by_role("link", name="team/web", exact=True).click()
    expect(page.get_by_role("heading", name="team/web")).to_be_visible()
    expect(page.get_by_role("columnheader")).to_contain_text(
        ["Artifact", "Tags", "Vulnerabilities", "Last push", "Last pull", "Last scan"]
    )
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(2)
    latest = rows.filter(has_text="latest")
    expect(latest).to_contain_text("1.1")
    expect(latest.get_by_role("cell").nth(3)).to_contain_text("UTC")  # pulled by crane
    screenshot(page, "repository")
    latest.get_by_role("link").click()
    expect(page.get_by_role("heading", name="Artifact")).to_be_visible()
    props = page.locator("dl.props")
    expect(props).to_contain_text("sha256:")
    expect(props).to_contain_text("application/vnd.docker.distribution.manifest.v2+json")
    expect(props).to_contain_text(f"{seeded.server.host}/{REGISTRY}/team/web@sha256:")
    screenshot(page, "artifact")


def test_an_unknown_repository_or_artifact_is_not_found(page: Page, seeded: Seeded) -> None:
    sign_in(page, seeded.url, seeded.owner)
    answer = page.goto(f"/console/registries/{seeded.registry_id}/repositories/team/nothing")
    assert answer is not None and answer.status == 404
    expect(page.get_by_role("alert")).to_contain_text("Repository 'team/nothing' not found")
    digest = "sha256:" + "0" * 64
    answer = page.goto(f"/console/registries/{seeded.registry_id}/repositories/team/web/-/artifacts/{digest}")
    assert answer is not None and answer.status == 404
    answer = page.goto(
        f"/console/registries/{seeded.registry_id}/repositories/team/web/-/artifacts/sha256:xyz"
    )
    assert answer is not None and answer.status == 400
    expect(page.get_by_role("alert")).to_contain_text("is not a digest")


def test_deleting_a_repository(page: Page, seeded: Seeded, clients: ClientEnv) -> None:
    host = seeded.server.host
    doomed = f"scratch/{unique('r')}"
    clients.run("crane", "auth", "login", host, "-u", seeded.owner.email, "-p", seeded.owner.password)
    clients.run(
        "crane", "--insecure", "copy", f"{host}/{REGISTRY}/team/api:2.3.0", f"{host}/{REGISTRY}/{doomed}:1"
    )
    sign_in(page, seeded.url, seeded.owner)
    page.goto(f"/console/registries/{seeded.registry_id}?q={doomed}")
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=doomed, exact=True))
    row.locator("summary").click()
    expect(row).to_contain_text(f"Delete {doomed} with its 1 artifact? This cannot be undone.")
    screenshot(page, "repository-delete")
    row.get_by_role("button", name="Delete repository").click()
    expect(page.get_by_role("status")).to_contain_text("The repository was deleted.")
    expect(page.get_by_role("link", name=doomed, exact=True)).to_have_count(0)
    with seeded.api() as client:
        assert (
            client.get(
                f"/registries/{seeded.registry_id}/repositories/{doomed.replace('/', '%2F')}"
            ).status_code
            == 404
        )
