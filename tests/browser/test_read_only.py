"""A read-only user (role ``user`` without manageRegistry) sees no create, change or delete control,
and the server refuses such forms anyway (403, nothing changed), as the management API does."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import REGISTRY, Seeded
from tests.support.browser import csrf, screenshot, sign_in
from tests.support.mgmt import unique

pytestmark = pytest.mark.slow

MANAGERS_ONLY = "only contract owners, admins and users with the manageregistry permission"


def test_a_read_only_user_sees_no_create_or_delete(page: Page, seeded: Seeded) -> None:
    sign_in(page, seeded.url, seeded.reader)
    expect(page.locator(".role")).to_have_text("read-only")
    expect(page.get_by_role("link", name=REGISTRY)).to_be_visible()
    expect(page.get_by_role("link", name="Add a registry")).to_have_count(0)
    page.get_by_role("link", name=REGISTRY).click()
    expect(page.get_by_role("link", name="team/web", exact=True)).to_be_visible()
    expect(page.get_by_text("Delete", exact=True)).to_have_count(0)
    screenshot(page, "read-only-repositories")
    page.get_by_role("link", name="Tokens").click()
    expect(page.get_by_role("link", name="Add token")).to_have_count(0)
    expect(page.locator("details.confirm")).to_have_count(0)
    page.get_by_role("link", name="Properties").click()
    expect(page.locator("dl.props")).to_contain_text("Saturday at 03:00:00Z UTC")
    expect(page.locator("main form")).to_have_count(0)
    expect(page.get_by_text("Your role is read-only")).to_be_visible()
    screenshot(page, "read-only-properties")


def test_the_server_refuses_a_read_only_user_s_changes(page: Page, seeded: Seeded) -> None:
    with seeded.api() as client:
        token = client.post(
            f"/registries/{seeded.registry_id}/tokens",
            json={"properties": {"name": unique("keep"), "scopes": []}},
        ).json()
        before = client.get(f"/registries/{seeded.registry_id}").json()
    sign_in(page, seeded.url, seeded.reader)
    page.goto(f"/console/registries/{seeded.registry_id}/settings")
    token_field = csrf(page)
    rid = seeded.registry_id
    name = unique("sneaky")
    attempts = {
        "/console/registries": {"name": name, "location": "de/fra"},
        f"/console/registries/{rid}/schedule": {"remove": "1"},
        f"/console/registries/{rid}/allowlist": {"allowlist": "10.0.0.1"},
        f"/console/registries/{rid}/delete": {"confirm_name": REGISTRY},
        f"/console/registries/{rid}/tokens": {"name": unique("t"), "expiry_mode": "never", "rows": "0"},
        f"/console/registries/{rid}/tokens/{token['id']}": {"expiry_mode": "never", "rows": "0"},
        f"/console/registries/{rid}/tokens/{token['id']}/delete": {},
        f"/console/registries/{rid}/repositories/team/web/-/delete": {},
    }
    for path, form in attempts.items():
        answer = page.request.post(path, form={**form, "csrf": token_field}, max_redirects=0)
        assert answer.status == 403, path
        assert MANAGERS_ONLY in answer.text().lower(), path
    with seeded.api() as client:
        assert client.get(f"/registries/{rid}").json() == before
        assert client.get(f"/registries/{rid}/tokens/{token['id']}").status_code == 200
        assert client.get(f"/registries/{rid}/repositories/team%2Fweb").status_code == 200
        assert client.head(f"/names/{name}").status_code == 404
