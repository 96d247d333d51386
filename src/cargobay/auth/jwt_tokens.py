"""Signed, short-lived bearer tokens for registry clients (Docker token flow).

HS256 with a 256-bit key kept in the database (``signing_keys``, wrapped by the master key when
encryption is on), so every process of a deployment signs and checks with the same key. A token lives
at most 5 minutes. The claims name the
credential (``sub``: ``token:<id>`` or ``user:<id>``, and ``ctr``, the contract a user acted in), so
the registry API can refuse a JWT whose registry token was disabled or deleted since it was issued.
"""

from __future__ import annotations

import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from typing import Any

import jwt

from cargobay.domain.scopes import ResourceScope

ISSUER = "cargobay"
_CACHE_SIZE = 2_000  # verified JWTs remembered per process (they live 5 minutes at most)
_ALGORITHM = "HS256"


@dataclass(frozen=True, slots=True)
class IssuedToken:
    token: str
    expires_in: int
    issued_at: str
    granted: int = 0  # how many scopes it grants


@dataclass(frozen=True, slots=True)
class VerifiedToken:
    subject: str
    audience: str
    registry_ids: frozenset[str]
    grants: tuple[ResourceScope, ...]
    expires_at: float
    contract: int | None = None


class TokenSigner:
    def __init__(self, key: bytes, ttl_seconds: int = 300) -> None:
        self._key = key
        self.ttl = min(ttl_seconds, 300)
        self._cache: OrderedDict[str, VerifiedToken] = OrderedDict()

    def issue(
        self,
        subject: str,
        audience: str,
        registry_ids: list[str],
        grants: list[ResourceScope],
        contract: int | None = None,
    ) -> IssuedToken:
        now = int(time.time())
        claims: dict[str, Any] = {
            "iss": ISSUER,
            "sub": subject,
            "aud": audience,
            "iat": now,
            "nbf": now - 5,
            "exp": now + self.ttl,
            "jti": uuid.uuid4().hex,
            "rids": sorted(set(registry_ids)),
            "access": [g.as_claim() for g in grants],
        }
        if contract is not None:
            claims["ctr"] = contract
        token = jwt.encode(claims, self._key, algorithm=_ALGORITHM)
        issued_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(now))
        return IssuedToken(token, self.ttl, issued_at, len(grants))

    def verify(self, token: str, audience: str) -> VerifiedToken | None:
        """Claims of a valid, unexpired token for ``audience``; None otherwise."""
        cached = self._cache.get(token)
        now = time.time()
        if cached is not None:
            if cached.expires_at > now and cached.audience == audience:
                return cached
            return None
        try:
            claims = jwt.decode(
                token,
                self._key,
                algorithms=[_ALGORITHM],
                audience=audience,
                issuer=ISSUER,
                options={"require": ["exp", "iat", "sub", "aud"]},
            )
        except jwt.PyJWTError:
            return None
        grants = tuple(
            ResourceScope(a["type"], a["name"], frozenset(a.get("actions") or ()))
            for a in claims.get("access") or ()
            if isinstance(a, dict) and "type" in a and "name" in a
        )
        contract = claims.get("ctr")
        verified = VerifiedToken(
            claims["sub"],
            audience,
            frozenset(claims.get("rids") or ()),
            grants,
            float(claims["exp"]),
            contract if isinstance(contract, int) and not isinstance(contract, bool) else None,
        )
        self._cache[token] = verified
        if len(self._cache) > _CACHE_SIZE:
            self._forget_expired(now)
        return verified

    def _forget_expired(self, now: float) -> None:
        """Drop the verified tokens that have expired (oldest first); past the cap, the oldest."""
        while self._cache:
            token, verified = next(iter(self._cache.items()))
            if verified.expires_at > now and len(self._cache) <= 2 * _CACHE_SIZE:
                break
            del self._cache[token]
