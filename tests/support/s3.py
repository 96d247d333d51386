"""A throw-away S3 server for the test session: versitygw (``scripts/install-peers.sh`` builds it),
serving a temporary directory on a free loopback port; each bucket is a directory under it.

In CI (``CI=true``) a server that cannot start fails the tests that need it; elsewhere they skip.
"""

from __future__ import annotations

import itertools
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from cargobay.storage.s3 import S3Store
from tests.support.peers import CACHE, in_ci
from tests.support.server import free_port

ACCESS_KEY = "cargobay-test"
SECRET_KEY = "cargobay-test-secret-key"
_buckets = itertools.count(1)


def find_versitygw() -> str | None:
    chosen = os.environ.get("CARGOBAY_VERSITYGW")
    for candidate in (chosen, str(CACHE / "bin" / "versitygw")):
        if candidate and Path(candidate).is_file() and os.access(candidate, os.X_OK):
            return candidate
    return shutil.which("versitygw")


@dataclass
class S3Server:
    binary: str
    port: int = field(default_factory=free_port)
    root: Path = field(default_factory=lambda: Path(tempfile.mkdtemp(prefix="cargobay-s3-")))
    process: subprocess.Popen[bytes] | None = None

    @property
    def endpoint_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def env(self) -> dict[str, str]:
        """What a client (boto3, or a Cargobay server) needs to reach it."""
        return {"AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}

    def start(self) -> S3Server:
        env = {**os.environ, "ROOT_ACCESS_KEY": ACCESS_KEY, "ROOT_SECRET_KEY": SECRET_KEY}
        log = open(self.root / "versitygw.log", "wb")  # noqa: SIM115 - the process writes to it
        data = self.root / "data"
        data.mkdir()
        self.process = subprocess.Popen(
            [self.binary, "--port", f"127.0.0.1:{self.port}", "posix", str(data)],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"versitygw exited ({self.process.returncode}): {self.log_tail()}")
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.5):
                    return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"versitygw did not listen on {self.port}: {self.log_tail()}")

    def new_bucket(self, prefix: str = "t") -> str:
        """An empty bucket no one else uses (posix backend: a directory)."""
        name = f"{prefix}-{next(_buckets)}-{os.getpid()}"
        (self.root / "data" / name).mkdir()
        return name

    def url(self, bucket: str, prefix: str = "", **params: str) -> str:
        """The ``CARGOBAY_STORAGE_URL`` of a bucket on this server."""
        query = "&".join(
            f"{k}={v}"
            for k, v in {"endpoint_url": self.endpoint_url, "region": "us-east-1", **params}.items()
        )
        return f"s3://{bucket}/{prefix}?{query}"

    def log_tail(self, lines: int = 20) -> str:
        try:
            text = (self.root / "versitygw.log").read_text(errors="replace")
        except OSError:
            return ""
        return "\n".join(text.splitlines()[-lines:])

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(10)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        shutil.rmtree(self.root, ignore_errors=True)


def start_s3_server() -> S3Server:
    """A started server, or a skip (a failure in CI) saying why there is none."""
    binary = find_versitygw()
    if binary is None:
        reason = "versitygw is not installed (run `make peers-test`)"
        if in_ci():
            pytest.fail(reason + ": CI must run the S3 tests")
        pytest.skip(reason)
    try:
        return S3Server(binary).start()
    except RuntimeError as exc:
        if in_ci():
            raise
        pytest.skip(f"versitygw could not start: {exc}")


class Calls:
    """Counts an S3 store's client operations by name (wraps ``store.client``)."""

    def __init__(self, store: S3Store) -> None:
        self.names: list[str] = []
        client = store.client
        calls = self

        class Counting:
            def __getattr__(self, name: str) -> Any:
                attribute = getattr(client, name)
                if not callable(attribute):
                    return attribute

                def counted(*args: Any, **kwargs: Any) -> Any:
                    calls.names.append(name)
                    return attribute(*args, **kwargs)

                return counted

        store.client = Counting()
