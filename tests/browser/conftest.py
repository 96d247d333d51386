"""One live server and one Chromium for the console's browser tests, with images pushed by crane.

The server and its data are made once per worker (package scope); each test gets its own browser
context (its own cookies), and makes its own registries and tokens where it changes something.
"""

from __future__ import annotations

import random
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest
from playwright.sync_api import Browser, BrowserContext, Page, Playwright, sync_playwright

from tests.support.browser import LAPTOP, launch
from tests.support.clients import ClientEnv
from tests.support.images import tar_layer
from tests.support.mgmt import Login, add_user, api
from tests.support.server import Server

REGISTRY = "acme-apps"


@dataclass(frozen=True)
class Seeded:
    """What the session's server holds before any test runs."""

    server: Server
    owner: Login
    reader: Login  # a user without manageRegistry: reads only
    registry_id: str
    repositories: tuple[str, ...]

    @property
    def url(self) -> str:
        return self.server.url

    def api(self, login: Login | None = None) -> httpx.Client:
        return api(self.server, login or self.owner)


def crane_push(clients: ClientEnv, server: Server, reference: str, rng: random.Random) -> None:
    """Push a one-layer image as ``reference`` (``registry/repo:tag``) with crane."""
    layer = clients.workdir / f"layer-{rng.getrandbits(32)}.tar.gz"
    layer.write_bytes(tar_layer(rng, [rng.randrange(500, 40_000)]))
    clients.run("crane", "--insecure", "append", "-f", str(layer), "-t", f"{server.host}/{reference}")


@pytest.fixture(scope="package")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Seeded]:
    base = tmp_path_factory.mktemp("console")
    # No grace period: a run started in the console frees what a test has just deleted (test_gc_runs).
    # Runs happen inside the server, as for every test server (tests/support/server.py).
    env = {"CARGOBAY_GC_GRACE_SECONDS": "0"}
    with Server(data_dir=base / "data", extra_env=env) as server:
        owner = Login(server.admin_user, server.admin_password, server.owner_contract() or 0)
        reader = add_user(server, owner.contract, role="user", manage_registry=False)
        with api(server, owner) as client:
            created = client.post(
                "/registries",
                json={
                    "properties": {
                        "name": REGISTRY,
                        "location": "de/fra",
                        "garbageCollectionSchedule": {"days": ["Saturday"], "time": "03:00:00Z"},
                    }
                },
            )
            created.raise_for_status()
        clients = ClientEnv(base / "clients")
        clients.workdir.mkdir(parents=True, exist_ok=True)
        clients.run("crane", "auth", "login", server.host, "-u", owner.email, "-p", owner.password)
        rng = random.Random(7)
        repositories = ("team/web", "team/api", "tools/busybox")
        crane_push(clients, server, f"{REGISTRY}/team/web:1.0", rng)
        crane_push(clients, server, f"{REGISTRY}/team/web:1.1", rng)
        clients.run("crane", "--insecure", "tag", f"{server.host}/{REGISTRY}/team/web:1.1", "latest")
        crane_push(clients, server, f"{REGISTRY}/team/api:2.3.0", rng)
        crane_push(clients, server, f"{REGISTRY}/tools/busybox:stable", rng)
        pulled = str(base / "pulled.tar")
        clients.run("crane", "--insecure", "pull", f"{server.host}/{REGISTRY}/team/web:latest", pulled)
        yield Seeded(server, owner, reader, created.json()["id"], repositories)


@pytest.fixture(scope="package")
def playwright() -> Iterator[Playwright]:
    with sync_playwright() as p:
        yield p


@pytest.fixture(scope="package")
def browser(playwright: Playwright) -> Iterator[Browser]:
    browser = launch(playwright)
    yield browser
    browser.close()


@pytest.fixture
def context(browser: Browser, seeded: Seeded) -> Iterator[BrowserContext]:
    context = browser.new_context(viewport=LAPTOP, base_url=seeded.url, locale="en-GB", timezone_id="UTC")
    context.set_default_timeout(15_000)
    yield context
    context.close()


@pytest.fixture
def page(context: BrowserContext) -> Page:
    return context.new_page()


@pytest.fixture
def clients(tmp_path: Path) -> ClientEnv:
    """Real registry clients with a private HOME and auth files (never the user's)."""
    root = tmp_path / "clients"
    root.mkdir()
    return ClientEnv(root)
