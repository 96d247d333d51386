"""Registries in the console: the list, adding one with the live name check and the GC schedule picker,
properties (schedule, allowlist, enabling scanning) and deleting one by typing its name."""

from __future__ import annotations

import pytest
from playwright.sync_api import Page, expect

from tests.browser.conftest import REGISTRY, Seeded
from tests.support.browser import screenshot, sign_in
from tests.support.mgmt import add_user, new_contract, unique

pytestmark = pytest.mark.slow


def _registry(seeded: Seeded, name: str) -> dict[str, object] | None:
    with seeded.api() as client:
        items = client.get("/registries", params={"filter.name": name}).json()["items"]
    found = [item for item in items if item["properties"]["name"] == name]
    return found[0] if found else None


def _make(seeded: Seeded, name: str, scanning: bool = True) -> str:
    with seeded.api() as client:
        body = {
            "name": name,
            "location": "de/fra",
            "features": {"vulnerabilityScanning": {"enabled": scanning}},
        }
        made = client.post("/registries", json={"properties": body})
        made.raise_for_status()
        return str(made.json()["id"])


def test_the_list_shows_name_location_hostname_state_scanning_and_storage(page: Page, seeded: Seeded) -> None:
    sign_in(page, seeded.url, seeded.owner)
    row = page.get_by_role("row").filter(has=page.get_by_role("link", name=REGISTRY))
    expect(row).to_contain_text("de/fra")
    expect(row).to_contain_text(f"{seeded.server.host}/{REGISTRY}")
    expect(row).to_contain_text("Running")
    expect(row).to_contain_text("On")
    expect(row).to_contain_text("KiB")  # the pushed manifests count towards storage
    screenshot(page, "registries")


def test_a_contract_without_registries_says_how_to_start(page: Page, seeded: Seeded) -> None:
    login = new_contract(seeded.server, "empty")
    sign_in(page, seeded.url, login)
    expect(page.get_by_role("heading", name="No registries yet")).to_be_visible()
    expect(page.get_by_role("link", name="Add your first registry")).to_be_visible()
    screenshot(page, "registries-empty")


def test_the_name_is_checked_live_against_the_rule(page: Page, seeded: Seeded) -> None:
    sign_in(page, seeded.url, seeded.owner)
    page.get_by_role("link", name="Add a registry").click()
    name = page.get_by_label("Name", exact=True)
    status = page.locator("#name-status")
    name.fill("Bad_Name")
    expect(status).to_contain_text("'Bad_Name' is invalid: 3-63 characters of a-z, 0-9 and '-'")
    name.fill(REGISTRY)
    expect(status).to_have_text(
        f"{REGISTRY} is already in use; registry names are unique across all contracts."
    )
    fresh = unique("live")
    name.fill(fresh)
    expect(status).to_have_text(f"{fresh} is available.")
    expect(status).to_have_class("name-status available")


def test_adding_a_registry_with_a_schedule(page: Page, seeded: Seeded) -> None:
    sign_in(page, seeded.url, seeded.owner)
    page.get_by_role("link", name="Add a registry").click()
    name = unique("shop")
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Location").select_option("de/txl")
    page.get_by_label("Monday").check()
    page.get_by_label("Thursday").check()
    page.get_by_label("Time (UTC)").fill("02:30:00")
    expect(page.locator("#name-status")).to_have_text(f"{name} is available.")
    screenshot(page, "registry-new")
    page.get_by_role("button", name="Add registry").click()
    expect(page.get_by_role("status")).to_contain_text("The registry was created.")
    expect(page.get_by_role("heading", name="No repositories yet")).to_be_visible()
    screenshot(page, "registry-empty")
    stored = _registry(seeded, name)
    assert stored is not None
    properties = stored["properties"]
    assert isinstance(properties, dict)
    assert properties["location"] == "de/txl"
    assert properties["garbageCollectionSchedule"] == {"days": ["Monday", "Thursday"], "time": "02:30:00"}
    assert properties["features"] == {"vulnerabilityScanning": {"enabled": True}}


@pytest.mark.parametrize(
    ("fill", "field", "message", "status"),
    [
        ({"name": "x"}, "name", "'x' is invalid: 3-63 characters", 400),
        (
            {"name": REGISTRY},
            "name",
            f"'{REGISTRY}' is already in use; registry names are globally unique",
            409,
        ),
        ({"location": ""}, "location", "Is required: one of de/fra", 400),
        ({"days": ["Friday"]}, "time", "'' is not a UTC time of day HH:MM:SS", 400),
    ],
)
def test_bad_input_when_adding_is_shown_next_to_the_field(
    page: Page, seeded: Seeded, fill: dict[str, object], field: str, message: str, status: int
) -> None:
    sign_in(page, seeded.url, seeded.owner)
    page.goto("/console/registries/new")
    name = str(fill.get("name", unique("bad")))
    page.get_by_label("Name", exact=True).fill(name)
    page.get_by_label("Location").select_option(str(fill.get("location", "de/fra")))
    for day in fill.get("days", []):  # type: ignore[attr-defined]
        page.get_by_label(day).check()
    with page.expect_response("**/console/registries") as answer:
        page.get_by_role("button", name="Add registry").click()
    assert answer.value.status == status
    expect(page.locator(f"#{field}-error")).to_contain_text(message)
    expect(page.locator(f"#{field}")).to_have_attribute("aria-invalid", "true")
    expect(page.get_by_role("alert")).to_contain_text("Please correct what is marked below")
    expect(page.get_by_label("Name", exact=True)).to_have_value(name)  # what was typed stays
    if name != REGISTRY:
        assert _registry(seeded, name) is None


def test_properties_change_the_schedule_and_the_allowlist(page: Page, seeded: Seeded) -> None:
    name = unique("props")
    rid = _make(seeded, name)
    sign_in(page, seeded.url, seeded.owner)
    page.goto(f"/console/registries/{rid}/settings")
    expect(page.get_by_role("definition").filter(has_text="Not scheduled")).to_be_visible()
    schedule = page.locator("form[action$='/schedule']")
    schedule.get_by_label("Wednesday").check()
    schedule.get_by_label("Sunday").check()
    schedule.get_by_label("Time (UTC)").fill("23:15:00")
    schedule.get_by_role("button", name="Update schedule").click()
    expect(page.get_by_role("status")).to_have_text("The garbage collection schedule was saved.")
    expect(page.locator("dl.props")).to_contain_text("Wednesday, Sunday at 23:15:00 UTC")

    allowlist = page.get_by_label("Addresses and networks that may use the registry API")
    allowlist.fill("10.0.0.0/8\n300.1.2.3\n")
    with page.expect_response(f"**/{rid}/allowlist") as answer:
        page.get_by_role("button", name="Save allowlist").click()
    assert answer.value.status == 400
    expect(page.locator("#allowlist-error")).to_have_text(
        "Error: Entry 2: '300.1.2.3' is not an IPv4/IPv6 address or CIDR network"
    )
    expect(allowlist).to_have_value("10.0.0.0/8\n300.1.2.3\n")
    stored = _registry(seeded, name)
    assert stored is not None and stored["properties"]["apiSubnetAllowList"] == []  # type: ignore[index]
    allowlist.fill("10.0.0.0/8\n2001:db8::/32\n127.0.0.1")
    page.get_by_role("button", name="Save allowlist").click()
    expect(page.get_by_role("status")).to_have_text("The IP allowlist was saved.")
    expect(page.locator("dl.props")).to_contain_text("10.0.0.0/8, 2001:db8::/32, 127.0.0.1")
    screenshot(page, "registry-properties")

    page.get_by_role("button", name="Turn garbage collection off").click()
    expect(page.locator("dl.props")).to_contain_text("Not scheduled (garbage collection is off)")
    stored = _registry(seeded, name)
    assert stored is not None
    assert stored["properties"]["garbageCollectionSchedule"] is None  # type: ignore[index]
    assert stored["properties"]["apiSubnetAllowList"] == ["10.0.0.0/8", "2001:db8::/32", "127.0.0.1"]  # type: ignore[index]


def test_enabling_scanning_warns_that_it_is_for_good(page: Page, seeded: Seeded) -> None:
    name = unique("noscan")
    rid = _make(seeded, name, scanning=False)
    sign_in(page, seeded.url, seeded.owner)
    page.goto(f"/console/registries/{rid}/settings")
    section = page.locator("section", has=page.get_by_role("heading", name="Enable vulnerability scanning"))
    expect(section).to_contain_text("once vulnerability scanning is on, it cannot be switched off again")
    screenshot(page, "registry-enable-scanning")
    with page.expect_response(f"**/{rid}/scanning") as answer:
        section.get_by_role("button", name="Enable vulnerability scanning").click()
    assert answer.value.status == 400
    expect(page.locator("#understood-error")).to_contain_text("Tick the box to confirm")
    stored = _registry(seeded, name)
    assert stored is not None
    assert stored["properties"]["features"] == {"vulnerabilityScanning": {"enabled": False}}  # type: ignore[index]
    page.get_by_label("I understand that scanning cannot be switched off again").check()
    page.get_by_role("button", name="Enable vulnerability scanning").click()
    expect(page.get_by_role("status")).to_have_text("Vulnerability scanning is on.")
    expect(page.get_by_role("heading", name="Enable vulnerability scanning")).to_have_count(0)
    stored = _registry(seeded, name)
    assert stored is not None
    assert stored["properties"]["features"] == {"vulnerabilityScanning": {"enabled": True}}  # type: ignore[index]


def test_deleting_a_registry_needs_its_name_typed(page: Page, seeded: Seeded) -> None:
    name = unique("doomed")
    rid = _make(seeded, name)
    sign_in(page, seeded.url, seeded.owner)
    page.goto(f"/console/registries/{rid}/settings")
    confirm = page.get_by_label(f"Type {name} to confirm")
    button = page.get_by_role("button", name="Delete registry")
    expect(button).to_be_disabled()
    confirm.fill(name[:-1])
    expect(button).to_be_disabled()
    # The server checks too: a form sent with another name deletes nothing.
    with page.expect_response(f"**/{rid}/delete") as answer:
        page.locator("form[action$='/delete']").evaluate("form => form.submit()")
    assert answer.value.status == 400
    expect(page.locator("#confirm_name-error")).to_contain_text(
        f"Type the registry's name, {name}, to confirm"
    )
    assert _registry(seeded, name) is not None
    page.get_by_label(f"Type {name} to confirm").fill(name)
    expect(button).to_be_enabled()
    screenshot(page, "registry-delete")
    button.click()
    page.wait_for_url("**/console/registries?done=deleted")
    expect(page.get_by_role("status")).to_have_text("The registry was deleted, with everything it stored.")
    assert _registry(seeded, name) is None


def test_a_registry_of_another_contract_is_not_found(page: Page, seeded: Seeded) -> None:
    other = new_contract(seeded.server, "elsewhere")
    outsider = add_user(seeded.server, other.contract, role="owner")
    sign_in(page, seeded.url, outsider)
    answer = page.goto(f"/console/registries/{seeded.registry_id}/settings")
    assert answer is not None and answer.status == 404
    expect(page.get_by_role("heading", name="Not found")).to_be_visible()
