"""Signed, short-lived bearer tokens for registry clients (Docker token flow).

HS256 with a 256-bit key generated on first start into the data dir (mode 0600); every process
of a deployment must see the same key file. A token lives at most 5 minutes. The claims name the
credential (``sub``: ``token:<id>`` or ``user:<id>``, and ``ctr``, the contract a user acted in), so
the registry API can refuse a JWT whose registry token was disabled or deleted since it was issued.
"""

from __future__ import annotations

import os
import secrets
import time
import uuid
from collections import OrderedDict
from dataclasses import dataclass
from pathlib import Path
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


def load_or_create_key(path: Path) -> bytes:
    try:
        return path.read_bytes()
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    tmp = path.with_suffix(f".{os.getpid()}.tmp")
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    with os.fdopen(fd, "wb") as f:
        f.write(key)
    try:
        os.link(tmp, path)  # first writer wins; a racing process reads the winner's key
    except FileExistsError:
        pass
    finally:
        tmp.unlink(missing_ok=True)
    return path.read_bytes()


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
