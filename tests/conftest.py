from __future__ import annotations

import itertools
import random
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import Server
from tests.support.v2 import V2

_names = itertools.count(1)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One live server for the session; tests use their own registries or repositories."""
    base = tmp_path_factory.mktemp("server")
    srv = Server(data_dir=base / "data")
    srv.data_dir.mkdir()
    srv.start()
    yield srv
    srv.stop()


@pytest.fixture(scope="session")
def registry(server: Server) -> str:
    """A registry shared by the session's protocol tests (name)."""
    server.create_registry("protocol")
    return "protocol"


@pytest.fixture
def repo(registry: str) -> str:
    """A fresh repository name (client form: registry/repository) for one test."""
    return f"{registry}/t{next(_names)}/app"


@pytest.fixture
def data_dir(tmp_path: Path) -> Path:
    d = tmp_path / "data"
    d.mkdir()
    return d


@pytest.fixture(scope="session")
def v2(server: Server) -> Iterator[V2]:
    """A /v2/ client authenticated as the server's owner (Basic)."""
    with V2(server) as client:
        yield client


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    """Random data that is the same on every run of a test (seeded by the test's id)."""
    return random.Random(request.node.nodeid)
