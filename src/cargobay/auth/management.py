"""Who is calling the management API: Basic ``user@domain:password`` or a management Bearer JWT.

Management JWTs come from ``/auth/v1/tokens/generate``. They are signed with a key derived from the
registry JWT key, with their own issuer and audience, so a management token is never accepted on
/v2/ and a registry token never here. Every use re-checks the issued-token row (deleting it revokes
the JWT at once) and the user's membership, so removing a user from a contract takes effect at once.

Besides ``sub`` and ``contract`` (what verification reads), a JWT carries an ``identity`` object as
IONOS tokens do, for clients that read it (``ionosctl token parse``, ``whoami``): the user's id (as
``uuid`` and ``userId``), e-mail, contract number, role and privileges when it was issued. It is
informational: access is decided by the membership at each use, never by these claims.
"""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import jwt
from sqlalchemy import select
from sqlalchemy.orm import Session

from cargobay.auth import credentials
from cargobay.auth.principals import UserPrincipal
from cargobay.db.engine import Database
from cargobay.db.models import ApiToken, Membership, User
from cargobay.db.types import utcnow
from cargobay.domain.errors import InvalidInput, PermissionDenied, Unauthenticated

AUDIENCE = "containerregistries"
ISSUER = "cargobay-management"
_ALGORITHM = "HS256"
_KEY_LABEL = b"cargobay management api tokens v1"


@dataclass(frozen=True, slots=True)
class ManagementClaims:
    token_id: str
    user_id: str
    contract_number: int
    expires_at: float


class ManagementTokenSigner:
    def __init__(self, registry_key: bytes) -> None:
        self._key = hmac.new(registry_key, _KEY_LABEL, hashlib.sha256).digest()

    def issue(
        self,
        token_id: str,
        user_id: str,
        contract_number: int,
        issued: datetime,
        expires: datetime,
        principal: UserPrincipal | None = None,
    ) -> str:
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "aud": AUDIENCE,
            "sub": user_id,
            "jti": token_id,
            "iat": int(issued.timestamp()),
            "exp": int(expires.timestamp()),
            "contract": contract_number,
            "identity": identity_claims(principal)
            if principal is not None
            else {"uuid": user_id, "userId": user_id, "contractNumber": contract_number},
        }
        return jwt.encode(claims, self._key, algorithm=_ALGORITHM, headers={"kid": token_id})

    def verify(self, token: str) -> ManagementClaims | None:
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[_ALGORITHM],
                audience=AUDIENCE,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "aud", "iss", "jti"]},
            )
        except jwt.PyJWTError:
            return None
        contract = claims.get("contract")
        if not isinstance(contract, int) or not isinstance(claims["jti"], str):
            return None
        return ManagementClaims(claims["jti"], str(claims["sub"]), contract, float(claims["exp"]))


MANAGE_REGISTRY = "manageRegistry"


def identity_claims(principal: UserPrincipal) -> dict[str, Any]:
    """The IONOS-style ``identity`` claim, filled with what Cargobay knows (no reseller, registration
    domain or parent contracts exist here: ``isParent`` is false, the others are left out)."""
    return {
        "uuid": principal.user_id,
        "userId": principal.user_id,
        "email": principal.email,
        "contractNumber": principal.contract_number,
        "role": principal.role,
        "privileges": [MANAGE_REGISTRY] if principal.may_manage else [],
        "isParent": False,
    }


@dataclass(frozen=True, slots=True)
class Caller:
    """An authenticated management caller; ``token_id`` is set when a Bearer JWT was used."""

    principal: UserPrincipal
    token_id: str | None = None


def parse_contract_header(value: str | None) -> int | None:
    if value is None or value.strip() == "":
        return None
    text = value.strip()
    if not text.isdigit() or not text.isascii() or len(text) > 18:
        raise InvalidInput(
            f"must be a contract number (digits), got {value[:40]!r}", field="X-Contract-Number"
        )
    return int(text)


_MISSING = "authentication required: send Basic user@domain:password or a Bearer token"


class ManagementAuthenticator:
    def __init__(self, db: Database, signer: ManagementTokenSigner) -> None:
        self.db = db
        self.signer = signer

    async def authenticate(self, authorization: str | None, contract_header: str | None) -> Caller:
        """The caller acting in the chosen contract; 401 for bad credentials, 403 for a foreign contract."""
        contract = parse_contract_header(contract_header)
        bearer = credentials.parse_bearer(authorization)
        if bearer is not None:
            claims = self.signer.verify(bearer)
            if claims is None:
                raise Unauthenticated("the bearer token is invalid or expired")
            return await self.db.read(_bearer_caller, claims, contract)
        basic = credentials.parse_basic(authorization)
        if basic is None:
            raise Unauthenticated(_MISSING)
        username, password = basic
        if not credentials.is_user_login(username):
            raise Unauthenticated(
                "the management API needs a user@domain login (registry tokens are for docker)"
            )
        return await self.db.read(_basic_caller, username, password, contract)


def _basic_caller(session: Session, email: str, password: str, contract: int | None) -> Caller:
    principal = credentials.authenticate_user(session, email, password)
    if principal is None:
        raise Unauthenticated("invalid username or password")
    if contract is not None and contract != principal.contract_number:
        principal = _in_contract(session, principal.user_id, principal.email, contract)
    return Caller(principal)


def _bearer_caller(session: Session, claims: ManagementClaims, contract: int | None) -> Caller:
    row = session.get(ApiToken, claims.token_id)
    if row is None or row.user_id != claims.user_id or row.expires_at <= utcnow():
        raise Unauthenticated("the bearer token was revoked or has expired")
    user = session.get(User, claims.user_id)
    if user is None:
        raise Unauthenticated("the bearer token's user no longer exists")
    principal = _in_contract(session, user.id, user.email, contract or claims.contract_number)
    return Caller(principal, row.id)


def _in_contract(session: Session, user_id: str, email: str, contract: int) -> UserPrincipal:
    membership = session.scalar(
        select(Membership).where(Membership.user_id == user_id, Membership.contract_number == contract)
    )
    if membership is None:
        raise PermissionDenied(f"user {email} is not a member of contract {contract}")
    return UserPrincipal(user_id, email, contract, membership.role, membership.manage_registry)
