"""Scanning's pages with real data: an image with a Debian 12 dpkg status and a Python layer pushed by
crane, OSV advisories imported with ``cargobay vulndb import``, scanned by the server's own job worker.
The VULNERABILITIES column, an artifact's scan and CVE list with its filters, CVE detail, the
Vulnerability Search, never-scanned artifacts, bad input and a read-only user."""

from __future__ import annotations

import json
import re
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from playwright.sync_api import Browser, Page, expect

from tests.browser.conftest import Seeded
from tests.support import osv_records as R
from tests.support.browser import assert_every_input_labelled, fits_phone, phone_page, screenshot, sign_in
from tests.support.clients import ClientEnv
from tests.support.mgmt import unique
from tests.support.server import Server
from tests.support.vulnimages import app_layer, debian_base, python_layer, write_records

pytestmark = pytest.mark.slow

# What the scan of the image finds with every advisory of tests.support.osv_records imported.
# DSA-5514-1 names three glibc CVEs as upstream, so the glibc of the image has three.
FOUND = {
    "CVE-2023-4911",
    "CVE-2023-4527",
    "CVE-2023-4806",
    "CVE-2024-28085",
    "CVE-2022-0563",
    "CVE-2023-32681",
}
NO_FIX = "CVE-2022-0563"  # util-linux chfn: no fixed version in Debian 12


@dataclass(frozen=True)
class Scanned:
    registry: str
    registry_id: str
    digest: str  # team/app:1.0, vulnerable
    clean: str  # team/static:1.0, no package at all
    off_registry_id: str  # a registry that does not scan
    off_digest: str

    def artifact(self, digest: str | None = None, repository: str = "team/app") -> str:
        where = f"/console/registries/{self.registry_id}/repositories/{repository}"
        return f"{where}/-/artifacts/{digest or self.digest}"


def _push(clients: ClientEnv, server: Server, folder: Path, ref: str, layers: list[bytes]) -> str:
    args = []
    for i, layer in enumerate(layers):
        path = folder / f"{ref.replace('/', '_').replace(':', '_')}-{i}.tar.gz"
        path.write_bytes(layer)
        args += ["-f", str(path)]
    out = clients.run("crane", "--insecure", "append", *args, "-t", f"{server.host}/{ref}").stdout
    return out.strip().splitlines()[-1].rsplit("@", 1)[1]


def _wait_scanned(server: Server, image: str, timeout: float = 90) -> None:
    deadline = time.monotonic() + timeout
    while True:
        out = server.cli("scan", image, "--format", "json", "--no-scan").stdout
        if json.loads(out)["status"] not in (None, "pending"):
            return
        assert time.monotonic() < deadline, f"{image} was not scanned in {timeout} s"
        time.sleep(0.5)


@pytest.fixture(scope="module")
def scanned(seeded: Seeded, tmp_path_factory: pytest.TempPathFactory) -> Scanned:
    base = tmp_path_factory.mktemp("scanned")
    server = seeded.server
    server.cli("vulndb", "import", str(write_records(base / "osv", R.ALL)))
    name, off = unique("scans"), unique("noscan")
    with seeded.api() as client:
        rid = client.post("/registries", json={"properties": {"name": name, "location": "de/fra"}}).json()[
            "id"
        ]
        off_id = client.post(
            "/registries",
            json={
                "properties": {
                    "name": off,
                    "location": "de/fra",
                    "features": {"vulnerabilityScanning": {"enabled": False}},
                }
            },
        ).json()["id"]
    clients = ClientEnv(base / "clients")
    clients.workdir.mkdir(parents=True, exist_ok=True)
    clients.run("crane", "auth", "login", server.host, "-u", seeded.owner.email, "-p", seeded.owner.password)
    digest = _push(clients, server, base, f"{name}/team/app:1.0", [debian_base(), python_layer()])
    clean = _push(clients, server, base, f"{name}/team/static:1.0", [app_layer("print('hello')\n")])
    off_digest = _push(clients, server, base, f"{off}/team/app:1.0", [debian_base()])
    _wait_scanned(server, f"{name}/team/app:1.0")
    _wait_scanned(server, f"{name}/team/static:1.0")
    return Scanned(name, rid, digest, clean, off_id, off_digest)


def test_repositories_show_the_highest_severity_of_their_last_push(
    page: Page, seeded: Seeded, scanned: Scanned
) -> None:
    sign_in(page, seeded.url, seeded.owner)
    page.goto(f"/console/registries/{scanned.registry_id}")
    app = page.get_by_role("row").filter(has=page.get_by_role("link", name="team/app", exact=True))
    expect(app.get_by_role("cell").first).to_have_text("High")
    static = page.get_by_role("row").filter(has=page.get_by_role("link", name="team/static", exact=True))
    expect(static.get_by_role("cell").first).to_have_text("No vulnerabilities")
    screenshot(page, "repositories-vulnerabilities")
    page.goto(f"/console/registries/{scanned.off_registry_id}")
    off = page.get_by_role("row").filter(has=page.get_by_role("link", name="team/app", exact=True))
    expect(off.get_by_role("cell").first).to_have_text("Scanning off")


def test_an_artifact_shows_its_scan_and_its_vulnerabilities(
    page: Page, seeded: Seeded, scanned: Scanned
) -> None:
    sign_in(page, seeded.url, seeded.owner)
    page.goto(f"/console/registries/{scanned.registry_id}/repositories/team/app")
    row = page.locator("tbody tr").first
    expect(row.get_by_role("cell").nth(1)).to_have_text("High 6 found, 5 fixable")
    expect(row.get_by_role("cell").nth(4)).to_contain_text("UTC")  # last scan
    row.get_by_role("link").click()
    props = page.locator("dl.props")
    expect(props).to_contain_text(re.compile(r"Last scan\s*\d{4}-\d\d-\d\d \d\d:\d\d UTC"))
    expect(props).to_contain_text(re.compile(r"Last pull\s*Never pulled"))
    expect(props).to_contain_text("High 6 found, 5 fixable")
    expect(props).to_contain_text("Debian GNU/Linux 12 (bookworm)")  # the scan's inventory
    rows = page.locator("tbody tr")
    expect(rows).to_have_count(6)
    ids = {rows.nth(i).get_by_role("rowheader").get_by_role("link").inner_text() for i in range(6)}
    assert ids == FOUND
    first = rows.first  # the highest score first
    expect(first.get_by_role("rowheader")).to_contain_text("CVE-2023-4911")
    expect(first).to_contain_text("7.8")
    expect(first).to_contain_text("libc6")
    expect(first).to_contain_text("2.36-9+deb12u1")  # installed
    expect(first).to_contain_text("2.36-9+deb12u3")  # fixed in
    expect(rows.filter(has_text=NO_FIX)).to_contain_text("No fix yet")
    assert_every_input_labelled(page)
    screenshot(page, "artifact-vulnerabilities")


def test_severity_and_fixable_filters(page: Page, seeded: Seeded, scanned: Scanned) -> None:
    sign_in(page, seeded.url, seeded.owner)
    page.goto(scanned.artifact())
    rows = page.locator("tbody tr")
    page.get_by_label("High").check()
    page.get_by_role("button", name="Show").click()
    expect(rows.filter(has_text="CVE-2023-4911")).to_have_count(1)
    expect(rows.filter(has_text="CVE-2023-32681")).to_have_count(0)  # medium
    for i in range(rows.count()):
        expect(rows.nth(i).get_by_role("cell").first).to_have_text("High")
    expect(page.get_by_label("High")).to_be_checked()
    page.get_by_label("High").uncheck()
    page.get_by_label("Fix", exact=True).select_option("false")
    page.get_by_role("button", name="Show").click()
    expect(rows).to_have_count(1)
    expect(rows.first).to_contain_text(NO_FIX)
    screenshot(page, "artifact-vulnerabilities-filtered")
    page.get_by_label("Critical").check()
    page.get_by_role("button", name="Show").click()
    expect(page.locator(".empty")).to_contain_text("No vulnerability of this artifact matches these filters.")
    page.get_by_role("link", name="Show all its vulnerabilities").click()
    expect(rows).to_have_count(6)


@pytest.mark.parametrize(
    ("query", "message"),
    [
        (
            "severity=urgent",
            "Severity 'urgent' is not a severity; use none, low, medium, high, critical, unknown.",
        ),
        ("fixable=maybe", "Fixable must be true or false, got 'maybe'."),
        ("order=-cvss", "Sort by must be one of Highest score, Highest severity"),
        ("limit=3", "Per page must be one of 10, 25, 50, 100, got '3'."),
    ],
)
def test_a_bad_filter_is_a_400_saying_the_choices(
    page: Page, seeded: Seeded, scanned: Scanned, query: str, message: str
) -> None:
    sign_in(page, seeded.url, seeded.owner)
    answer = page.goto(f"{scanned.artifact()}?{query}")
    assert answer is not None and answer.status == 400
    expect(page.get_by_role("alert")).to_contain_text(message)


def test_cve_detail_with_score_vector_references_and_fixes(
    page: Page, seeded: Seeded, scanned: Scanned
) -> None:
    sign_in(page, seeded.url, seeded.owner)
    page.goto(scanned.artifact())
    page.get_by_role("link", name="CVE-2023-4911", exact=True).click()
    expect(page.get_by_role("heading", name="CVE-2023-4911 High")).to_be_visible()
    expect(page.get_by_role("link", name="Vulnerability search")).to_have_attribute("aria-current", "page")
    props = page.locator("dl.props")
    expect(props).to_contain_text("7.8")
    expect(props).to_contain_text(R.V31_GLIBC)
    expect(props).to_contain_text("GLIBC_TUNABLES")
    expect(props).to_contain_text("DSA-5514-1")  # an alias
    affected = page.get_by_role("table", name="Packages CVE-2023-4911 affects")
    expect(affected.get_by_role("row").filter(has_text="glibc")).to_contain_text("2.36-9+deb12u3")
    artifacts = page.get_by_role("table", name=re.compile("^Artifacts of"))
    expect(artifacts.locator("tbody tr")).to_have_count(1)
    expect(artifacts).to_contain_text("team/app")
    expect(artifacts).to_contain_text("1.0")
    screenshot(page, "vulnerability")


def test_vulnerability_search_by_cve_id_or_alias(page: Page, seeded: Seeded, scanned: Scanned) -> None:
    sign_in(page, seeded.url, seeded.owner)
    page.goto(f"/console/registries/{scanned.registry_id}")
    page.get_by_role("link", name="Vulnerability search").click()
    expect(page.get_by_role("heading", name="Search this registry by vulnerability")).to_be_visible()
    assert_every_input_labelled(page)
    screenshot(page, "vulnerability-search")
    page.get_by_label("CVE or advisory id").fill("  CVE-2024-28085 ")
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("heading", name=re.compile("^CVE-2024-28085"))).to_be_visible()
    expect(page.locator("dl.props")).to_contain_text("wall in util-linux")
    tracker = "https://security-tracker.debian.org/tracker/CVE-2024-28085"
    expect(page.get_by_role("link", name=tracker)).to_have_attribute("href", tracker)
    expect(page.get_by_role("table", name=re.compile("^Artifacts of"))).to_contain_text("team/app")
    page.get_by_label("CVE or advisory id").fill("DSA-5650-1")  # an alias finds the same artifacts
    page.get_by_role("button", name="Search").click()
    expect(page.get_by_role("table", name=re.compile("^Artifacts of"))).to_contain_text("team/app")


def test_vulnerability_search_explains_bad_and_unknown_ids(
    page: Page, seeded: Seeded, scanned: Scanned
) -> None:
    sign_in(page, seeded.url, seeded.owner)
    search = f"/console/registries/{scanned.registry_id}/vulnerabilities"
    answer = page.goto(f"{search}?id=")
    assert answer is not None and answer.status == 400
    expect(page.locator(".field-error")).to_contain_text(
        "Must be an advisory id (e.g. CVE-2021-44228) of 1-64"
    )
    expect(page.get_by_label("CVE or advisory id")).to_have_attribute("aria-invalid", "true")
    answer = page.goto(f"{search}?id={'CVE-' + '1' * 70}")
    assert answer is not None and answer.status == 400
    answer = page.goto(f"{search}?id=CVE-1999-0001")
    assert answer is not None and answer.status == 404
    expect(page.get_by_role("status")).to_contain_text("CVE-1999-0001 is not in the vulnerability database")
    expect(page.get_by_role("heading", name=re.compile("^Artifacts of"))).to_have_count(0)
    screenshot(page, "vulnerability-not-found")


def test_never_scanned_is_said_never_zero(page: Page, seeded: Seeded, scanned: Scanned) -> None:
    sign_in(page, seeded.url, seeded.owner)
    page.goto(
        f"/console/registries/{scanned.off_registry_id}/repositories/team/app/-/artifacts/{scanned.off_digest}"
    )
    props = page.locator("dl.props")
    expect(props).to_contain_text(re.compile(r"Last scan\s*Never scanned"))
    expect(props).to_contain_text(re.compile(r"Vulnerabilities\s*Scanning off"))
    expect(page.locator("main")).to_contain_text("Vulnerability scanning is off for this registry")
    expect(page.locator("main table")).to_have_count(0)
    page.goto(scanned.artifact(scanned.clean, "team/static"))
    expect(page.locator("dl.props")).to_contain_text(re.compile(r"Vulnerabilities\s*No vulnerabilities"))
    expect(page.get_by_role("heading", name="No known vulnerabilities")).to_be_visible()


def test_a_read_only_user_sees_the_vulnerabilities_and_no_control(
    page: Page, seeded: Seeded, scanned: Scanned
) -> None:
    sign_in(page, seeded.url, seeded.reader)
    page.goto(scanned.artifact())
    expect(page.locator("tbody tr")).to_have_count(6)
    expect(page.get_by_text("Delete", exact=True)).to_have_count(0)
    expect(page.locator("main form[method=post]")).to_have_count(0)
    screenshot(page, "read-only-artifact")
    page.get_by_role("link", name="CVE-2023-4911", exact=True).click()
    expect(page.get_by_role("heading", name="CVE-2023-4911 High")).to_be_visible()
    expect(page.locator("main form[method=post]")).to_have_count(0)


def test_scanning_pages_fit_a_phone(browser: Browser, seeded: Seeded, scanned: Scanned) -> None:
    phone = phone_page(browser, seeded.url)
    sign_in(phone, seeded.url, seeded.owner)
    phone.goto(scanned.artifact())
    assert fits_phone(phone)  # the CVE table scrolls inside its own box
    screenshot(phone, "phone-artifact-vulnerabilities")
    phone.goto(f"/console/registries/{scanned.registry_id}/vulnerabilities/CVE-2023-4911")
    assert fits_phone(phone)
    phone.context.close()
