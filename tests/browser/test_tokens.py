"""Registry tokens in the console: adding one (the password once, with docker and podman login lines
that work with a real client), bad input next to each field, editing status, expiry and scopes, deleting."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import REGISTRY, Seeded, crane_push
from tests.support.browser import screenshot, sign_in
from tests.support.clients import ClientEnv
from tests.support.mgmt import unique

pytestmark = pytest.mark.slow


def _tokens(seeded: Seeded) -> list[dict[str, Any]]:
    with seeded.api() as client:
        items: list[dict[str, Any]] = client.get(f"/registries/{seeded.registry_id}/tokens").json()["items"]
    return items


def _token(seeded: Seeded, name: str) -> dict[str, Any] | None:
    return next((t for t in _tokens(seeded) if t["properties"]["name"] == name), None)


def _new_token_form(page: Page, seeded: Seeded) -> None:
    sign_in(page, seeded.url, seeded.owner)
    page.goto(f"/console/registries/{seeded.registry_id}/tokens")
    page.get_by_role("link", name="Add token").click()


def _scope(page: Page, row: int, kind: str, path: str, actions: list[str]) -> None:
    page.locator(f"#scopes-{row}-type").select_option(kind)
    page.locator(f"#scopes-{row}-name").fill(path)
    for action in actions:
        page.locator(f"input[name='scopes[{row}].actions'][value='{action}']").check()


def test_a_new_token_shows_its_password_once_with_login_lines_that_work(
    page: Page, seeded: Seeded, clients: ClientEnv
) -> None:
    _new_token_form(page, seeded)
    name = unique("ci")
    page.get_by_label("Name", exact=True).fill(name)
    _scope(page, 0, "repository", "team/*", ["pull", "push"])
    page.get_by_role("button", name="Add a scope").click()  # a second row, without JavaScript
    _scope(page, 1, "registry", "*", ["pull"])
    screenshot(page, "token-new")
    with page.expect_response(f"**/{seeded.registry_id}/tokens") as answer:
        page.get_by_role("button", name="Add token").click()
    assert answer.value.status == 201
    expect(page.get_by_role("heading", name=f"Token {name} was created")).to_be_focused()
    password = page.get_by_label("Password").input_value()
    assert len(password) >= 24
    host = seeded.server.host
    docker = page.get_by_label("docker", exact=True).input_value()
    podman = page.get_by_label("podman", exact=True).input_value()
    assert docker == f"echo '{password}' | docker login {host} --username {name} --password-stdin"
    assert podman == (
        f"echo '{password}' | podman login --tls-verify=false {host} --username {name} --password-stdin"
    )
    page.get_by_role("button", name="Copy the password").click()
    expect(page.locator(".copy-status")).not_to_be_empty()
    screenshot(page, "token-created")

    # The password logs a real client in, within the token's scopes.
    clients.run("crane", "auth", "login", host, "-u", name, "-p", password)
    crane_push(clients, seeded.server, f"{REGISTRY}/team/from-ci:1", random.Random(3))
    denied = clients.run(
        "crane",
        "--insecure",
        "copy",
        f"{host}/{REGISTRY}/team/from-ci:1",
        f"{host}/{REGISTRY}/other/x:1",
        check=False,
    )
    assert denied.returncode != 0

    # Shown once: the list and the token's own page never show it again.
    page.get_by_role("link", name="Done").click()
    expect(page.locator("main")).to_contain_text(name)
    assert password not in page.content()
    page.get_by_role("link", name=name, exact=True).click()
    assert password not in page.content()
    stored = _token(seeded, name)
    assert stored is not None
    assert stored["properties"]["scopes"] == [
        {"name": "team/*", "type": "repository", "actions": ["pull", "push"]},
        {"name": "*", "type": "registry", "actions": ["pull"]},
    ]
    assert stored["properties"]["expiryDate"] is None and stored["properties"]["status"] == "enabled"


def _in_the_past() -> str:
    return (datetime.now(UTC) - timedelta(days=1)).strftime("%Y-%m-%dT%H:%M")


@pytest.mark.parametrize(
    ("case", "field", "message", "status"),
    [
        ("bad-name", "name", "'9lives' is invalid: 2-63 characters", 400),
        ("taken", "name", "is already used by another token of this registry", 409),
        ("push-without-pull", "scopes-0-actions", "Lists push, and push needs pull as well", 400),
        ("no-action", "scopes-0-actions", "Must name at least one of pull, push, delete", 400),
        ("bad-path", "scopes-0-name", "may contain only a-z, 0-9", 400),
        ("past", "expiry", "must be at least one hour in the future", 400),
        ("no-date", "expiry", "Choose a date and time (UTC), or No expiry", 400),
    ],
)
def test_bad_input_when_adding_is_shown_next_to_the_field(
    page: Page, seeded: Seeded, case: str, field: str, message: str, status: int
) -> None:
    taken = unique("taken")
    if case == "taken":
        with seeded.api() as client:
            made = client.post(
                f"/registries/{seeded.registry_id}/tokens",
                json={"properties": {"name": taken, "scopes": []}},
            )
            made.raise_for_status()
    before = len(_tokens(seeded))
    _new_token_form(page, seeded)
    name = {"bad-name": "9lives", "taken": taken}.get(case, unique("tok"))
    page.get_by_label("Name", exact=True).fill(name)
    actions = {"push-without-pull": ["push"], "no-action": []}.get(case, ["pull"])
    _scope(page, 0, "repository", "Team/App" if case == "bad-path" else "team/*", actions)
    if case in ("past", "no-date"):
        page.get_by_label("Expires on").check()
        if case == "past":
            page.get_by_label("Date and time (UTC)").fill(_in_the_past())
    with page.expect_response(f"**/{seeded.registry_id}/tokens") as answer:
        page.get_by_role("button", name="Add token").click()
    assert answer.value.status == status
    expect(page.locator(f"#{field}-error")).to_contain_text(message)
    expect(page.get_by_role("alert")).to_be_visible()
    expect(page.locator("#scopes-0-name")).to_have_value("Team/App" if case == "bad-path" else "team/*")
    assert len(_tokens(seeded)) == before


def test_editing_status_expiry_and_scopes(page: Page, seeded: Seeded, clients: ClientEnv) -> None:
    name = unique("edit")
    with seeded.api() as client:
        made = client.post(
            f"/registries/{seeded.registry_id}/tokens",
            json={
                "properties": {
                    "name": name,
                    "scopes": [{"name": "team/*", "type": "repository", "actions": ["pull"]}],
                }
            },
        )
        made.raise_for_status()
        password = made.json()["properties"]["credentials"]["password"]
    clients.run("crane", "auth", "login", seeded.server.host, "-u", name, "-p", password)
    clients.run("crane", "--insecure", "ls", f"{seeded.server.host}/{REGISTRY}/team/web")

    sign_in(page, seeded.url, seeded.owner)
    page.goto(f"/console/registries/{seeded.registry_id}/tokens")
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=name, exact=True))
    row.get_by_role("link", name=f"Edit {name}").click()
    expect(page.get_by_role("heading", name=f"Edit token {name}")).to_be_visible()
    page.get_by_label("Enabled").uncheck()
    page.get_by_label("Expires on").check()
    expiry = (datetime.now(UTC) + timedelta(days=30)).replace(second=0, microsecond=0)
    page.get_by_label("Date and time (UTC)").fill(expiry.strftime("%Y-%m-%dT%H:%M"))
    page.locator("input[name='scopes[0].actions'][value='push']").check()
    page.get_by_role("button", name="Add a scope").click()
    _scope(page, 1, "repository", "tools/*", ["pull", "delete"])
    screenshot(page, "token-edit")
    page.get_by_role("button", name="Save token").click()
    expect(page.get_by_role("status")).to_have_text("The token was saved.")
    expect(row).to_contain_text("Disabled")
    screenshot(page, "tokens")

    stored = _token(seeded, name)
    assert stored is not None
    assert stored["properties"]["status"] == "disabled"
    assert stored["properties"]["expiryDate"] == expiry.strftime("%Y-%m-%dT%H:%M:%SZ")
    assert stored["properties"]["scopes"] == [
        {"name": "team/*", "type": "repository", "actions": ["pull", "push"]},
        {"name": "tools/*", "type": "repository", "actions": ["pull", "delete"]},
    ]
    refused = clients.run(
        "crane", "--insecure", "ls", f"{seeded.server.host}/{REGISTRY}/team/web", check=False
    )
    assert refused.returncode != 0  # a disabled token logs in no more

    # Saving again without touching the expiry keeps it; bad scopes change nothing.
    row.get_by_role("link", name=f"Edit {name}").click()
    page.locator("input[name='scopes[1].actions'][value='pull']").uncheck()
    page.locator("input[name='scopes[1].actions'][value='delete']").uncheck()
    page.locator("input[name='scopes[1].actions'][value='push']").check()
    with page.expect_response(f"**/tokens/{stored['id']}") as answer:
        page.get_by_role("button", name="Save token").click()
    assert answer.value.status == 400
    expect(page.locator("#scopes-1-actions-error")).to_contain_text("push needs pull as well")
    assert _token(seeded, name) == stored


def test_deleting_a_token(page: Page, seeded: Seeded) -> None:
    name = unique("gone")
    with seeded.api() as client:
        client.post(
            f"/registries/{seeded.registry_id}/tokens", json={"properties": {"name": name, "scopes": []}}
        ).raise_for_status()
    sign_in(page, seeded.url, seeded.owner)
    page.goto(f"/console/registries/{seeded.registry_id}/tokens")
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=name, exact=True))
    row.locator("summary").click()
    expect(row).to_contain_text("Clients using it can no longer log in.")
    row.get_by_role("button", name="Delete token").click()
    expect(page.get_by_role("status")).to_have_text("The token was deleted; it no longer logs in.")
    expect(page.get_by_role("link", name=name, exact=True)).to_have_count(0)
    assert _token(seeded, name) is None
