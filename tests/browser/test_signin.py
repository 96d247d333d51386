"""Signing in and out of the console, its session cookie, form tokens (CSRF) and the contract switcher."""

from __future__ import annotations

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import Seeded
from tests.support.browser import LAPTOP, csrf, screenshot, sign_in
from tests.support.mgmt import Login, add_user, new_contract, unique

pytestmark = pytest.mark.slow


def test_the_console_root_is_the_sign_in_page(page: Page, seeded: Seeded) -> None:
    response = page.goto("/console/")
    assert response is not None and response.status == 200
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    expect(page.get_by_label("E-mail")).to_be_focused()
    screenshot(page, "sign-in")


def test_a_wrong_password_is_refused_in_plain_words(page: Page, seeded: Seeded) -> None:
    page.goto("/console/")
    page.get_by_label("E-mail").fill(seeded.owner.email)
    page.get_by_label("Password").fill("not-the-password")
    with page.expect_response("**/console/sign-in") as answer:
        page.get_by_role("button", name="Sign in").click()
    assert answer.value.status == 401
    expect(page.get_by_role("alert")).to_contain_text("The e-mail address or the password is not right.")
    expect(page.get_by_label("E-mail")).to_have_value(seeded.owner.email)
    assert not [c for c in page.context.cookies() if c["name"] == "cargobay_console"]


def test_empty_fields_are_marked_next_to_them(page: Page, seeded: Seeded) -> None:
    page.goto("/console/")
    with page.expect_response("**/console/sign-in") as answer:
        page.get_by_role("button", name="Sign in").click()
    assert answer.value.status == 400
    expect(page.locator("#email-error")).to_have_text("Error: Enter the e-mail address you sign in with.")
    expect(page.locator("#password-error")).to_have_text("Error: Enter your password.")
    expect(page.get_by_label("E-mail")).to_have_attribute("aria-invalid", "true")


def test_the_session_cookie_is_http_only_and_same_site(page: Page, seeded: Seeded) -> None:
    sign_in(page, seeded.url, seeded.owner)
    cookie = next(c for c in page.context.cookies() if c["name"] == "cargobay_console")
    assert cookie["httpOnly"] is True
    assert cookie["sameSite"] == "Lax"
    assert cookie["path"] == "/console"
    assert page.evaluate("document.cookie") == ""


def test_a_page_asked_for_before_signing_in_opens_after_it(page: Page, seeded: Seeded) -> None:
    page.goto(f"/console/registries/{seeded.registry_id}/tokens")
    expect(page.get_by_role("heading", name="Sign in")).to_be_visible()
    page.get_by_label("E-mail").fill(seeded.owner.email)
    page.get_by_label("Password").fill(seeded.owner.password)
    page.get_by_role("button", name="Sign in").click()
    page.wait_for_url(f"**/console/registries/{seeded.registry_id}/tokens")


def test_signing_out_ends_the_session_everywhere(browser: Browser, page: Page, seeded: Seeded) -> None:
    sign_in(page, seeded.url, seeded.owner)
    cookie = next(c for c in page.context.cookies() if c["name"] == "cargobay_console")
    page.get_by_role("button", name="Sign out").click()
    page.wait_for_url("**/console/?signed_out=1")
    expect(page.get_by_role("status")).to_have_text("You are signed out.")
    # The cookie as it was before signing out no longer opens anything: its token was revoked.
    other = browser.new_context(viewport=LAPTOP, base_url=seeded.url)
    other.add_cookies([cookie])
    stale = other.new_page()
    stale.goto("/console/registries")
    expect(stale.get_by_role("heading", name="Sign in")).to_be_visible()
    other.close()


def test_a_form_without_the_page_token_changes_nothing(page: Page, seeded: Seeded) -> None:
    sign_in(page, seeded.url, seeded.owner)
    name = unique("csrf")
    form = {"name": name, "location": "de/fra", "scanning": "on"}
    answer = page.request.post("/console/registries", form=form, max_redirects=0)
    assert answer.status == 403
    assert "nothing was changed" in answer.text()
    wrong = page.request.post("/console/registries", form={**form, "csrf": "x" * 32}, max_redirects=0)
    assert wrong.status == 403
    with seeded.api() as client:
        assert client.head(f"/names/{name}").status_code == 404  # still free: nothing was made
    page.goto("/console/registries")
    sent = page.request.post("/console/registries", form={**form, "csrf": csrf(page)}, max_redirects=0)
    assert sent.status == 303


def test_a_sign_in_form_from_elsewhere_is_refused(browser: Browser, seeded: Seeded) -> None:
    """Login CSRF: a post without the sign-in page's cookie and token opens no session."""
    context = browser.new_context(base_url=seeded.url)
    answer = context.request.post(
        "/console/sign-in",
        form={"email": seeded.owner.email, "password": seeded.owner.password},
        max_redirects=0,
    )
    assert answer.status == 403
    assert not [c for c in context.cookies() if c["name"] == "cargobay_console"]
    context.close()


def test_a_user_of_several_contracts_switches_between_them(page: Page, seeded: Seeded) -> None:
    other = new_contract(seeded.server, "switch")
    member = add_user(seeded.server, other.contract, role="admin")
    add_user(seeded.server, seeded.owner.contract, role="user", login=member)
    with seeded.api(other) as client:
        name = unique("other")
        made = client.post("/registries", json={"properties": {"name": name, "location": "de/txl"}})
        made.raise_for_status()
    login = Login(member.email, member.password, min(other.contract, seeded.owner.contract))
    sign_in(page, seeded.url, login)
    switcher = page.get_by_label("Contract")
    first = switcher.input_value()
    target = other.contract if int(first) != other.contract else seeded.owner.contract
    screenshot(page, "contract-switcher")
    switcher.select_option(str(target))
    page.get_by_role("button", name="Switch").click()
    page.wait_for_url("**/console/registries")
    expect(page.get_by_label("Contract")).to_have_value(str(target))
    table = page.locator("table")
    if target == other.contract:
        expect(table).to_contain_text(name)
        expect(table).not_to_contain_text("acme-apps")
        expect(page.get_by_role("link", name="Add a registry")).to_be_visible()  # admin there
    else:
        expect(table).to_contain_text("acme-apps")
        expect(page.get_by_role("link", name="Add a registry")).to_have_count(0)  # read-only there


def test_switching_to_a_contract_of_someone_else_is_refused(page: Page, seeded: Seeded) -> None:
    stranger = new_contract(seeded.server, "stranger")
    sign_in(page, seeded.url, seeded.reader)
    page.goto("/console/registries")
    answer = page.request.post(
        "/console/contract", form={"contract": str(stranger.contract), "csrf": csrf(page)}, max_redirects=0
    )
    assert answer.status == 403
    assert "not a member" in answer.text()
