"""Settings, read from ``CARGOBAY_*`` environment variables (see the README's table)."""

from __future__ import annotations

from functools import cached_property
from pathlib import Path

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict


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
    workers: int = Field(1, ge=1, description="uvicorn worker processes")
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
    in_process_jobs: bool = Field(True, description="run background jobs inside `serve`")
    job_lease_seconds: float = Field(60.0, ge=1, description="a job whose worker died is retried after this")
    job_poll_seconds: float = Field(1.0, gt=0, le=60, description="how often an idle worker looks for jobs")
    job_concurrency: int = Field(2, ge=1, le=64, description="jobs one worker process runs at once")
    job_grace_seconds: float = Field(10.0, ge=0, description="on stop, running jobs get this long to finish")

    @field_validator("listen")
    @classmethod
    def _check_listen(cls, value: str) -> str:
        host, sep, port = value.rpartition(":")
        if not sep or not host or not port.isdigit():
            raise ValueError("listen must be HOST:PORT")
        return value

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
