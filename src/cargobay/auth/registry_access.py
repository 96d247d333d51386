"""The registry API's access rules, each written once: who the caller is, whether their address may
reach a registry, what they may do to a repository, which repositories they may list, which blobs
they may mount, and what the token service grants.

HTTP-free: the registry layer hands in header values and the client's address, and turns an
``AccessRefused`` into its wire answer (a challenge or a denial). Order of a check: find the
registry, check the caller's address against its allowlist, check the credentials (Basic: a token of
the registry or a contract user; Bearer: a JWT from the token service whose registry token is still
usable), then ask the policy table (``auth.policy``). Nothing about the target is looked up before
access is granted, so a refusal never tells whether content exists.

A bearer JWT names its credential. A registry token disabled, expired or deleted after the JWT was
issued, or given other scopes (the JWT carries a fingerprint of those it had), is refused within
``SUBJECT_RECHECK_SECONDS`` on every process: the token's state is read from the database, and each
process remembers the answer for at most that long. The client then asks for a new JWT, which grants
what the token's scopes allow now.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import time
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass
from enum import Enum

from sqlalchemy.orm import Session

from cargobay.auth import credentials
from cargobay.auth.jwt_tokens import IssuedToken, TokenSigner
from cargobay.auth.policy import Target, allowed_actions, catalog_filter
from cargobay.auth.principals import GrantPrincipal, Principal, TokenPrincipal, UserPrincipal
from cargobay.db.engine import Database
from cargobay.db.queries import registries, tokens, users
from cargobay.domain.allowlist import client_address, is_allowed
from cargobay.domain.names import CatalogOrder
from cargobay.domain.registries import RegistryInfo
from cargobay.domain.scopes import ResourceScope, scopes_fingerprint

SUBJECT_RECHECK_SECONDS = 1.0
LOGIN_MEMORY_SECONDS = 300.0  # how long a Basic login is remembered (and re-checked on each use)
_REMEMBERED = 10_000
_PAGE = 200  # registries read at a time for the path-style catalog
CATALOG = ResourceScope("registry", "catalog", frozenset({"*"}))


class Refusal(Enum):
    UNAUTHENTICATED = "unauthenticated"  # no credentials, or wrong ones
    INVALID_TOKEN = "invalid_token"  # a bearer JWT that is forged, expired or names a dead token
    INSUFFICIENT_SCOPE = "insufficient_scope"  # a valid JWT that does not grant what is needed
    ADDRESS = "address"  # the caller's address is outside the registry's allowlist
    DENIED = "denied"  # valid Basic credentials without the needed rights


class AccessRefused(Exception):
    def __init__(self, refusal: Refusal) -> None:
        super().__init__(refusal.value)
        self.refusal = refusal


@dataclass(frozen=True, slots=True)
class Caller:
    """What the registry layer knows of a request: its credentials, address and service (host)."""

    authorization: str | None
    address: str | None
    service: str


@dataclass(frozen=True, slots=True)
class Access:
    principal: Principal
    registry: RegistryInfo | None
    actions: frozenset[str]
    bearer: bool


@dataclass(frozen=True, slots=True)
class Wanted:
    """One scope asked of the token service, resolved to the registry (by name) and repository it
    addresses; ``registry`` None is the catalog across every registry the caller may list."""

    scope: ResourceScope
    registry: str | None
    repository: str | None


@dataclass(frozen=True, slots=True)
class Listing:
    """A registry whose catalog the caller may read, and which of its names they may see."""

    registry: RegistryInfo
    visible: Callable[[str], bool]


@dataclass(frozen=True, slots=True)
class _Remembered:
    principal: UserPrincipal | TokenPrincipal
    password_hash: str
    until: float


class RegistryAccess:
    def __init__(self, db: Database, signer: TokenSigner, trusted_proxies: Sequence[str] = ()) -> None:
        self.db = db
        self.signer = signer
        self.trusted_proxies = tuple(trusted_proxies)
        self._subjects: dict[str, tuple[float, str | None]] = {}  # token id -> (until, scopes' fingerprint)
        self._logins: dict[bytes, _Remembered] = {}
        self._secret = secrets.token_bytes(32)

    def client_address(self, peer: str | None, forwarded_for: str | None) -> str | None:
        """The caller's address: ``X-Forwarded-For`` counts only from a trusted proxy."""
        return client_address(peer, forwarded_for, self.trusted_proxies)

    # -- requests ---------------------------------------------------------------------------
    async def check(
        self,
        caller: Caller,
        registry_name: str | None,
        repository: str | None,
        client_name: str | None,
        needed: frozenset[str],
    ) -> Access:
        """Grant ``needed`` on the target or raise ``AccessRefused``.

        ``registry_name`` None addresses no registry (GET /v2/, the path-style catalog); a registry
        that does not exist is answered exactly like bad credentials.
        """
        registry = (
            await registries.INFO_MEMORY.by_name(self.db, registry_name)
            if registry_name is not None
            else None
        )
        if registry_name is not None and registry is None:
            raise AccessRefused(Refusal.UNAUTHENTICATED)
        if registry is not None:
            _check_address(registry, caller.address)
        principal, bearer = await self._principal(caller, registry)
        if registry is None:
            if isinstance(principal, TokenPrincipal):
                # Nothing addressed: a token is still held to the allowlist of its own registry.
                await self._check_own_registry(principal, caller.address)
            return Access(principal, None, frozenset(), bearer)
        target = Target(registry.id, registry.contract_number, repository, client_name)
        actions = allowed_actions(principal, target)
        if not needed <= actions:
            raise AccessRefused(Refusal.INSUFFICIENT_SCOPE if bearer else Refusal.DENIED)
        return Access(principal, registry, actions, bearer)

    async def _principal(self, caller: Caller, registry: RegistryInfo | None) -> tuple[Principal, bool]:
        jwt = credentials.parse_bearer(caller.authorization)
        if jwt is not None:
            verified = self.signer.verify(jwt, caller.service)
            if verified is None or not await self._subject_alive(verified.subject, verified.scopes_version):
                raise AccessRefused(Refusal.INVALID_TOKEN)
            grant = GrantPrincipal(
                verified.subject, verified.registry_ids, verified.grants, verified.contract
            )
            return grant, True
        basic = credentials.parse_basic(caller.authorization)
        if basic is None:
            raise AccessRefused(Refusal.UNAUTHENTICATED)
        principal = await self._login(basic[0], basic[1], registry)
        if principal is None:
            raise AccessRefused(Refusal.UNAUTHENTICATED)
        return principal, False

    async def _login(
        self, username: str, password: str, registry: RegistryInfo | None
    ) -> UserPrincipal | TokenPrincipal | None:
        """Basic credentials: a user (in the registry's contract when one is addressed), a token of
        the addressed registry, or, when none is addressed, a token of any registry.

        Clients send Basic on every request, so a login that succeeded is remembered for a few
        minutes under an HMAC of the credential (a key made at random by each process). Each use
        still reads the credential's row by primary key and takes the login only while the stored
        hash, the token's state and scopes and the user's role are as they were: a changed password,
        a disabled token, changed scopes, a new role are seen at once, and no argon2 check runs again.
        """
        key = self._credential_key(registry, username, password)
        known = self._logins.get(key)
        if known is not None and known.until > time.monotonic():
            if await self._unchanged(known):
                return known.principal
            self._logins.pop(key, None)
        login: credentials.UserLogin | credentials.TokenLogin | None
        if credentials.is_user_login(username):
            contract = registry.contract_number if registry else None
            login = await self.db.read(credentials.user_login, username, password, contract)
        elif registry is not None:
            login = await self.db.read(credentials.authenticate_token, registry.id, username, password)
        else:
            login = await self.db.read(credentials.authenticate_token_anywhere, username, password)
        if login is None:
            return None
        if isinstance(login, credentials.TokenLogin) and login.backfill is not None:
            await self.db.write(tokens.record_lookup, login.principal.token_id, login.backfill)
        if len(self._logins) >= _REMEMBERED:
            self._logins.clear()
        self._logins[key] = _Remembered(
            login.principal, login.password_hash, time.monotonic() + LOGIN_MEMORY_SECONDS
        )
        return login.principal

    def _credential_key(self, registry: RegistryInfo | None, username: str, password: str) -> bytes:
        message = b"\0".join(
            ((registry.id if registry else "").encode(), username.encode(), password.encode())
        )
        return hmac.new(self._secret, message, hashlib.sha256).digest()

    async def _unchanged(self, known: _Remembered) -> bool:
        principal = known.principal
        if isinstance(principal, TokenPrincipal):
            now = await tokens.usable_standing(self.db, principal.token_id)
            return now == (known.password_hash, principal.scopes)
        standing = await users.standing(self.db, principal.user_id, principal.contract_number)
        return standing == (known.password_hash, principal.role, principal.manage_registry)

    async def _subject_alive(self, subject: str, scopes_version: str | None) -> bool:
        """Whether the registry token a JWT names is still usable with the scopes it had at issue
        (users are judged at issue; a JWT from before fingerprints were issued is judged by the
        token's state alone)."""
        kind, _, ident = subject.partition(":")
        if kind != "token":
            return True
        now = time.monotonic()
        known = self._subjects.get(ident)
        if known is not None and known[0] > now:
            current = known[1]
        else:
            standing = await tokens.usable_standing(self.db, ident)
            current = scopes_fingerprint(standing[1]) if standing is not None else None
            if len(self._subjects) > 10_000:
                self._subjects.clear()
            self._subjects[ident] = (now + SUBJECT_RECHECK_SECONDS, current)
        return current is not None and scopes_version in (None, current)

    async def _check_own_registry(self, principal: TokenPrincipal, address: str | None) -> None:
        own = await registries.info_by_id(self.db, principal.registry_id)
        if own is not None:
            _check_address(own, address)

    async def current(
        self, principal: Principal, contract_number: int | None
    ) -> UserPrincipal | TokenPrincipal | None:
        """The credential behind a principal with its current rights: a JWT's subject as it stands now
        (a token disabled, expired or deleted since yields None)."""
        if not isinstance(principal, GrantPrincipal):
            return principal
        kind, _, ident = principal.subject.partition(":")
        contract = principal.contract if principal.contract is not None else contract_number
        return await self.db.read(_subject_now, kind, ident, contract)

    # -- the catalog ------------------------------------------------------------------------
    async def listings(
        self, access: Access, address: str | None, start: str | None = None
    ) -> AsyncIterator[Listing]:
        """The registries whose catalog the caller may read, each with its name filter, in the
        catalog's order, from the registry named ``start`` on. The path-style catalog (no registry
        addressed) spans every registry the credential may list, read a page at a time on the
        (contract, name) index, leaving out those whose allowlist excludes the caller. Refusals are
        raised here, before anything is listed."""
        principal = access.principal
        if isinstance(principal, GrantPrincipal) and not _grants_listing(principal, access.registry):
            raise AccessRefused(Refusal.INSUFFICIENT_SCOPE)
        holder = await self.current(principal, access.registry.contract_number if access.registry else None)
        if holder is None:
            raise AccessRefused(Refusal.INVALID_TOKEN if access.bearer else Refusal.UNAUTHENTICATED)
        return self._listings(holder, access.registry, address, start)

    async def _listings(
        self,
        holder: UserPrincipal | TokenPrincipal,
        registry: RegistryInfo | None,
        address: str | None,
        start: str | None,
    ) -> AsyncIterator[Listing]:
        async for candidate in self._listable(holder, registry, start):
            visible = catalog_filter(holder, candidate.id, candidate.contract_number)
            if visible is not None and is_allowed(candidate.allowlist, address):
                yield Listing(candidate, visible)

    async def _listable(
        self, holder: UserPrincipal | TokenPrincipal, registry: RegistryInfo | None, start: str | None
    ) -> AsyncIterator[RegistryInfo]:
        if registry is not None:
            yield registry
            return
        if isinstance(holder, TokenPrincipal):
            own = await registries.info_by_id(self.db, holder.registry_id)
            if own is not None:
                yield own
            return
        order: CatalogOrder[RegistryInfo] = CatalogOrder(lambda info: info.name)
        after, inclusive = start, True
        while page := await self.db.read(
            registries.infos_of_contract, holder.contract_number, after, inclusive, _PAGE
        ):
            for info in page:
                for due in order.add(info):
                    yield due
            if len(page) < _PAGE:
                break
            after, inclusive = page[-1].name, False
        for due in order.rest():
            yield due

    # -- mounts -----------------------------------------------------------------------------
    async def pull_judge(self, access: Access) -> Callable[[str], bool] | None:
        """Which repositories of the addressed registry the caller may read, by their current rights
        (a JWT names only the repositories asked for, so a mount source is judged by its subject)."""
        registry = access.registry
        assert registry is not None
        holder = await self.current(access.principal, registry.contract_number)
        if holder is None:
            return None
        rights = holder

        def may_pull(repository: str) -> bool:
            return "pull" in allowed_actions(
                rights, Target(registry.id, registry.contract_number, repository)
            )

        return may_pull

    # -- the token service ------------------------------------------------------------------
    async def issue(
        self,
        username: str,
        password: str,
        wanted: Sequence[Wanted],
        host_registry: str | None,
        address: str | None,
        service: str,
    ) -> IssuedToken:
        """Authenticate, and sign a JWT granting the subset of the wanted scopes that the credentials
        allow (possibly none). Tokens that are expired, disabled or deleted are refused here at once.

        The registry named by the service (host-style) is checked against its allowlist even when no
        scope is asked for (a login); every registry a scope names is checked before credentials.
        """
        names = {w.registry for w in wanted if w.registry is not None}
        if host_registry:
            names.add(host_registry)
        known: dict[str, RegistryInfo] = {}
        for name in names:
            info = await registries.info_by_name(self.db, name)
            if info is not None:
                known[name] = info
        if any(not is_allowed(info.allowlist, address) for info in known.values()):
            raise AccessRefused(Refusal.ADDRESS)
        result = await self.db.read(_grant, username, password, list(wanted), known, host_registry)
        if result.backfill is not None and isinstance(result.principal, TokenPrincipal):
            await self.db.write(tokens.record_lookup, result.principal.token_id, result.backfill)
        principal = result.principal
        if principal is None:
            raise AccessRefused(Refusal.UNAUTHENTICATED)
        version = None
        if isinstance(principal, TokenPrincipal):
            await self._check_own_registry(principal, address)
            subject, contract = f"token:{principal.token_id}", None
            version = scopes_fingerprint(principal.scopes)
        else:
            subject, contract = f"user:{principal.user_id}", principal.contract_number
        return self.signer.issue(
            subject, service, sorted(result.registry_ids), result.grants, contract, version
        )


def _grants_listing(principal: GrantPrincipal, registry: RegistryInfo | None) -> bool:
    """A JWT lists a catalog only when it was granted ``registry:catalog`` (for that registry)."""
    return principal.lists_catalog and (registry is None or registry.id in principal.registry_ids)


def _check_address(registry: RegistryInfo, address: str | None) -> None:
    if not is_allowed(registry.allowlist, address):
        raise AccessRefused(Refusal.ADDRESS)


def _subject_now(
    session: Session, kind: str, ident: str, contract: int | None
) -> UserPrincipal | TokenPrincipal | None:
    if kind == "token":
        token = tokens.get(session, ident)
        if token is None or not credentials.token_is_usable(token):
            return None
        return credentials.token_principal(token)
    if kind == "user":
        user = users.get(session, ident)
        return credentials.user_principal(session, user.id, user.email, contract) if user else None
    return None


@dataclass
class _Granted:
    principal: UserPrincipal | TokenPrincipal | None
    grants: list[ResourceScope]
    registry_ids: set[str]
    backfill: str | None = None


def _grant(
    session: Session,
    username: str,
    password: str,
    wanted: list[Wanted],
    known: dict[str, RegistryInfo],
    host_registry: str | None,
) -> _Granted:
    """Authenticate once per registry a scope names, and keep the actions the policy allows."""
    is_user = credentials.is_user_login(username)
    result = _Granted(None, [], set())
    checked: dict[str, UserPrincipal | TokenPrincipal | None] = {}

    def login_at(registry: RegistryInfo) -> UserPrincipal | TokenPrincipal | None:
        if registry.id not in checked:
            if is_user:
                checked[registry.id] = credentials.authenticate_user(
                    session, username, password, registry.contract_number
                )
            else:
                login = credentials.authenticate_token(session, registry.id, username, password)
                checked[registry.id] = login.principal if login else None
                if login is not None and login.backfill is not None:
                    result.backfill = login.backfill
        return checked[registry.id]

    def login_anywhere() -> UserPrincipal | TokenPrincipal | None:
        if is_user:
            return credentials.authenticate_user(session, username, password)
        login = credentials.authenticate_token_anywhere(session, username, password)
        if login is not None:
            result.backfill = login.backfill
        return login.principal if login else None

    for item in wanted:
        if item.registry is None:  # the path-style catalog: listed at use, by the subject's rights
            principal = result.principal or login_anywhere()
            if principal is None:
                continue
            result.principal = principal
            if _may_list_anything(principal):
                result.grants.append(CATALOG)
            continue
        registry = known.get(item.registry)
        if registry is None:
            continue
        principal = login_at(registry)
        if principal is None:
            continue
        result.principal = result.principal or principal
        target = Target(registry.id, registry.contract_number, item.repository, item.scope.name)
        allowed = allowed_actions(principal, target)
        if item.repository is None:
            actions = frozenset({"*"}) if "catalog" in allowed else frozenset()
        else:
            actions = item.scope.actions & allowed
        if actions:
            result.grants.append(ResourceScope(item.scope.type, item.scope.name, actions))
            result.registry_ids.add(registry.id)
    if result.principal is None:
        # A registry's own host (host-style addressing) takes only its own credentials, and a host
        # naming no registry takes none; path-style names no registry, so any registry's will do.
        if host_registry is None:
            result.principal = login_anywhere()
        elif (home := known.get(host_registry)) is not None:
            result.principal = login_at(home)
    return result


def _may_list_anything(principal: UserPrincipal | TokenPrincipal) -> bool:
    if isinstance(principal, UserPrincipal):
        return True
    return any(scope.type == "registry" for scope in principal.scopes)
