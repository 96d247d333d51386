from __future__ import annotations

import itertools
import random
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from cargobay.db.engine import Database
from cargobay.db.migrate import upgrade
from tests.support.peers import in_ci
from tests.support.postgres import DatabaseClones, PostgresServer, find_binaries, to_sqlalchemy
from tests.support.s3 import S3Server, start_s3_server
from tests.support.server import Server
from tests.support.v2 import V2

_names = itertools.count(1)


@pytest.fixture(scope="session")
def server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """One live server for the session; tests use their own registries or repositories."""
    base = tmp_path_factory.mktemp("server")
    with Server(data_dir=base / "data") as srv:
        yield srv


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


# -- a real S3 server ------------------------------------------------------------------------------


@pytest.fixture(scope="session")
def s3_server() -> Iterator[S3Server]:
    """versitygw for the session; skipped where it cannot start, but never in CI."""
    server = start_s3_server()
    try:
        yield server
    finally:
        server.stop()


# -- databases: SQLite and a real PostgreSQL ------------------------------------------------------


@pytest.fixture(scope="session")
def pg_server() -> Iterator[PostgresServer]:
    """A PostgreSQL server for the session; skipped where none is installed, but never in CI."""
    bindir = find_binaries()
    if bindir is None:
        reason = "PostgreSQL server binaries not found (scripts/install-peers.sh installs them)"
        if in_ci():
            pytest.fail(reason + ": CI must run the PostgreSQL tests")
        pytest.skip(reason)
    server = PostgresServer(bindir)
    try:
        yield server.start()
    finally:
        server.stop()


@pytest.fixture(scope="session")
def pg_clones(pg_server: PostgresServer) -> Iterator[DatabaseClones]:
    """Copies of a database at the newest schema (CREATE DATABASE … TEMPLATE), made ahead."""
    template = pg_server.create_database("template")
    db = Database(to_sqlalchemy(pg_server.url(template)))
    upgrade(db.engine)
    db.dispose()
    clones = DatabaseClones(pg_server, template)
    yield clones
    clones.close()


@pytest.fixture
def pg_migrated_url(pg_server: PostgresServer, pg_clones: DatabaseClones) -> Iterator[str]:
    """``postgresql://`` URL of a fresh database of this test alone, at the newest schema."""
    name = pg_clones.take()
    yield pg_server.url(name)
    pg_clones.release(name)


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "cargobay.db"
    db = Database(f"sqlite:///{path}")
    upgrade(db.engine)
    db.dispose()
    return path


@pytest.fixture(params=["sqlite", pytest.param("postgresql", marks=pytest.mark.postgres)])
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """SQLAlchemy URL of a fresh database at the newest schema, once on SQLite, once on PostgreSQL."""
    if request.param == "sqlite":
        path = tmp_path / "cargobay.db"
        shutil.copyfile(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    return to_sqlalchemy(request.getfixturevalue("pg_migrated_url"))


@pytest.fixture
def db(db_url: str) -> Iterator[Database]:
    database = Database(db_url)
    yield database
    database.dispose()


@pytest.fixture(scope="session")
def v2(server: Server) -> Iterator[V2]:
    """A /v2/ client authenticated as the server's owner (Basic)."""
    with V2(server) as client:
        yield client


@pytest.fixture
def rng(request: pytest.FixtureRequest) -> random.Random:
    """Random data that is the same on every run of a test (seeded by the test's id)."""
    return random.Random(request.node.nodeid)


# The files that take minutes each (GC under crashes and load, the benchmark smoke runs). With
# `--dist loadfile --no-loadscope-reorder` (the Makefile) xdist hands whole files to workers in
# collection order, so these go first and run beside the many short files instead of alone at the end
# (xdist's default order, most tests first, put them last: the last 10 minutes of a 17-minute run).
LONGEST_FIRST = (
    "tests/e2e/test_gc_crash.py",
    "tests/e2e/test_gc_stress.py",
    "tests/e2e/test_benchmarks_smoke.py",
    "tests/e2e/test_crash_safety.py",
    "tests/e2e/test_key_rotation.py",
    "tests/e2e/test_scanning_cli.py",
)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    def rank(item: pytest.Item) -> int:
        path = item.nodeid.partition("::")[0]
        return LONGEST_FIRST.index(path) if path in LONGEST_FIRST else len(LONGEST_FIRST)

    items.sort(key=rank)  # stable: every file keeps its own order
