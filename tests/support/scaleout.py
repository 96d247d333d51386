"""A scale-out deployment in miniature: ``cargobay serve`` processes and ``cargobay worker``s sharing one
PostgreSQL database, one S3 bucket (versitygw) and one master key file, each process with a data
directory of its own (as pods or containers have), configured by the same variables as ``deploy/``
(``tests/deploy`` checks that the compose file and the Helm chart set exactly these).
"""

from __future__ import annotations

import contextlib
import os
from dataclasses import dataclass, field
from pathlib import Path

from cargobay.storage.keys import MasterKeyFile
from tests.support.job_worker import WorkerProcess
from tests.support.postgres import PostgresServer
from tests.support.s3 import S3Server
from tests.support.server import CARGOBAY, Server, wait_for

# Every process of a deployment gets these; each also gets the per-process ones that ``Server.env``
# sets (CARGOBAY_LISTEN, CARGOBAY_DATA_DIR, CARGOBAY_WORKERS, CARGOBAY_ADMIN_*, CARGOBAY_LOG_LEVEL).
SHARED_VARIABLES = (
    "CARGOBAY_DATABASE_URL",
    "CARGOBAY_STORAGE_URL",
    "CARGOBAY_MASTER_KEY_FILE",
    "CARGOBAY_IN_PROCESS_JOBS",
    "CARGOBAY_TRUSTED_PROXIES",
    "AWS_ACCESS_KEY_ID",
    "AWS_SECRET_ACCESS_KEY",
)
PROCESS_VARIABLES = (
    "CARGOBAY_LISTEN",
    "CARGOBAY_DATA_DIR",
    "CARGOBAY_WORKERS",
    "CARGOBAY_ADMIN_USER",
    "CARGOBAY_ADMIN_PASSWORD",
    "CARGOBAY_LOG_LEVEL",
)
DEPLOYMENT_VARIABLES = frozenset(SHARED_VARIABLES + PROCESS_VARIABLES)


def shared_env(
    database_url: str, storage_url: str, master_key_file: Path, s3_env: dict[str, str]
) -> dict[str, str]:
    """The configuration every process of the deployment shares. API processes run no jobs: the
    ``cargobay worker`` processes do; the load balancer's X-Forwarded-For is believed (here the
    load balancer would be on loopback)."""
    env = {
        "CARGOBAY_DATABASE_URL": database_url,
        "CARGOBAY_STORAGE_URL": storage_url,
        "CARGOBAY_MASTER_KEY_FILE": str(master_key_file),
        "CARGOBAY_IN_PROCESS_JOBS": "false",
        "CARGOBAY_TRUSTED_PROXIES": '["127.0.0.1/32"]',
        **s3_env,
    }
    assert set(env) == set(SHARED_VARIABLES)
    return env


@dataclass
class Deployment:
    """Processes on one database, bucket and master key; ``node`` starts another ``serve``."""

    base: Path
    pg: PostgresServer
    s3: S3Server
    database: str
    bucket: str
    admin_user: str = "owner@example.com"
    admin_password: str = "owner-password-1"
    nodes: list[Server] = field(default_factory=list)
    workers: list[WorkerProcess] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.master_key_file = self.base / "secrets" / "master.key"
        MasterKeyFile.create(self.master_key_file)  # in deploy/, a secret mounted into every process

    @property
    def database_url(self) -> str:
        return self.pg.url(self.database)

    def env(self, **overrides: str) -> dict[str, str]:
        """The shared configuration, with ``CARGOBAY_<KEY>`` overrides for one process."""
        env = shared_env(
            self.database_url,
            self.s3.url(self.bucket, "registry", part_size=str(5 * 1024 * 1024)),
            self.master_key_file,
            self.s3.env,
        )
        env.update({f"CARGOBAY_{key.upper()}": value for key, value in overrides.items()})
        return env

    def node(self, start: bool = True, **overrides: str) -> Server:
        server = Server(
            data_dir=self.base / f"node-{len(self.nodes)}" / "data",
            admin_user=self.admin_user,
            admin_password=self.admin_password,
            extra_env=self.env(**overrides),
        )
        self.nodes.append(server)
        if start:
            server.data_dir.mkdir(parents=True, exist_ok=True)
            server.start(timeout=60)
        return server

    def worker(self, *module: str, **overrides: str) -> WorkerProcess:
        """A ``cargobay worker`` (or ``python -m MODULE`` run as one, for test job kinds)."""
        data_dir = self.base / f"worker-{len(self.workers)}" / "data"
        data_dir.mkdir(parents=True)
        env = {k: v for k, v in os.environ.items() if not k.startswith("CARGOBAY_")}
        env.update(self.env(**overrides), CARGOBAY_DATA_DIR=str(data_dir), CARGOBAY_LOG_LEVEL="info")
        command = (
            [CARGOBAY, "worker"] if not module else [str(Path(CARGOBAY).parent / "python"), "-m", *module]
        )
        worker = WorkerProcess(env, data_dir.parent / "worker.log", command)
        self.workers.append(worker)
        wait_for(lambda: "worker_started" in worker.output(), timeout=60, what="worker start")
        return worker

    def close(self) -> None:
        for worker in self.workers:
            worker.stop()
        for node in self.nodes:
            with contextlib.suppress(Exception):
                node.stop()
