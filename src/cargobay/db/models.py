"""The metadata schema. One owner per fact: tags, manifests and references live here, never in storage."""

from __future__ import annotations

from datetime import datetime
from typing import Any, cast

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    SmallInteger,
    String,
    Table,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column

from cargobay.db.types import UtcDateTime, utcnow

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)
    type_annotation_map = {datetime: UtcDateTime(), dict[str, Any]: JSON(), list[Any]: JSON()}


def table_of(model: type[Base]) -> Table:
    """A model's Core table: bulk statements on it skip the ORM's per-row bookkeeping."""
    return cast(Table, model.__table__)


class Contract(Base):
    __tablename__ = "contracts"

    number: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    name: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class User(Base):
    __tablename__ = "users"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    email: Mapped[str] = mapped_column(String(254), unique=True)
    password_hash: Mapped[str] = mapped_column(String(200))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Membership(Base):
    """A user's role in a contract: owner | admin | user, plus the manageRegistry permission."""

    __tablename__ = "memberships"

    contract_number: Mapped[int] = mapped_column(
        ForeignKey("contracts.number", ondelete="CASCADE"), primary_key=True
    )
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), primary_key=True)
    role: Mapped[str] = mapped_column(String(16))
    manage_registry: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ApiToken(Base):
    """A management-API bearer token issued by /auth/v1/tokens/generate (the JWT itself is not stored)."""

    __tablename__ = "api_tokens"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    user_id: Mapped[str] = mapped_column(ForeignKey("users.id", ondelete="CASCADE"), index=True)
    contract_number: Mapped[int] = mapped_column(
        ForeignKey("contracts.number", ondelete="CASCADE"), index=True
    )
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    expires_at: Mapped[datetime] = mapped_column(index=True)


class Registry(Base):
    __tablename__ = "registries"
    __table_args__ = (Index("ix_registries_contract_name", "contract_number", "name"),)  # lists by name

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    contract_number: Mapped[int] = mapped_column(
        ForeignKey("contracts.number", ondelete="CASCADE"), index=True
    )
    name: Mapped[str] = mapped_column(String(63), unique=True)
    location: Mapped[str] = mapped_column(String(32))
    state: Mapped[str] = mapped_column(String(32), default="New")
    gc_days: Mapped[list[Any] | None] = mapped_column(JSON, nullable=True)
    gc_time: Mapped[str | None] = mapped_column(String(32), nullable=True)
    gc_schedule_since: Mapped[datetime | None] = mapped_column(nullable=True)  # when the schedule was set
    gc_next_window_at: Mapped[datetime | None] = mapped_column(nullable=True, index=True)  # scheduler's
    # What garbage collection does with untagged manifests nothing references: keep | delete
    gc_untagged_manifests: Mapped[str] = mapped_column(String(16), default="keep", server_default="keep")
    vulnerability_scanning: Mapped[bool] = mapped_column(Boolean, default=True)
    allowlist: Mapped[list[Any]] = mapped_column(JSON, default=list)
    wrapped_data_key: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    master_key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    storage_bytes: Mapped[int] = mapped_column(BigInteger, default=0)
    storage_updated_at: Mapped[datetime | None] = mapped_column(nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(254), default="")
    created_by_user_id: Mapped[str] = mapped_column(String(36), default="")
    modified_at: Mapped[datetime | None] = mapped_column(nullable=True)
    modified_by: Mapped[str | None] = mapped_column(String(254), nullable=True)
    modified_by_user_id: Mapped[str | None] = mapped_column(String(36), nullable=True)


class EncryptionState(Base):
    """What every process must agree on about encryption at rest; a single row (id 1).

    ``active_master_key_id`` is the master key new data keys are wrapped with (each registry row
    records the key that wrapped its own data key). ``plaintext_may_exist`` is true while data written
    without encryption may remain; only then is unsealed data read, so nobody can downgrade sealed
    data by replacing it with plaintext.
    """

    __tablename__ = "encryption_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    active_master_key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    plaintext_may_exist: Mapped[bool] = mapped_column(Boolean, default=False)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class SigningKey(Base):
    """A secret every process of a deployment shares (the JWT signing key), wrapped by the master key
    when encryption at rest is on (``master_key_id`` names it; NULL: stored as it is)."""

    __tablename__ = "signing_keys"

    name: Mapped[str] = mapped_column(String(32), primary_key=True)
    secret: Mapped[bytes] = mapped_column(LargeBinary)
    master_key_id: Mapped[str | None] = mapped_column(String(32), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class Token(Base):
    """A registry credential: username = name, password stored only as a hash."""

    __tablename__ = "tokens"
    __table_args__ = (
        UniqueConstraint("registry_id", "name"),
        # path-style logins: a token by name and password lookup, or the oldest of a name without one
        Index("ix_tokens_name_lookup", "name", "password_lookup", "created_at"),
        # the management list: unexpired tokens of a registry in name order, counted and paged in the index
        Index("ix_tokens_listing", "registry_id", "name", "expiry_date"),
    )

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    registry_id: Mapped[str] = mapped_column(ForeignKey("registries.id", ondelete="CASCADE"), index=True)
    name: Mapped[str] = mapped_column(String(63))
    password_hash: Mapped[str] = mapped_column(String(200))
    # sha256 of the generated password (see auth.credentials.password_lookup); NULL on older tokens
    password_lookup: Mapped[str | None] = mapped_column(String(64), nullable=True, index=True)
    status: Mapped[str] = mapped_column(String(16), default="enabled")
    expiry_date: Mapped[datetime | None] = mapped_column(nullable=True)
    scopes: Mapped[list[Any]] = mapped_column(JSON, default=list)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    created_by: Mapped[str] = mapped_column(String(254), default="")
    created_by_user_id: Mapped[str] = mapped_column(String(36), default="")
    modified_at: Mapped[datetime | None] = mapped_column(nullable=True)
    modified_by: Mapped[str | None] = mapped_column(String(254), nullable=True)
    modified_by_user_id: Mapped[str | None] = mapped_column(String(36), nullable=True)


class Repository(Base):
    """The management list orders a registry's repositories by an index (registry_id, key, name) for
    each orderBy key but name (the unique constraint) and artifactCount (not stored)."""

    __tablename__ = "repositories"
    __table_args__ = (
        UniqueConstraint("registry_id", "name"),
        Index("ix_repositories_last_push", "registry_id", "last_pushed_at", "name"),
        Index("ix_repositories_last_pull", "registry_id", "last_pulled_at", "name"),
        Index("ix_repositories_pulls", "registry_id", "pull_count", "name"),
        Index("ix_repositories_pushes", "registry_id", "push_count", "name"),
        Index("ix_repositories_severity", "registry_id", "last_severity", "name"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    registry_id: Mapped[str] = mapped_column(ForeignKey("registries.id", ondelete="CASCADE"))
    name: Mapped[str] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    push_count: Mapped[int] = mapped_column(BigInteger, default=0)
    pull_count: Mapped[int] = mapped_column(BigInteger, default=0)
    last_pushed_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_pulled_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # The last pushed artifact (referrers aside) and its highest severity rank (see Manifest), kept in
    # step by the push path and by scans; NULL until that artifact has a result.
    last_manifest_id: Mapped[int | None] = mapped_column(Integer, nullable=True)
    last_severity: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)


class Blob(Base):
    """Content stored once per registry; ``object_key`` names its bytes in the blob store."""

    __tablename__ = "blobs"
    __table_args__ = (
        UniqueConstraint("registry_id", "digest"),
        Index("ix_blobs_object_key", "object_key"),  # the GC sweep asks which row names an object
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    registry_id: Mapped[str] = mapped_column(ForeignKey("registries.id", ondelete="CASCADE"))
    digest: Mapped[str] = mapped_column(String(140))
    size: Mapped[int] = mapped_column(BigInteger)
    object_key: Mapped[str] = mapped_column(String(300))
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class RepositoryBlob(Base):
    """A blob is readable in a repository only once pushed or mounted there (no cross-repo leaks)."""

    __tablename__ = "repository_blobs"

    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True
    )
    blob_id: Mapped[int] = mapped_column(ForeignKey("blobs.id", ondelete="CASCADE"), primary_key=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_repository_blobs_blob_id", "blob_id"),)


class Manifest(Base):
    """A manifest in a repository. ``body`` holds the exact pushed bytes (sealed when encryption is on).

    The management lists of a registry's and of a repository's artifacts read one index
    (scope, key, id) per orderBy key, and (scope, id) for the keys without data yet.
    """

    __tablename__ = "manifests"
    __table_args__ = (
        UniqueConstraint("repository_id", "digest"),
        Index("ix_manifests_subject", "repository_id", "subject_digest"),
        Index("ix_manifests_registry_order", "registry_id", "id"),
        Index("ix_manifests_registry_push", "registry_id", "pushed_at", "id"),
        Index("ix_manifests_registry_pull", "registry_id", "pulled_at", "id"),
        Index("ix_manifests_registry_pulls", "registry_id", "pull_count", "id"),
        Index("ix_manifests_registry_pushes", "registry_id", "push_count", "id"),
        Index("ix_manifests_repository_order", "repository_id", "id"),
        Index("ix_manifests_repository_push", "repository_id", "pushed_at", "id"),
        Index("ix_manifests_repository_pull", "repository_id", "pulled_at", "id"),
        Index("ix_manifests_repository_pulls", "repository_id", "pull_count", "id"),
        Index("ix_manifests_repository_pushes", "repository_id", "push_count", "id"),
        # vulnerability scanning: manifests of an inventory, and the artifact list orders on scan results
        Index("ix_manifests_registry_digest", "registry_id", "digest"),
        Index("ix_manifests_scan_status", "scan_status", "registry_id"),
        Index("ix_manifests_registry_scan", "registry_id", "scanned_at", "id"),
        Index("ix_manifests_registry_vulns", "registry_id", "vuln_total_count", "id"),
        Index("ix_manifests_registry_fixable", "registry_id", "vuln_fixable_count", "id"),
        Index("ix_manifests_repository_scan", "repository_id", "scanned_at", "id"),
        Index("ix_manifests_repository_severity", "repository_id", "vuln_max_severity", "id"),
        Index("ix_manifests_repository_score", "repository_id", "vuln_total_score", "id"),
        Index("ix_manifests_repository_vulns", "repository_id", "vuln_total_count", "id"),
        Index("ix_manifests_repository_fixable", "repository_id", "vuln_fixable_count", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    registry_id: Mapped[str] = mapped_column(ForeignKey("registries.id", ondelete="CASCADE"))
    repository_id: Mapped[int] = mapped_column(ForeignKey("repositories.id", ondelete="CASCADE"))
    digest: Mapped[str] = mapped_column(String(140))
    media_type: Mapped[str] = mapped_column(String(255))
    artifact_type: Mapped[str | None] = mapped_column(String(255), nullable=True)
    subject_digest: Mapped[str | None] = mapped_column(String(140), nullable=True)
    size: Mapped[int] = mapped_column(BigInteger)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    pushed_at: Mapped[datetime] = mapped_column(default=utcnow)
    pulled_at: Mapped[datetime | None] = mapped_column(nullable=True)
    push_count: Mapped[int] = mapped_column(BigInteger, default=0)
    pull_count: Mapped[int] = mapped_column(BigInteger, default=0)
    # Vulnerability scanning (services/scanning.py). ``scan_status``: NULL never queued (scanning off),
    # pending, scanned, failed (an image that cannot be read), unsupported (not an image), skipped (a
    # repository name the scanner refuses). The summary columns are NULL until a scan has counted them;
    # ``vuln_max_severity`` is a rank of scanning.severity.LEVELS (0 unknown .. 5 critical).
    scan_status: Mapped[str | None] = mapped_column(String(16), nullable=True)
    scanned_at: Mapped[datetime | None] = mapped_column(nullable=True)
    scan_db_version: Mapped[int | None] = mapped_column(Integer, nullable=True)
    vuln_max_severity: Mapped[int | None] = mapped_column(SmallInteger, nullable=True)
    vuln_total_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    vuln_fixable_count: Mapped[int | None] = mapped_column(Integer, nullable=True)
    vuln_total_score: Mapped[float | None] = mapped_column(Float, nullable=True)


class ManifestBlob(Base):
    __tablename__ = "manifest_blobs"

    manifest_id: Mapped[int] = mapped_column(ForeignKey("manifests.id", ondelete="CASCADE"), primary_key=True)
    blob_id: Mapped[int] = mapped_column(ForeignKey("blobs.id", ondelete="CASCADE"), primary_key=True)

    __table_args__ = (Index("ix_manifest_blobs_blob_id", "blob_id"),)


class ManifestChild(Base):
    """An index's reference to another manifest of the same repository, by digest."""

    __tablename__ = "manifest_children"

    manifest_id: Mapped[int] = mapped_column(ForeignKey("manifests.id", ondelete="CASCADE"), primary_key=True)
    child_digest: Mapped[str] = mapped_column(String(140), primary_key=True)

    __table_args__ = (Index("ix_manifest_children_child_digest", "child_digest"),)  # indexes of a child


class Tag(Base):
    __tablename__ = "tags"

    repository_id: Mapped[int] = mapped_column(
        ForeignKey("repositories.id", ondelete="CASCADE"), primary_key=True
    )
    name: Mapped[str] = mapped_column(String(128), primary_key=True)
    manifest_id: Mapped[int] = mapped_column(ForeignKey("manifests.id", ondelete="CASCADE"), index=True)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow)


class Upload(Base):
    """An upload session: its storage writer's state (JSON) and running digest let any process take
    the next chunk; ``object_key`` names where the release before writers staged its bytes."""

    __tablename__ = "uploads"

    id: Mapped[str] = mapped_column(String(36), primary_key=True)
    registry_id: Mapped[str] = mapped_column(ForeignKey("registries.id", ondelete="CASCADE"), index=True)
    repository_name: Mapped[str] = mapped_column(String(255))
    object_key: Mapped[str] = mapped_column(String(300))
    size: Mapped[int] = mapped_column(BigInteger, default=0)
    storage_state: Mapped[str | None] = mapped_column(Text, default=None)
    hash_state: Mapped[bytes | None] = mapped_column(LargeBinary, default=None)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    updated_at: Mapped[datetime] = mapped_column(default=utcnow, index=True)


class Job(Base):
    """The durable job queue: claimed with a lease, retried when the lease runs out (see cargobay.jobs).

    ``status`` is queued | running | succeeded | failed. A queued job is due at ``run_at``; a running
    one is reclaimable once ``lease_expires_at`` has passed. ``attempts`` counts claims.
    """

    __tablename__ = "jobs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    kind: Mapped[str] = mapped_column(String(64))
    payload: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    dedupe_key: Mapped[str | None] = mapped_column(String(200), nullable=True, unique=True)
    concurrency_key: Mapped[str | None] = mapped_column(String(200), nullable=True)
    status: Mapped[str] = mapped_column(String(16), default="queued")
    run_at: Mapped[datetime] = mapped_column(default=utcnow)
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    max_attempts: Mapped[int] = mapped_column(Integer, default=5)
    lease_owner: Mapped[str | None] = mapped_column(String(64), nullable=True)
    lease_expires_at: Mapped[datetime | None] = mapped_column(nullable=True)
    last_error: Mapped[str | None] = mapped_column(Text, nullable=True)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON(none_as_null=True), nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)

    __table_args__ = (
        Index("ix_jobs_claim", "status", "run_at"),
        Index("ix_jobs_lease", "status", "lease_expires_at"),
        Index("ix_jobs_concurrency", "concurrency_key", "status"),
    )


# -- vulnerability scanning ---------------------------------------------------------------------------
#
# The vulnerability database (OSV records) is global; everything derived from pushed content is kept per
# registry (tenants never share a cache entry). Inventories and SBOMs are zlib-compressed JSON, sealed with
# the registry's data key like manifest bodies.


class Advisory(Base):
    """One OSV record as imported (``body``: its JSON, zlib-compressed); upserted by id and ``modified``.

    A withdrawn record stays (so an older copy is not imported again) but has no package rows.
    """

    __tablename__ = "advisories"

    id: Mapped[str] = mapped_column(String(255), primary_key=True)
    modified: Mapped[datetime] = mapped_column()
    published: Mapped[datetime | None] = mapped_column(nullable=True)
    withdrawn: Mapped[datetime | None] = mapped_column(nullable=True)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    imported_at: Mapped[datetime] = mapped_column(default=utcnow)


class AdvisoryPackage(Base):
    """The (ecosystem, normalised name) keys an advisory is looked up by: a match is an index range."""

    __tablename__ = "advisory_packages"

    ecosystem: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(Text, primary_key=True)
    advisory_id: Mapped[str] = mapped_column(
        ForeignKey("advisories.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class AdvisoryAlias(Base):
    """Every id an advisory answers to: its own, ``aliases``, ``upstream`` and the CVE it stands for."""

    __tablename__ = "advisory_aliases"

    alias: Mapped[str] = mapped_column(String(255), primary_key=True)
    advisory_id: Mapped[str] = mapped_column(
        ForeignKey("advisories.id", ondelete="CASCADE"), primary_key=True, index=True
    )


class AdvisoryChange(Base):
    """A package key whose advisories changed; ``version`` is NULL until the import that wrote it ends
    (the rescan re-matches inventories holding keys changed after its last run)."""

    __tablename__ = "advisory_changes"
    __table_args__ = (Index("ix_advisory_changes_key", "ecosystem", "name", "version"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    version: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    ecosystem: Mapped[str] = mapped_column(String(100))
    name: Mapped[str] = mapped_column(Text)


class VulnDbState(Base):
    """The vulnerability database's version (one row, id 1): bumped by every import that changed it."""

    __tablename__ = "vulndb_state"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    version: Mapped[int] = mapped_column(Integer, default=0)
    rescanned_version: Mapped[int] = mapped_column(Integer, default=0)
    advisories: Mapped[int] = mapped_column(Integer, default=0)
    updated_at: Mapped[datetime | None] = mapped_column(nullable=True)


class VulnDbSource(Base):
    """A dump ``vulndb sync`` fetches, with the validators for its next conditional request."""

    __tablename__ = "vulndb_sources"

    url: Mapped[str] = mapped_column(String(1000), primary_key=True)
    etag: Mapped[str | None] = mapped_column(String(500), nullable=True)
    last_modified: Mapped[str | None] = mapped_column(String(100), nullable=True)
    checked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    changed_at: Mapped[datetime | None] = mapped_column(nullable=True)


class ScanLayer(Base):
    """The inventory of one layer blob of a registry (scanning.LayerInventory JSON), read once."""

    __tablename__ = "scan_layers"

    registry_id: Mapped[str] = mapped_column(
        ForeignKey("registries.id", ondelete="CASCADE"), primary_key=True
    )
    digest: Mapped[str] = mapped_column(String(140), primary_key=True)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ScanInventory(Base):
    """The merged inventory of an image manifest (by digest, per registry) and its CycloneDX SBOM."""

    __tablename__ = "scan_inventories"

    registry_id: Mapped[str] = mapped_column(
        ForeignKey("registries.id", ondelete="CASCADE"), primary_key=True
    )
    digest: Mapped[str] = mapped_column(String(140), primary_key=True)
    body: Mapped[bytes] = mapped_column(LargeBinary)
    sbom: Mapped[bytes | None] = mapped_column(LargeBinary, nullable=True)
    packages: Mapped[int] = mapped_column(Integer, default=0)
    os: Mapped[str] = mapped_column(String(200), default="")
    created_at: Mapped[datetime] = mapped_column(default=utcnow)


class ScanInventoryKey(Base):
    """A lookup key of an inventory with the packages that have it: a database update re-matches these
    packages only, found through the (ecosystem, name) index."""

    __tablename__ = "scan_inventory_keys"
    __table_args__ = (Index("ix_scan_inventory_keys_key", "ecosystem", "name"),)

    registry_id: Mapped[str] = mapped_column(
        ForeignKey("registries.id", ondelete="CASCADE"), primary_key=True
    )
    digest: Mapped[str] = mapped_column(String(140), primary_key=True)
    ecosystem: Mapped[str] = mapped_column(String(100), primary_key=True)
    name: Mapped[str] = mapped_column(Text, primary_key=True)
    packages: Mapped[list[Any]] = mapped_column(JSON)


class ScanFinding(Base):
    """One vulnerability of one artifact (its id: the CVE when there is one, else the advisory id).

    ``detail`` holds the per-package matches it stands for; ``severity`` is a rank as on Manifest.
    """

    __tablename__ = "scan_findings"
    __table_args__ = (
        UniqueConstraint("manifest_id", "vulnerability_id"),
        Index("ix_scan_findings_search", "registry_id", "vulnerability_id", "manifest_id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    manifest_id: Mapped[int] = mapped_column(ForeignKey("manifests.id", ondelete="CASCADE"))
    registry_id: Mapped[str] = mapped_column(String(36))
    vulnerability_id: Mapped[str] = mapped_column(String(255))
    severity: Mapped[int] = mapped_column(SmallInteger)
    score: Mapped[float | None] = mapped_column(Float, nullable=True)
    fixable: Mapped[bool] = mapped_column(Boolean)
    published_at: Mapped[datetime | None] = mapped_column(nullable=True)
    updated_at: Mapped[datetime | None] = mapped_column(nullable=True)
    package_keys: Mapped[str] = mapped_column(Text)  # "ecosystem<TAB>name" lines of its matches
    detail: Mapped[dict[str, Any]] = mapped_column(JSON)


class ScanFindingAlias(Base):
    """The other ids of a finding (DSA, GHSA, DEBIAN-CVE…), so a search by any of them finds it."""

    __tablename__ = "scan_finding_aliases"
    __table_args__ = (Index("ix_scan_finding_aliases_search", "registry_id", "alias", "manifest_id"),)

    manifest_id: Mapped[int] = mapped_column(ForeignKey("manifests.id", ondelete="CASCADE"), primary_key=True)
    vulnerability_id: Mapped[str] = mapped_column(String(255), primary_key=True)
    alias: Mapped[str] = mapped_column(String(255), primary_key=True)
    registry_id: Mapped[str] = mapped_column(String(36))


# -- garbage collection (see cargobay.services.gc) ---------------------------------------------------


class GcBlobReview(Base):
    """A blob whose references changed at ``changed_at`` (uploaded, linked, unlinked, a manifest naming
    it pushed or deleted, its repository deleted): garbage collection reviews it once the grace period
    has passed since then, and deletes it if no manifest references it (GitLab's blob review queue).

    No foreign key: noting a change must never wait for, or fail on, a blob being collected at that
    moment; a review whose blob is gone is dropped by the next collection.
    """

    __tablename__ = "gc_blob_reviews"

    blob_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    registry_id: Mapped[str] = mapped_column(String(36))
    changed_at: Mapped[datetime] = mapped_column()

    __table_args__ = (Index("ix_gc_blob_reviews_due", "registry_id", "changed_at", "blob_id"),)


class GcManifestReview(Base):
    """A manifest that may have lost its last tag or parent (pushed, untagged, its index, subject or
    referrer deleted) at ``changed_at``; reviewed only where the registry deletes untagged manifests.
    No foreign key, as for blob reviews."""

    __tablename__ = "gc_manifest_reviews"

    manifest_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    registry_id: Mapped[str] = mapped_column(String(36))
    changed_at: Mapped[datetime] = mapped_column()

    __table_args__ = (Index("ix_gc_manifest_reviews_due", "registry_id", "changed_at", "manifest_id"),)


class GcObjectDeletion(Base):
    """Stored objects whose rows are gone, to be deleted from the blob store (an outbox).

    Written in the transaction that deletes the rows (a collected blob, a deleted registry), so a crash
    after that commit leaves the work recorded; the objects are deleted after the commit, then the row.
    No foreign key: the rows outlive their registry.
    """

    __tablename__ = "gc_object_deletions"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    registry_id: Mapped[str] = mapped_column(String(36))
    object_key: Mapped[str] = mapped_column(String(300))
    staged: Mapped[bool] = mapped_column(Boolean, default=False)  # what an upload's writer left
    writer_state: Mapped[str | None] = mapped_column(Text, default=None)  # that writer's last state
    created_at: Mapped[datetime] = mapped_column(default=utcnow)

    __table_args__ = (Index("ix_gc_object_deletions_registry", "registry_id", "id"),)


class GcOrphan(Base):
    """An object the sweep found that no row names, since ``first_seen_at``; deleted once it is still
    unnamed after the grace period. ``last_seen_at`` lets a sweep forget objects that went away."""

    __tablename__ = "gc_orphans"

    object_key: Mapped[str] = mapped_column(String(300), primary_key=True)
    staged: Mapped[bool] = mapped_column(Boolean, primary_key=True)
    namespace: Mapped[str] = mapped_column(String(300))
    first_seen_at: Mapped[datetime] = mapped_column()
    last_seen_at: Mapped[datetime] = mapped_column()

    __table_args__ = (Index("ix_gc_orphans_namespace", "namespace", "last_seen_at"),)


class GcRun(Base):
    """One garbage collection of a registry (or, with no registry, the sweep of the namespaces of
    registries that no longer exist): what asked for it, where it stands, and what it freed.

    ``state`` is queued | running | succeeded | failed. While running, ``phase``, ``done`` / ``total``
    and ``eta_seconds`` say how far it got (written about once a second, with ``heartbeat_at``).
    """

    __tablename__ = "gc_runs"

    id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    registry_id: Mapped[str | None] = mapped_column(
        ForeignKey("registries.id", ondelete="CASCADE"), nullable=True
    )
    trigger: Mapped[str] = mapped_column(String(16))  # schedule | api | cli
    requested_by: Mapped[str | None] = mapped_column(String(254), nullable=True)
    job_id: Mapped[int | None] = mapped_column(Integer, nullable=True, index=True)
    dry_run: Mapped[bool] = mapped_column(Boolean, default=False)
    grace_seconds: Mapped[int] = mapped_column(BigInteger)
    untagged_manifests: Mapped[str] = mapped_column(String(16), default="keep")
    state: Mapped[str] = mapped_column(String(16), default="queued")
    phase: Mapped[str | None] = mapped_column(String(32), nullable=True)
    done: Mapped[int] = mapped_column(BigInteger, default=0)
    total: Mapped[int] = mapped_column(BigInteger, default=0)
    eta_seconds: Mapped[float | None] = mapped_column(Float, nullable=True)
    candidates: Mapped[int] = mapped_column(BigInteger, default=0)
    blobs_freed: Mapped[int] = mapped_column(BigInteger, default=0)
    bytes_freed: Mapped[int] = mapped_column(BigInteger, default=0)
    manifests_deleted: Mapped[int] = mapped_column(BigInteger, default=0)
    uploads_expired: Mapped[int] = mapped_column(BigInteger, default=0)
    objects_deleted: Mapped[int] = mapped_column(BigInteger, default=0)
    orphans_found: Mapped[int] = mapped_column(BigInteger, default=0)
    orphans_deleted: Mapped[int] = mapped_column(BigInteger, default=0)
    error: Mapped[str | None] = mapped_column(Text, nullable=True)
    created_at: Mapped[datetime] = mapped_column(default=utcnow)
    started_at: Mapped[datetime | None] = mapped_column(nullable=True)
    finished_at: Mapped[datetime | None] = mapped_column(nullable=True)
    heartbeat_at: Mapped[datetime | None] = mapped_column(nullable=True)

    __table_args__ = (Index("ix_gc_runs_registry", "registry_id", "id"),)
