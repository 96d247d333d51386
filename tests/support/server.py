"""A real ``cargobay serve`` process on a free loopback port, for end-to-end tests."""

from __future__ import annotations

import os
import shutil
import signal
import socket
import sqlite3
import ssl
import subprocess
import sys
import time
from collections.abc import Callable
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import httpx

VENV_BIN = Path(sys.executable).parent
CARGOBAY = str(VENV_BIN / "cargobay")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@dataclass
class Server:
    data_dir: Path
    admin_user: str = "owner@example.com"
    admin_password: str = "owner-password-1"
    port: int = field(default_factory=free_port)
    workers: int = 1
    extra_env: dict[str, str] = field(default_factory=dict)
    ca_file: Path | None = None  # set when the server serves HTTPS: the CA its certificate chains to
    process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"{'https' if self.ca_file else 'http'}://{self.host}"

    @property
    def verify(self) -> ssl.SSLContext | bool:
        """What httpx should verify this server's certificate against."""
        return ssl.create_default_context(cafile=str(self.ca_file)) if self.ca_file else True

    @property
    def auth(self) -> tuple[str, str]:
        return (self.admin_user, self.admin_password)

    def env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CARGOBAY_")}
        env.update(
            CARGOBAY_DATA_DIR=str(self.data_dir),
            CARGOBAY_LISTEN=self.host,
            CARGOBAY_ADMIN_USER=self.admin_user,
            CARGOBAY_ADMIN_PASSWORD=self.admin_password,
            CARGOBAY_WORKERS=str(self.workers),
            CARGOBAY_LOG_LEVEL="warning",
            # A collection job in a child process costs ~2 s of interpreter start, and every fresh
            # server runs the weekly sweep at once: the suite's hundreds of servers run them inline.
            # The child is the default; test_gc.py, test_gc_crash.py, test_mgmt_gc_runs.py and
            # tests/integration/services/test_gc_child_process.py run it.
            CARGOBAY_GC_IN_CHILD_PROCESS="false",
        )
        env.update(self.extra_env)
        return env

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [CARGOBAY, *args], env=self.env(), capture_output=True, text=True, check=check, timeout=120
        )

    def __enter__(self) -> Server:
        """Start with a fresh (or kept) data dir; ``with`` stops the server however the block ends."""
        self.data_dir.mkdir(parents=True, exist_ok=True)
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.stop()

    def start(self, timeout: float = 30) -> Server:
        with open(self.data_dir.parent / f"server-{self.port}.log", "ab") as log:
            self.process = subprocess.Popen(
                [CARGOBAY, "serve"],
                env=self.env(),
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"cargobay serve exited with {self.process.returncode}: {self.log_tail()}")
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1, verify=self.verify).status_code == 200:
                    return self
            except httpx.HTTPError:
                pass
            time.sleep(0.1)
        self.stop()
        raise RuntimeError(f"cargobay serve did not become healthy: {self.log_tail()}")

    def log_tail(self, lines: int = 40) -> str:
        path = self.data_dir.parent / f"server-{self.port}.log"
        try:
            return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def kill(self) -> None:
        """SIGKILL the whole process group: no shutdown hooks run."""
        if self.process is not None and self.process.poll() is None:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def create_registry(self, name: str, contract: int | None = None) -> str:
        """Create a registry in ``contract`` (default: the owner's); returns its id."""
        number = contract if contract is not None else self.owner_contract()
        extra = ["--contract", str(number)] if number is not None else []
        out = self.cli("registry", "create", name, *extra).stdout
        return out.split("(", 1)[1].split(")", 1)[0]

    def owner_contract(self) -> int | None:
        """The bootstrap owner's contract; None before the first start or on another database
        (the CLI then bootstraps, and picks the only contract)."""
        path = self.data_dir / "cargobay.db"
        if "CARGOBAY_DATABASE_URL" in self.extra_env or not path.exists():
            return None
        with closing(sqlite3.connect(f"file:{path}?mode=ro", uri=True)) as db:
            row = db.execute(
                "SELECT m.contract_number FROM memberships m JOIN users u ON u.id = m.user_id "
                "WHERE u.email = ? ORDER BY m.contract_number LIMIT 1",
                (self.admin_user.lower(),),
            ).fetchone()
        return int(row[0]) if row is not None else None

    def signing_key(self) -> bytes:
        """The key the server signs JWTs with (from its database, unwrapped with its master key)."""
        from cargobay.db.engine import Database
        from cargobay.services.keys import signing_key
        from cargobay.storage.keys import MasterKeyFile

        db = Database(f"sqlite:///{self.data_dir / 'cargobay.db'}")
        try:
            return signing_key(db, MasterKeyFile(self.data_dir / "master.key"))
        finally:
            db.dispose()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.data_dir, ignore_errors=True)


def wait_for(check: Callable[[], bool], timeout: float = 30, what: str = "condition") -> None:
    """Poll ``check`` until it holds; fail the test after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not check():
        if time.monotonic() > deadline:
            raise AssertionError(f"{what} not reached in {timeout} s")
        time.sleep(0.05)
