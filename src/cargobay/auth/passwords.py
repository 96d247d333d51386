"""Password hashing (argon2id) with a small, short-lived cache of successful verifications.

Registry clients send Basic credentials on every request; argon2 is deliberately slow, so a
verification that succeeded is remembered for ten minutes, by an HMAC (under a key made at random by
each process) of the stored hash and the password: nothing in memory can be checked against a
guessed password without that key, and a changed credential changes the stored hash, so the cache
cannot outlive it.

Each argon2 check needs 19 MiB. At most ``ARGON2_AT_ONCE`` run at a time in a process (the CPU is
the limit anyway), so a burst of logins, or of wrong passwords from anyone, cannot take memory in
proportion to its size; concurrent checks of the same credential wait for the first one's answer.
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
_CACHE_SECONDS = 600.0
_KEY = secrets.token_bytes(32)
ARGON2_AT_ONCE = 2
_slots = threading.BoundedSemaphore(ARGON2_AT_ONCE)
_in_flight: dict[bytes, threading.Event] = {}


def hash_password(password: str) -> str:
    with _slots:
        return _hasher.hash(password)


def verify_password(stored_hash: str, password: str) -> bool:
    """Constant-work check (argon2) unless this exact pair verified within the last ten minutes."""
    key = hmac.new(_KEY, stored_hash.encode() + b"\0" + password.encode(), hashlib.sha256).digest()
    while True:
        with _lock:
            until = _verified.get(key)
            if until is not None and until > time.monotonic():
                return True
            running = _in_flight.get(key)
            if running is None:
                running = _in_flight[key] = threading.Event()
                break
        running.wait()  # the same credential is being checked: take its answer (a miss checks anew)
        with _lock:
            until = _verified.get(key)
        if until is None or until <= time.monotonic():
            return _check(stored_hash, password)
    try:
        return _check(stored_hash, password, key)
    finally:
        with _lock:
            _in_flight.pop(key, None)
        running.set()


def _check(stored_hash: str, password: str, key: bytes | None = None) -> bool:
    with _slots:
        try:
            _hasher.verify(stored_hash, password)
        except (VerificationError, InvalidHashError):
            return False
    if key is not None:
        with _lock:
            _verified[key] = time.monotonic() + _CACHE_SECONDS
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
    return hash_password(secrets.token_urlsafe(16))
