"""A throw-away PostgreSQL server for the test session, and fresh databases cut from templates.

The server runs from the distribution's binaries (``/usr/lib/postgresql/*/bin`` or ``PATH``) in a
temporary data directory on a free loopback port. PostgreSQL refuses to run as root, so under root
every server command runs as the ``postgres`` OS user. Durability is switched off: tests never
need a crash-safe PostgreSQL, and fsync would dominate their time.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import queue
import shutil
import subprocess
import tempfile
import threading
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
from psycopg import sql

from tests.support.server import free_port

_SERVER_TOOLS = ("initdb", "pg_ctl", "postgres")


def find_binaries() -> Path | None:
    """``CARGOBAY_PG_BINDIR`` (scripts/install-peers.sh prints it), else the newest
    ``/usr/lib/postgresql/N/bin`` holding initdb, pg_ctl and postgres, else those on PATH."""
    chosen = os.environ.get("CARGOBAY_PG_BINDIR")
    if chosen and all((Path(chosen) / tool).exists() for tool in _SERVER_TOOLS):
        return Path(chosen)
    versions: list[tuple[int, Path]] = []
    for bindir in Path("/usr/lib/postgresql").glob("*/bin"):
        if bindir.parent.name.isdigit() and all((bindir / tool).exists() for tool in _SERVER_TOOLS):
            versions.append((int(bindir.parent.name), bindir))
    if versions:
        return max(versions)[1]
    found = shutil.which("pg_ctl")
    if found is not None:
        bindir = Path(found).resolve().parent
        if all((bindir / tool).exists() for tool in _SERVER_TOOLS):
            return bindir
    return None


def to_sqlalchemy(url: str) -> str:
    """The same URL with the psycopg 3 driver named, as ``Settings.resolved_database_url`` does."""
    return "postgresql+psycopg://" + url.split("://", 1)[1]


@dataclass
class PostgresServer:
    bindir: Path
    port: int = field(default_factory=free_port)
    user: str = "postgres"
    base: Path = field(init=False)
    _names: itertools.count[int] = field(init=False, default_factory=lambda: itertools.count(1))

    def __post_init__(self) -> None:
        # Not under pytest's tmp dirs: those are private to root, and the server runs as postgres.
        self.base = Path(tempfile.mkdtemp(prefix="cargobay-pg-"))
        self._as_server_user = os.geteuid() == 0
        if self._as_server_user:
            shutil.chown(self.base, user="postgres", group="postgres")

    @property
    def data_dir(self) -> Path:
        return self.base / "data"

    @property
    def log_file(self) -> Path:
        return self.base / "server.log"

    def url(self, database: str) -> str:
        return f"postgresql://{self.user}@127.0.0.1:{self.port}/{database}"

    def _run(self, *args: str) -> None:
        command = [str(a) for a in args]
        if self._as_server_user:
            command = ["runuser", "-u", "postgres", "--", *command]
        done = subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)
        if done.returncode != 0:
            raise RuntimeError(
                f"{' '.join(command)} failed ({done.returncode}): {done.stderr}{self.log_tail()}"
            )

    def start(self) -> PostgresServer:
        self._run(
            self.bindir / "initdb",
            "-D",
            str(self.data_dir),
            "-U",
            self.user,
            "-A",
            "trust",
            "-E",
            "UTF8",
            "--locale=C",
            "--no-sync",
        )
        return self.resume()

    def resume(self) -> PostgresServer:
        """Start the server on its existing data directory (after ``pause``)."""
        options = " ".join(
            [
                f"-p {self.port}",
                f"-k {self.base}",
                "-c listen_addresses=127.0.0.1",
                "-c max_connections=300",
                "-c fsync=off",
                "-c synchronous_commit=off",
                "-c full_page_writes=off",
            ]
        )
        self._run(
            self.bindir / "pg_ctl",
            "-D",
            str(self.data_dir),
            "-l",
            str(self.log_file),
            "-o",
            options,
            "-w",
            "start",
        )
        return self

    def pause(self) -> None:
        """Stop the server, keeping its data (a database outage); ``resume`` starts it again."""
        self._run(self.bindir / "pg_ctl", "-D", str(self.data_dir), "-m", "fast", "-w", "stop")

    def stop(self) -> None:
        if (self.data_dir / "postmaster.pid").exists():
            with contextlib.suppress(RuntimeError):
                self._run(self.bindir / "pg_ctl", "-D", str(self.data_dir), "-m", "immediate", "-w", "stop")
        shutil.rmtree(self.base, ignore_errors=True)

    def log_tail(self, lines: int = 20) -> str:
        try:
            return "\n" + "\n".join(self.log_file.read_text(errors="replace").splitlines()[-lines:])
        except OSError:
            return ""

    def create_database(self, prefix: str = "t", template: str | None = None) -> str:
        """A new database (copied from ``template`` when given); returns its name."""
        name = f"{prefix}_{next(self._names)}"
        statement = sql.SQL("CREATE DATABASE {}").format(sql.Identifier(name))
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            if template is not None:
                statement += sql.SQL(" TEMPLATE {}").format(sql.Identifier(template))
                if conn.info.server_version >= 150000:
                    # Copying the files beats WAL-logging them for a small template (~2x).
                    statement += sql.SQL(" STRATEGY FILE_COPY")
            conn.execute(statement)
        return name

    def drop_database(self, name: str) -> None:
        with psycopg.connect(self.url("postgres"), autocommit=True) as conn:
            conn.execute(sql.SQL("DROP DATABASE IF EXISTS {} WITH (FORCE)").format(sql.Identifier(name)))


class DatabaseClones:
    """Fresh copies of a template database, made one ahead in a background thread.

    CREATE DATABASE … TEMPLATE takes a few hundred milliseconds (it checkpoints); preparing the
    next copy while a test runs hides most of that. Drops happen in the same background thread.
    """

    def __init__(self, server: PostgresServer, template: str, ahead: int = 2) -> None:
        self.server = server
        self.template = template
        self._ready: queue.Queue[str | BaseException] = queue.Queue()
        self._work: queue.Queue[tuple[str, str] | None] = queue.Queue()
        self._thread = threading.Thread(target=self._run, name="pg-clones", daemon=True)
        self._thread.start()
        for _ in range(ahead):
            self._work.put(("create", ""))

    def _run(self) -> None:
        while (item := self._work.get()) is not None:
            action, name = item
            try:
                if action == "create":
                    self._ready.put(self.server.create_database("test", template=self.template))
                else:
                    self.server.drop_database(name)
            except BaseException as exc:
                if action == "create":
                    self._ready.put(exc)

    def take(self) -> str:
        """A database no one else has used; the caller gives it back with ``release``."""
        self._work.put(("create", ""))
        got = self._ready.get(timeout=120)
        if isinstance(got, BaseException):
            raise got
        return got

    def release(self, name: str) -> None:
        self._work.put(("drop", name))

    def close(self) -> None:
        self._work.put(None)
        self._thread.join(timeout=60)
