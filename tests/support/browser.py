"""Driving the web console with Playwright and Debian's Chromium (never a downloaded browser).

Chromium runs headless with the background-networking features off: this network refuses every host
but the loopback, and the console fetches nothing from elsewhere. In CI a Chromium that cannot start
fails the browser tests; elsewhere they are skipped with the reason.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import pytest
from playwright.sync_api import Browser, Page, Playwright

from tests.support.mgmt import Login
from tests.support.peers import REPO, in_ci

CHROMIUM_ARGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]
# `make screenshots` remakes the README's pictures in docs/screenshots; other runs take them (the
# pages render the same) into .cache/, so a test run leaves the work tree as it was.
SCREENSHOTS = Path(os.environ.get("CARGOBAY_SCREENSHOT_DIR") or REPO / ".cache" / "screenshots")
LAPTOP = {"width": 1280, "height": 800}
PHONE = {"width": 390, "height": 844}


def chromium_path() -> str:
    return os.environ.get("CARGOBAY_CHROMIUM") or "/usr/bin/chromium"


def launch(playwright: Playwright) -> Browser:
    """Debian's Chromium, or a skip (a failure in CI) saying why it cannot start."""
    path = chromium_path()
    problem = None
    if not Path(path).is_file():
        problem = f"Chromium not found at {path} (scripts/install-peers.sh installs Debian's chromium)"
    else:
        try:
            return playwright.chromium.launch(executable_path=path, args=CHROMIUM_ARGS, timeout=60_000)
        except Exception as exc:
            problem = f"Chromium at {path} cannot start: {str(exc).splitlines()[0]}"
    if in_ci():
        pytest.fail(problem + ": CI must run the browser tests")
    pytest.skip(problem)


def screenshot(page: Page, name: str, **options: Any) -> None:
    """A picture of the page for the README (``docs/screenshots/<name>.png`` under `make screenshots`)."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / f"{name}.png"), full_page=True, animations="disabled", **options)


def sign_in(page: Page, base_url: str, login: Login) -> None:
    page.goto(f"{base_url}/console/")
    page.get_by_label("E-mail").fill(login.email)
    page.get_by_label("Password").fill(login.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url("**/console/registries")


def csrf(page: Page) -> str:
    """The form token of the page shown (what the browser would send with a form)."""
    value = page.locator("input[name=csrf]").first.get_attribute("value")
    assert value
    return value


def phone_page(browser: Browser, base_url: str) -> Page:
    context = browser.new_context(viewport=PHONE, base_url=base_url, is_mobile=True, has_touch=True)
    context.set_default_timeout(15_000)
    return context.new_page()


def fits_phone(page: Page) -> bool:
    """Nothing but a table (which scrolls inside its own box) reaches past the screen's right edge."""
    wider = page.evaluate(
        """width => Array.from(document.querySelectorAll("body *"))
            .filter(e => !e.closest(".table-wrap") && e.getBoundingClientRect().right > width + 1)
            .map(e => e.outerHTML.slice(0, 80))""",
        PHONE["width"],
    )
    assert not wider, wider
    return bool(page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"])


def assert_every_input_labelled(page: Page) -> None:
    """Each input of the page's main part has one label naming it, or sits inside its label."""
    for field in page.locator("main input:not([type=hidden]), main select, main textarea").all():
        field_id = field.get_attribute("id")
        label = page.locator(f"label[for='{field_id}']") if field_id else None
        wrapped = field.evaluate("e => e.closest('label') !== null")
        assert wrapped or (label is not None and label.count() == 1), field_id
