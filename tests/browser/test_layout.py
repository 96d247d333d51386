"""The console on a phone and from the keyboard: no sideways scrolling of the page, a skip link,
labels on every input, and a visible focus."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import REGISTRY, Seeded
from tests.support.browser import assert_every_input_labelled, fits_phone, phone_page, screenshot, sign_in

pytestmark = pytest.mark.slow


@pytest.fixture
def phone(browser: Browser, seeded: Seeded) -> Page:
    return phone_page(browser, seeded.url)


def test_pages_fit_a_phone_screen(phone: Page, seeded: Seeded) -> None:
    sign_in(phone, seeded.url, seeded.owner)
    assert fits_phone(phone)
    screenshot(phone, "phone-registries")
    phone.get_by_role("link", name=REGISTRY).click()
    assert fits_phone(phone)  # the table scrolls inside its own box, the page does not
    screenshot(phone, "phone-repositories")
    phone.get_by_role("link", name="Properties").click()
    assert fits_phone(phone)
    phone.goto(f"/console/registries/{seeded.registry_id}/tokens/new")
    assert fits_phone(phone)
    screenshot(phone, "phone-token-new")
    phone.context.close()


def test_the_keyboard_reaches_everything_with_a_visible_focus(page: Page, seeded: Seeded) -> None:
    sign_in(page, seeded.url, seeded.owner)
    page.goto("/console/registries/new")
    page.keyboard.press("Tab")
    skip = page.get_by_role("link", name="Skip to content")
    expect(skip).to_be_focused()
    expect(skip).to_be_in_viewport()
    page.keyboard.press("Enter")
    order = []
    for _ in range(8):
        page.keyboard.press("Tab")
        order.append(page.evaluate("document.activeElement.id || document.activeElement.textContent.trim()"))
    assert order == ["Registries", "name", "location", "scanning", "day-Monday", "day-Tuesday", *order[6:]]
    outline = page.evaluate("getComputedStyle(document.activeElement).outlineStyle")
    assert outline == "solid"
    assert_every_input_labelled(page)
