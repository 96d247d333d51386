"""Password hashing (argon2id) with a small, short-lived cache of successful verifications.

Registry clients send Basic credentials on every request; argon2 is deliberately slow, so a
verification that succeeded is remembered for a minute, by an HMAC (under a key made at random by
each process) of the stored hash and the password: nothing in memory can be checked against a
guessed password without that key, and a changed credential changes the stored hash, so the cache
cannot outlive it.
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import threading
import time
from collections import OrderedDict
from functools import lru_cache

from argon2 import PasswordHasher
from argon2.exceptions import InvalidHashError, VerificationError

# OWASP's second recommended argon2id profile: 19 MiB, 2 iterations, 1 lane.
_hasher = PasswordHasher(time_cost=2, memory_cost=19 * 1024, parallelism=1)
_verified: OrderedDict[bytes, float] = OrderedDict()  # key -> when it stops counting (monotonic)
_lock = threading.Lock()
_CACHE_SIZE = 10_000
_CACHE_SECONDS = 60.0
_KEY = secrets.token_bytes(32)


def hash_password(password: str) -> str:
    return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    """Constant-work check (argon2) unless this exact pair verified within the last minute."""
    key = hmac.new(_KEY, stored_hash.encode() + b"\0" + password.encode(), hashlib.sha256).digest()
    now = time.monotonic()
    with _lock:
        until = _verified.get(key)
        if until is not None and until > now:
            return True
    try:
        _hasher.verify(stored_hash, password)
    except (VerificationError, InvalidHashError):
        return False
    with _lock:
        _verified[key] = now + _CACHE_SECONDS
        _verified.move_to_end(key)
        if len(_verified) > _CACHE_SIZE:
            _verified.popitem(last=False)
    return True


def generate_password(nbytes: int = 24) -> str:
    """A random secret for tokens and the bootstrap owner (URL-safe, no padding)."""
    return secrets.token_urlsafe(nbytes)


@lru_cache(maxsize=1)
def dummy_hash() -> str:
    """A hash to verify against when the login is unknown, so timing does not reveal existence."""
    return _hasher.hash(secrets.token_urlsafe(16))
