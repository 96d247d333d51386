"""Bulk rows for the scaling benchmark, written straight into a stopped server's SQLite database.

All the SQL the scaling benchmark writes lives here, so that a schema change means one file to
update. Every INSERT names its columns. A column added later that is nullable, or has a default in
the database, needs nothing here. A NOT NULL column with only a Python-side default in
``cargobay.db.models`` is filled with that default. Anything else stops seeding with a message that
names the table and column.

The data dir must come from a real ``cargobay migrate`` or ``cargobay serve`` (schema, master key,
bootstrap owner). Password hashes are computed once by the caller and reused for every row. Rows
are made from a fixed seed: the same sizes give the same data.
"""

from __future__ import annotations

import datetime
import hashlib
import json
import random
import sqlite3
import uuid
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from sqlalchemy.dialects import sqlite as sqlite_dialect

from cargobay.db.models import Base

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
LOCATION = "de/fra"
SEEDED_BY = "seed@example.com"
# Contract numbers above the bootstrap contract's range (10,000,000-99,999,999), so never taken.
FIRST_CONTRACT = 100_000_000
_DIALECT = sqlite_dialect.dialect()


class SeedingError(RuntimeError):
    pass


def _bind(table: str, column: str) -> Callable[[Any], Any]:
    """The value SQLAlchemy itself would store for ``table.column`` (timestamps, JSON, booleans)."""
    col = Base.metadata.tables[table].c[column]
    process = col.type.dialect_impl(_DIALECT).bind_processor(_DIALECT)
    return process if process is not None else (lambda value: value)


_timestamp = _bind("manifests", "pushed_at")


def _fast_timestamp(value: datetime.datetime) -> str:
    return value.astimezone(datetime.UTC).replace(tzinfo=None).isoformat(" ", "microseconds")


def _timestamp_writer() -> Callable[[datetime.datetime], Any]:
    """SQLAlchemy's own conversion is slow (10 s for a million values); the same text written
    directly is used while it matches, checked here on values with and without microseconds."""
    samples = [datetime.datetime(2026, 1, 2, 3, 4, 5, us, tzinfo=datetime.UTC) for us in (0, 7, 999_999)]
    if all(_fast_timestamp(v) == _timestamp(v) for v in samples):
        return _fast_timestamp
    return _timestamp


ts = _timestamp_writer()


@dataclass(frozen=True)
class Owner:
    """The bootstrap contract owner made by ``cargobay migrate``."""

    contract_number: int
    user_id: str
    email: str
    password_hash: str


class Seeder:
    """One connection to ``cargobay.db``; the server must be stopped while it writes."""

    def __init__(self, db_path: Path, seed: int = 1) -> None:
        if not db_path.is_file():
            raise SeedingError(f"{db_path} does not exist: run `cargobay migrate` first")
        self.conn = sqlite3.connect(db_path)
        self.conn.execute("PRAGMA foreign_keys=ON")
        # Seeding only: a crash mid-way loses a throw-away database, so no fsync and a big cache.
        self.conn.execute("PRAGMA synchronous=OFF")
        self.conn.execute("PRAGMA cache_size=-262144")
        self.rng = random.Random(seed)
        self.now = datetime.datetime.now(datetime.UTC).replace(microsecond=0)
        self._next_contract = FIRST_CONTRACT
        self._defaults: dict[tuple[str, tuple[str, ...]], tuple[list[str], list[Any]]] = {}

    def __enter__(self) -> Seeder:
        return self

    def __exit__(self, exc_type: object, *exc: object) -> None:
        try:
            if exc_type is None:
                self.conn.commit()
                # Leave the database as a server that stopped cleanly would: no WAL to replay.
                self.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
            else:
                self.conn.rollback()
        finally:
            self.conn.close()

    # -- helpers -----------------------------------------------------------------------------
    def uuid(self) -> str:
        return str(uuid.UUID(int=self.rng.getrandbits(128), version=4))

    def ago(self, max_days: float) -> datetime.datetime:
        """A random moment in the last ``max_days`` days (microseconds, so orderings have no ties)."""
        return self.now - datetime.timedelta(microseconds=self.rng.randrange(1, int(max_days * 86400e6)))

    def popularity(self) -> int:
        """A pull count: most artifacts are pulled a little, a few a lot."""
        return int(self.rng.paretovariate(1.2) * 3) - 3

    def _extra_defaults(self, table: str, columns: Sequence[str]) -> tuple[list[str], list[Any]]:
        """NOT NULL columns this module does not name: their model default, else a clear error."""
        key = (table, tuple(columns))
        if key in self._defaults:
            return self._defaults[key]
        names: list[str] = []
        values: list[Any] = []
        model = Base.metadata.tables.get(table)
        for _cid, name, kind, notnull, default, pk in self.conn.execute(f"PRAGMA table_info({table})"):
            if name in columns or not notnull or default is not None:
                continue
            if pk == 1 and str(kind).upper() == "INTEGER":
                continue  # the rowid: numbered by SQLite
            column = model.c.get(name) if model is not None else None
            fallback = column.default if column is not None else None
            if fallback is None or not (fallback.is_scalar or fallback.is_callable):
                raise SeedingError(
                    f"{table}.{name} is NOT NULL without a default: add it to the INSERT in "
                    f"benchmarks/seeding.py"
                )
            value = fallback.arg if fallback.is_scalar else fallback.arg(None)
            names.append(name)
            values.append(_bind(table, name)(value))
        self._defaults[key] = (names, values)
        return names, values

    def insert(self, table: str, columns: Sequence[str], rows: Iterable[Sequence[Any]]) -> int:
        """``executemany`` of one INSERT naming ``columns`` (plus defaulted NOT NULL extras)."""
        extra_names, extra_values = self._extra_defaults(table, columns)
        names = [*columns, *extra_names]
        sql = f"INSERT INTO {table} ({', '.join(names)}) VALUES ({', '.join('?' * len(names))})"
        if extra_values:
            rows = ((*row, *extra_values) for row in rows)
        cursor = self.conn.executemany(sql, rows)
        return int(cursor.rowcount)

    def _next_id(self, table: str) -> int:
        return int(self.conn.execute(f"SELECT COALESCE(MAX(id), 0) + 1 FROM {table}").fetchone()[0])

    # -- tenants -----------------------------------------------------------------------------
    def owner(self) -> Owner:
        row = self.conn.execute(
            "SELECT m.contract_number, u.id, u.email, u.password_hash FROM memberships m "
            "JOIN users u ON u.id = m.user_id WHERE m.role = 'owner' "
            "ORDER BY u.created_at, m.contract_number LIMIT 1"
        ).fetchone()
        if row is None:
            raise SeedingError("no bootstrap owner: run `cargobay migrate` with CARGOBAY_ADMIN_USER set")
        return Owner(int(row[0]), str(row[1]), str(row[2]), str(row[3]))

    def contracts(self, count: int, prefix: str) -> list[int]:
        numbers = list(range(self._next_contract, self._next_contract + count))
        self._next_contract += count
        created = ts(self.now - datetime.timedelta(days=400))
        self.insert(
            "contracts",
            ("number", "name", "created_at"),
            ((n, f"{prefix}-{n}", created) for n in numbers),
        )
        return numbers

    def user(self, email: str, password_hash: str, contract_number: int, role: str = "owner") -> str:
        user_id = self.uuid()
        created = ts(self.now - datetime.timedelta(days=400))
        self.insert(
            "users",
            ("id", "email", "password_hash", "created_at"),
            [(user_id, email, password_hash, created)],
        )
        self.insert(
            "memberships",
            ("contract_number", "user_id", "role", "manage_registry", "created_at"),
            [(contract_number, user_id, role, 1 if role == "owner" else 0, created)],
        )
        return user_id

    def registries(self, contract_numbers: Sequence[int], names: Sequence[str]) -> list[str]:
        """One registry per name, the i-th in ``contract_numbers[i]``, created oldest first."""
        ids = [self.uuid() for _ in names]
        start = self.now - datetime.timedelta(days=365)
        step = datetime.timedelta(days=300) / max(1, len(names))
        rows = (
            (
                rid,
                contract,
                name,
                LOCATION,
                "Running",
                1,
                "[]",
                0,
                ts(start + i * step),
                ts(start + i * step),
                SEEDED_BY,
                "",
            )
            for i, (rid, contract, name) in enumerate(zip(ids, contract_numbers, names, strict=True))
        )
        self.insert(
            "registries",
            (
                "id",
                "contract_number",
                "name",
                "location",
                "state",
                "vulnerability_scanning",
                "allowlist",
                "storage_bytes",
                "storage_updated_at",
                "created_at",
                "created_by",
                "created_by_user_id",
            ),
            rows,
        )
        return ids

    def tokens(
        self,
        registry_ids: Sequence[str],
        names: Sequence[str],
        password_hashes: Sequence[str],
        scopes: list[dict[str, Any]],
        passwords: Sequence[str] | None = None,
    ) -> list[str]:
        """One enabled token per (registry, name, hash), created oldest first in that order. With
        ``passwords`` (the hashes' plaintexts) and a schema that has the column, each token gets its
        password lookup, as tokens made through the API do."""
        ids = [self.uuid() for _ in names]
        scopes_json = json.dumps(scopes)
        start = self.now - datetime.timedelta(days=300)
        step = datetime.timedelta(days=290) / max(1, len(names))
        columns = [
            "id",
            "registry_id",
            "name",
            "password_hash",
            "status",
            "scopes",
            "created_at",
            "created_by",
            "created_by_user_id",
        ]
        with_lookup = passwords is not None and "password_lookup" in self._columns("tokens")
        lookups: list[tuple[str, ...]] = [()] * len(names)
        if with_lookup:
            from cargobay.auth.credentials import password_lookup

            assert passwords is not None
            columns.append("password_lookup")
            lookups = [(password_lookup(pw),) for pw in passwords]
        rows = (
            (tid, rid, name, pw, "enabled", scopes_json, ts(start + i * step), SEEDED_BY, "", *lookup)
            for i, (tid, rid, name, pw, lookup) in enumerate(
                zip(ids, registry_ids, names, password_hashes, lookups, strict=True)
            )
        )
        self.insert("tokens", columns, rows)
        return ids

    def _columns(self, table: str) -> set[str]:
        return {str(row[1]) for row in self.conn.execute(f"PRAGMA table_info({table})")}

    # -- content -----------------------------------------------------------------------------
    def repositories(self, registry_ids: Sequence[str], names: Sequence[str]) -> list[int]:
        """Repository rows with push/pull counters and last push/pull times spread over 90 days."""
        first = self._next_id("repositories")
        ids = list(range(first, first + len(names)))
        rows = []
        for rid, registry_id, name in zip(ids, registry_ids, names, strict=True):
            pushed = self.ago(90)
            pulls = self.popularity()
            pulled = ts(pushed + (self.now - pushed) * self.rng.random()) if pulls else None
            rows.append(
                (
                    rid,
                    registry_id,
                    name,
                    ts(pushed - datetime.timedelta(days=self.rng.randrange(0, 200))),
                    self.rng.randint(1, 40),
                    pulls,
                    ts(pushed),
                    pulled,
                )
            )
        self.insert(
            "repositories",
            (
                "id",
                "registry_id",
                "name",
                "created_at",
                "push_count",
                "pull_count",
                "last_pushed_at",
                "last_pulled_at",
            ),
            rows,
        )
        return ids

    def manifests(self, registry_id: str, repository_ids: Sequence[int]) -> list[int]:
        """One small manifest per entry of ``repository_ids`` (a repository may repeat).

        Bodies are unsealed stand-ins: list endpoints never read them, and no request of the
        benchmark fetches a seeded manifest's body (the few that are fetched are pushed for real).
        """
        first = self._next_id("manifests")
        ids = list(range(first, first + len(repository_ids)))
        rows = []
        for mid, repository_id in zip(ids, repository_ids, strict=True):
            body = _manifest_body(mid)
            pushed = self.ago(90)
            pulls = self.popularity()
            pulled = ts(pushed + (self.now - pushed) * self.rng.random()) if pulls else None
            rows.append(
                (
                    mid,
                    registry_id,
                    repository_id,
                    "sha256:" + hashlib.sha256(body).hexdigest(),
                    OCI_MANIFEST,
                    len(body),
                    body,
                    ts(pushed),
                    ts(pushed),
                    pulled,
                    self.rng.randint(1, 3),
                    pulls,
                )
            )
        self.insert(
            "manifests",
            (
                "id",
                "registry_id",
                "repository_id",
                "digest",
                "media_type",
                "size",
                "body",
                "created_at",
                "pushed_at",
                "pulled_at",
                "push_count",
                "pull_count",
            ),
            rows,
        )
        return ids

    def tags(self, repository_ids: Sequence[int], names: Sequence[str], manifest_ids: Sequence[int]) -> None:
        rows = (
            (repository_id, name, manifest_id, ts(self.ago(90)))
            for repository_id, name, manifest_id in zip(repository_ids, names, manifest_ids, strict=True)
        )
        self.insert("tags", ("repository_id", "name", "manifest_id", "updated_at"), rows)


def _manifest_body(seq: int) -> bytes:
    """A distinct ~350-byte OCI image manifest (its blobs exist nowhere; never served)."""
    config = hashlib.sha256(b"config %d" % seq).hexdigest()
    layer = hashlib.sha256(b"layer %d" % seq).hexdigest()
    return _MANIFEST_TEMPLATE % (config.encode(), 1000 + seq % 500, layer.encode(), 100_000 + seq)


_MANIFEST_TEMPLATE = (
    b'{"schemaVersion":2,"mediaType":"application/vnd.oci.image.manifest.v1+json",'
    b'"config":{"mediaType":"application/vnd.oci.image.config.v1+json","digest":"sha256:%s","size":%d},'
    b'"layers":[{"mediaType":"application/vnd.oci.image.layer.v1.tar+gzip","digest":"sha256:%s",'
    b'"size":%d}]}'
)


# -- the data of each section of the scaling benchmark ------------------------------------------
PULL_ANYWHERE = [{"name": "*", "type": "repository", "actions": ["pull"]}]


@dataclass(frozen=True)
class Hashes:
    """argon2 hashes made once per run: the tokens' own, and others' (same cost, other password)."""

    token: str  # hash of the password the benchmark logs in with
    oldest: str  # hash of the oldest `ci` token's password
    other: str  # every other `ci` token (other tenants' secrets)
    passwords: tuple[str, str, str] | None = None  # the three plaintexts, for password lookups


@dataclass(frozen=True)
class LoginData:
    registries: int
    solo_token: str  # a token name held by one registry only (the cost of a login that does not scan)


def seed_login(s: Seeder, n: int, hashes: Hashes) -> LoginData:
    """``n`` registries in contracts of 10, each with a token named ``ci``. The oldest one's
    password hashes to ``hashes.oldest``, the newest one's to ``hashes.token``, the rest to
    ``hashes.other``. Plus one token with a name no other registry uses."""
    contracts = s.contracts((n + 9) // 10, "login")
    ids = s.registries([contracts[i // 10] for i in range(n)], [f"ci-{i:06d}" for i in range(n)])
    pw = [hashes.other] * n
    pw[0] = hashes.oldest
    pw[-1] = hashes.token
    plain: list[str] | None = None
    if hashes.passwords is not None:
        token, oldest, other = hashes.passwords
        plain = [oldest, *([other] * (n - 2)), token] if n > 1 else [token]
    s.tokens(ids, ["ci"] * n, pw, PULL_ANYWHERE, plain)
    s.tokens([ids[0]], ["solo-ci"], [hashes.token], PULL_ANYWHERE, _first(hashes, 1))
    return LoginData(n, "solo-ci")


@dataclass(frozen=True)
class CatalogData:
    small_registry: str  # name of the owner's only registry
    big_contract: int
    big_user: str  # owner of the contract holding the n other registries


def seed_catalog(s: Seeder, n: int, owner: Owner, big_user: str) -> CatalogData:
    """The bootstrap owner's contract holds one registry with 3 repositories; another contract,
    owned by ``big_user`` (same password as the bootstrap owner), holds ``n`` registries with one
    repository each."""
    small = s.registries([owner.contract_number], ["tenant-small"])
    s.repositories(small * 3, ["team/api", "team/web", "tools/ci"])
    (big,) = s.contracts(1, "catalog")
    s.user(big_user, owner.password_hash, big)
    ids = s.registries([big] * n, [f"cat-{i:06d}" for i in range(n)])
    s.repositories(ids, ["app"] * n)
    return CatalogData("tenant-small", big, big_user)


@dataclass(frozen=True)
class ListsData:
    registry_id: str  # n repositories with one tagged manifest each, and n tokens
    deep_registry_id: str  # one repository (``repository``) with n tagged manifests
    repository: str
    registry_names: list[str]  # n more registries of the owner's contract, in name order


def seed_lists(s: Seeder, n: int, owner: Owner) -> ListsData:
    wide, deep = s.registries([owner.contract_number] * 2, ["lists-wide", "lists-deep"])
    repos = s.repositories([wide] * n, [f"team/app-{i:06d}" for i in range(n)])
    manifests = s.manifests(wide, repos)
    s.tags(repos, ["latest"] * n, manifests)
    (big,) = s.repositories([deep], ["big/app"])
    manifests = s.manifests(deep, [big] * n)
    s.tags([big] * n, [f"v{i:06d}" for i in range(n)], manifests)
    s.tokens([wide] * n, [f"tok-{i:06d}" for i in range(n)], ["not-a-hash"] * n, [])
    names = [f"lst-{i:06d}" for i in range(n)]
    s.registries([owner.contract_number] * n, names)
    return ListsData(wide, deep, "big/app", names)


@dataclass(frozen=True)
class TokensData:
    registry: str
    token: str  # the newest of the n tokens; password = the one hashed as ``hashes.token``


def seed_tokens(s: Seeder, n: int, owner: Owner, hashes: Hashes) -> TokensData:
    """One registry of the owner's contract with ``n`` tokens of distinct names."""
    (rid,) = s.registries([owner.contract_number], ["tokens-one"])
    names = [f"tok-{i:06d}" for i in range(n)]
    s.tokens([rid] * n, names, [hashes.token] * n, PULL_ANYWHERE, _first(hashes, n))
    return TokensData("tokens-one", names[-1])


@dataclass(frozen=True)
class FlatData:
    registry: str
    repository: str  # n manifests, n tags
    token: str  # one of n tokens of the registry (pull on every repository)
    last_tag: str


def seed_flat(s: Seeder, n: int, owner: Owner, hashes: Hashes) -> FlatData:
    """One registry of the owner's contract: repository ``big/app`` with ``n`` tagged manifests,
    and ``n`` tokens. The objects that are read or pushed for real are pushed through the API."""
    (rid,) = s.registries([owner.contract_number], ["flat-one"])
    (big,) = s.repositories([rid], ["big/app"])
    manifests = s.manifests(rid, [big] * n)
    tags = [f"t-{i:06d}" for i in range(n)]
    s.tags([big] * n, tags, manifests)
    names = [f"tok-{i:06d}" for i in range(n)]
    s.tokens([rid] * n, names, [hashes.token] * n, PULL_ANYWHERE, _first(hashes, n))
    return FlatData("flat-one", "big/app", names[n // 2], tags[-1])


def _first(hashes: Hashes, n: int) -> list[str] | None:
    """``n`` times the benchmark's own token password, when the plaintexts are known."""
    return [hashes.passwords[0]] * n if hashes.passwords is not None else None
