"""The one composition root: settings, database, blob store, keys and every service, built once.

The registry and management APIs, the worker and the CLI all take their parts from a ``Runtime``;
nothing else constructs a service or loads a key, so a process holds one of each (one pull recorder,
one set of upload-session locks, one JWT key) whichever layers it serves.

What a process remembers between requests, and how long another process's change may go unseen here
(scale-out runs many processes on one database; the README's "Scale-out" lists the same):

* ``RegistryAccess``: a bearer JWT's registry-token standing (usable, with the scopes it had at issue),
  re-read after ``SUBJECT_RECHECK_SECONDS`` (1 s); Basic logins, re-checked against the credential's
  row on every use (0 s).
* ``auth.passwords``: successful argon2 checks, keyed by the stored hash (a changed one misses: 0 s).
* ``TokenSigner``: verified JWT signatures (the subject is re-checked as above); the key never changes.
* ``DataKeys``: unwrapped data keys, which never change (rotation re-wraps them).
* ``PullRecorder``: pull counts, written every second (statistics only).
* Nothing else: tags, manifests, repositories, registries, allowlists, tokens' scopes and catalogs are
  read from the database on each request.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass, field
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING

from cargobay.auth.jwt_tokens import TokenSigner
from cargobay.auth.management import ManagementAuthenticator, ManagementTokenSigner
from cargobay.auth.registry_access import RegistryAccess
from cargobay.config import Settings
from cargobay.db.engine import Database
from cargobay.db.migrate import has_schema, upgrade
from cargobay.outages import DiskGuard
from cargobay.services.encryption import record_plaintext_writes
from cargobay.services.keys import DataKeys, activate, open_master_key_file, signing_key
from cargobay.storage.base import BlobStore, RedirectReads, StorageConfigError
from cargobay.storage.encrypted import EncryptedStore
from cargobay.storage.factory import open_store
from cargobay.storage.keys import MasterKeyFile
from cargobay.storage.sealing import AeadSealer, PlainSealer, Sealer

if TYPE_CHECKING:
    from cargobay.services.api_tokens import ApiTokenService
    from cargobay.services.artifacts import ArtifactService
    from cargobay.services.blobs import BlobService
    from cargobay.services.catalog import Catalog
    from cargobay.services.gc import GarbageCollector
    from cargobay.services.manifests import ManifestService
    from cargobay.services.registry_admin import RegistryAdmin
    from cargobay.services.repository_admin import RepositoryAdmin
    from cargobay.services.scanning import ScanService
    from cargobay.services.stats import PullRecorder
    from cargobay.services.tenancy import Tenancy
    from cargobay.services.tokens import OperatorTokens, TokenService
    from cargobay.services.uploads import UploadService
    from cargobay.services.vulndb import VulnerabilityDatabase
    from cargobay.services.vulnerabilities import VulnerabilityService


class Services:
    """The use cases, shared by the registry API, the management API, the console, the CLI and jobs.

    Each is made (and its module imported) on first use: a CLI command that adds a user starts in
    half the time when it does not import the scanner, the collector and the upload machinery.
    """

    def __init__(
        self, settings: Settings, db: Database, store: BlobStore, sealer: Sealer, auth: Auth
    ) -> None:
        self._settings, self._db, self._store, self._sealer, self._auth = settings, db, store, sealer, auth

    @cached_property
    def registries(self) -> RegistryAdmin:
        from cargobay.services.registry_admin import RegistryAdmin

        return RegistryAdmin(self._db, self._store)

    @cached_property
    def tokens(self) -> TokenService:
        from cargobay.services.tokens import TokenService

        return TokenService(self._db)

    @cached_property
    def operator_tokens(self) -> OperatorTokens:
        from cargobay.services.tokens import OperatorTokens

        return OperatorTokens(self._db)

    @cached_property
    def repositories(self) -> RepositoryAdmin:
        from cargobay.services.repository_admin import RepositoryAdmin

        return RepositoryAdmin(self._db)

    @cached_property
    def artifacts(self) -> ArtifactService:
        from cargobay.services.artifacts import ArtifactService

        return ArtifactService(self._db, self.vulnerabilities, self.scans)

    @cached_property
    def api_tokens(self) -> ApiTokenService:
        from cargobay.services.api_tokens import ApiTokenService

        return ApiTokenService(self._db, self._auth.management_tokens)

    @cached_property
    def tenancy(self) -> Tenancy:
        from cargobay.services.tenancy import Tenancy

        return Tenancy(self._db)

    @cached_property
    def blobs(self) -> BlobService:
        from cargobay.services.blobs import BlobService

        return BlobService(self._db, self._store)

    @cached_property
    def uploads(self) -> UploadService:
        from cargobay.services.uploads import UploadService

        return UploadService(self._db, self._store, self._settings.upload_expiry_seconds)

    @cached_property
    def manifests(self) -> ManifestService:
        from cargobay.services.manifests import ManifestService

        return ManifestService(self._db, self._sealer)

    @cached_property
    def catalog(self) -> Catalog:
        from cargobay.services.catalog import Catalog

        return Catalog(self._db)

    @cached_property
    def pulls(self) -> PullRecorder:
        from cargobay.services.stats import PullRecorder

        return PullRecorder(self._db)

    @cached_property
    def vulndb(self) -> VulnerabilityDatabase:
        from cargobay.services.vulndb import VulnerabilityDatabase

        return VulnerabilityDatabase(self._db)

    @cached_property
    def scans(self) -> ScanService:
        from cargobay.services.scanning import ScanService

        return ScanService(self._db, self._store, self._sealer, self.vulndb)

    @cached_property
    def vulnerabilities(self) -> VulnerabilityService:
        from cargobay.services.vulnerabilities import VulnerabilityService

        return VulnerabilityService(self._db, self.vulndb)

    @cached_property
    def gc(self) -> GarbageCollector:
        from cargobay.services.gc import GarbageCollector

        return GarbageCollector(
            self._db,
            self._store,
            self.uploads,
            grace_seconds=self._settings.gc_grace_seconds,
            sweep_keys_per_second=self._settings.gc_sweep_keys_per_second,
        )


@dataclass(frozen=True)
class Auth:
    """Who is calling: the registry API's gate and token signer, the management API's authenticator
    (which the console's sessions use too), and the console's key for its form tokens (CSRF)."""

    registry: RegistryAccess
    registry_tokens: TokenSigner
    management: ManagementAuthenticator
    management_tokens: ManagementTokenSigner
    console_key: bytes


@dataclass
class Runtime:
    settings: Settings
    db: Database
    store: BlobStore
    sealer: Sealer
    services: Services
    auth: Auth
    master_keys: MasterKeyFile | None = None  # None when encryption at rest is off
    guard: DiskGuard = field(default_factory=lambda: DiskGuard(None))

    async def close(self) -> None:
        await self.store.close()
        self.db.dispose()


def installation_problem(settings: Settings) -> str | None:
    """Why there is no installation where the settings point (None when there is one)."""
    if settings.database_url is None:
        database = settings.data_dir / "cargobay.db"
        if not database.is_file():
            return (
                f"no Cargobay installation in {settings.data_dir.resolve()} (no {database.name} there): "
                "set CARGOBAY_DATA_DIR or --data-dir to the data directory of the installation, "
                "or start one with `cargobay serve`"
            )
        return None
    db = Database(settings.resolved_database_url)
    try:
        if not has_schema(db.engine):
            return (
                "the database named by CARGOBAY_DATABASE_URL holds no Cargobay installation: "
                "run `cargobay migrate` (or start `cargobay serve`) against it first"
            )
    except Exception as exc:
        return f"cannot reach the database named by CARGOBAY_DATABASE_URL: {type(exc).__name__}: {exc}"
    finally:
        db.dispose()
    return None


def build_runtime(settings: Settings, migrate: bool = True) -> Runtime:
    driver = open_store(settings.resolved_storage_url)  # a bad URL stops us before the database is touched
    if settings.encryption and isinstance(driver, RedirectReads) and driver.redirects:
        raise StorageConfigError(
            "redirect=true needs CARGOBAY_ENCRYPTION=false: with encryption at rest the bucket holds "
            "ciphertext, which clients sent there could not read"
        )
    db = Database(settings.resolved_database_url)
    if migrate:
        upgrade(db.engine)
    store: BlobStore = driver
    master_keys: MasterKeyFile | None = None
    sealer: Sealer
    if not settings.encryption:
        record_plaintext_writes(db)
        sealer = PlainSealer()
    else:
        master_keys = open_master_key_file(
            db, settings.resolved_master_key_file, configured=settings.master_key_file is not None
        )
        _, plaintext_may_exist = activate(db, master_keys)
        keys = DataKeys(db, master_keys)
        store = EncryptedStore(driver, keys, allow_plaintext=plaintext_may_exist)
        sealer = AeadSealer(keys, allow_plaintext=plaintext_may_exist)
    runtime = assemble(settings, db, store, sealer, master_keys)
    runtime.guard = DiskGuard(_shared_disk(settings), settings.space_reserve_mb * 1024 * 1024)
    return runtime


def _shared_disk(settings: Settings) -> Path | None:
    """The data directory, when the database or the blobs live there (the embedded default)."""
    local_db = settings.database_url is None
    local_blobs = settings.storage_url is None or settings.storage_url.startswith("file:")
    return settings.data_dir if local_db or local_blobs else None


def assemble(
    settings: Settings,
    db: Database,
    store: BlobStore,
    sealer: Sealer,
    master_keys: MasterKeyFile | None = None,
) -> Runtime:
    """Wire the services and auth on given parts (``build_runtime`` opens them; tests pass their own)."""
    auth = build_auth(settings, db, master_keys)
    services = Services(settings, db, store, sealer, auth)
    return Runtime(settings, db, store, sealer, services, auth, master_keys)


def build_auth(settings: Settings, db: Database, keys: MasterKeyFile | None) -> Auth:
    # Every process of the deployment signs with the one key in the database (an earlier release kept
    # it in {data dir}/jwt.key: that key is taken over, so management API tokens stay valid).
    key = signing_key(db, keys, "jwt", legacy=settings.data_dir / "jwt.key")
    registry_tokens = TokenSigner(key, settings.token_ttl_seconds)
    management_tokens = ManagementTokenSigner(key)
    return Auth(
        registry=RegistryAccess(db, registry_tokens, settings.trusted_proxies),
        registry_tokens=registry_tokens,
        management=ManagementAuthenticator(db, management_tokens),
        management_tokens=management_tokens,
        console_key=hmac.new(key, b"cargobay console forms v1", hashlib.sha256).digest(),
    )
