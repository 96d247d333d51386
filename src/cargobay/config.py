"""Settings, read from ``CARGOBAY_*`` environment variables (see the README's table)."""

from __future__ import annotations

import os
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

OSV_BUCKET = "https://osv-vulnerabilities.storage.googleapis.com"
# The OSV ecosystems whose versions the matcher can order (scanning/versions.py), as osv.dev names
# its per-ecosystem dumps.
VULNDB_ECOSYSTEMS = (
    "Debian",
    "Ubuntu",
    "Alpine",
    "Wolfi",
    "Chainguard",
    "Red Hat",
    "Rocky Linux",
    "AlmaLinux",
    "PyPI",
    "npm",
    "Go",
    "Maven",
    "crates.io",
)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="CARGOBAY_", extra="ignore")

    listen: str = Field("127.0.0.1:5000", description="HOST:PORT the server binds to")
    data_dir: Path = Field(Path("./data"), description="where the embedded default keeps its state")
    database_url: str | None = Field(None, description="SQLAlchemy URL; default SQLite in the data dir")
    storage_url: str | None = Field(None, description="blob storage; default filesystem in the data dir")
    master_key_file: Path | None = Field(None, description="master key; default generated in the data dir")
    encryption: bool = Field(True, description="encrypt blobs and manifests at rest")
    admin_user: str | None = Field(None, description="bootstrap contract owner (first start)")
    admin_password: str | None = Field(None, description="bootstrap owner's password")
    registry_domain: str | None = Field(None, description="hostnames are {registry}.{domain} when set")
    public_url: str | None = Field(None, description="external base URL used in links; default from Host")
    workers: int | None = Field(
        None,
        ge=1,
        le=64,
        description="worker processes; default: one per CPU, at most 8 (see default_workers)",
    )
    # The floor is 1 s (not a minute) so tests can watch an upload expire; deployments use hours.
    upload_expiry_seconds: int = Field(24 * 3600, ge=1, description="abandoned uploads expire after")
    token_ttl_seconds: int = Field(300, ge=5, le=300, description="lifetime of /auth/token JWTs (5 s..5 min)")
    trusted_proxies: list[str] = Field(
        default_factory=list, description="CIDRs whose X-Forwarded-For is believed"
    )
    locations: list[str] = Field(
        default_factory=lambda: ["de/fra", "de/txl", "es/vit", "gb/lhr", "fr/par", "us/ewr"],
        description="location ids registries may be created in",
    )
    log_level: str = Field("info", description="debug, info, warning or error")
    log_format: Literal["console", "json"] = Field("console", description="key=value lines, or JSON")
    access_log: bool = Field(True, description="one line per request (method, route, status, bytes, time…)")
    tls_cert_file: Path | None = Field(None, description="serve HTTPS with this certificate (PEM, chain)")
    tls_key_file: Path | None = Field(None, description="the certificate's private key (PEM)")
    head_timeout_seconds: float = Field(
        10.0, gt=0, le=300, description="a connection whose request head is not complete by then is dropped"
    )
    max_connections: int | None = Field(
        None, ge=16, description="connections (and requests) one process serves at once; more get 503"
    )
    retry_after_seconds: int = Field(5, ge=1, le=3600, description="Retry-After of a 503 for a passing fault")
    space_reserve_mb: int = Field(
        32, ge=0, le=4096, description="disk space held back in the data dir so deletes work on a full disk"
    )
    in_process_jobs: bool = Field(True, description="run background jobs inside `serve`")
    gc_in_child_process: bool = Field(
        True,
        description="`serve` runs garbage collection jobs in a child process each, off the serving "
        "process (false: inside it)",
    )
    job_lease_seconds: float = Field(60.0, ge=1, description="a job whose worker died is retried after this")
    job_poll_seconds: float = Field(1.0, gt=0, le=60, description="how often an idle worker looks for jobs")
    job_concurrency: int = Field(2, ge=1, le=64, description="jobs one worker process runs at once")
    job_grace_seconds: float = Field(10.0, ge=0, description="on stop, running jobs get this long to finish")
    vulndb_url: str = Field(OSV_BUCKET, description="where `vulndb sync` fetches {ecosystem}/all.zip from")
    vulndb_ecosystems: Annotated[list[str], NoDecode] = Field(
        default_factory=lambda: list(VULNDB_ECOSYSTEMS),
        description="the OSV ecosystems `vulndb sync` fetches (comma-separated or a JSON list)",
    )
    vulndb_sync_seconds: float = Field(
        0, ge=0, description="sync the vulnerability database this often in the background (0: never)"
    )

    @field_validator("vulndb_ecosystems", mode="before")
    @classmethod
    def _split_ecosystems(cls, value: Any) -> Any:
        if isinstance(value, str):
            text = value.strip()
            if text.startswith("["):
                import json

                return json.loads(text)
            return [part.strip() for part in text.split(",") if part.strip()]
        return value

    # Garbage collection: a blob (or untagged manifest) is collected only once this long has passed
    # since its last reference change; 0 is for tests (pushes racing a collection may then be refused).
    gc_grace_seconds: int = Field(24 * 3600, ge=0, description="grace period of scheduled and API GC runs")
    gc_sweep_keys_per_second: float = Field(
        10_000, ge=0, description="pace of the GC sweep's listing of the blob store (0: unpaced)"
    )

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError("listen must be HOST:PORT")
        return value

    @model_validator(mode="after")
    def _tls_needs_both(self) -> Settings:
        if (self.tls_cert_file is None) != (self.tls_key_file is None):
            raise ValueError("TLS needs both CARGOBAY_TLS_CERT_FILE and CARGOBAY_TLS_KEY_FILE")
        return self

    @property
    def tls(self) -> bool:
        return self.tls_cert_file is not None

    @property
    def worker_count(self) -> int:
        return self.workers if self.workers is not None else default_workers()

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0].strip("[]")

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    @cached_property
    def resolved_database_url(self) -> str:
        if self.database_url:
            url = self.database_url
            if url.startswith("postgresql://") or url.startswith("postgres://"):
                url = "postgresql+psycopg://" + url.split("://", 1)[1]
            return url
        return f"sqlite:///{(self.data_dir / 'cargobay.db').resolve()}"

    @cached_property
    def resolved_storage_url(self) -> str:
        return self.storage_url or f"file://{(self.data_dir / 'storage').resolve()}"

    @cached_property
    def resolved_master_key_file(self) -> Path:
        return self.master_key_file or self.data_dir / "master.key"


def default_workers() -> int:
    """One worker process per CPU this process may use, at most 8 (SQLite serialises writers, and
    past 8 the database, not Python, limits a single machine)."""
    try:
        cpus = len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        cpus = os.cpu_count() or 1
    return max(1, min(cpus, 8))
