"""argon2 checks are bounded: concurrent checks of one credential share one answer, and at most
ARGON2_AT_ONCE run at a time in a process (each needs 19 MiB)."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from cargobay.auth import passwords


class Counting:
    def __init__(self, real: object) -> None:
        self.real = real
        self.calls = 0
        self.running = 0
        self.most = 0
        self.lock = threading.Lock()

    def hash(self, password: str) -> str:
        return self.real.hash(password)  # type: ignore[attr-defined, no-any-return]

    def verify(self, stored: str, password: str) -> bool:
        with self.lock:
            self.calls += 1
            self.running += 1
            self.most = max(self.most, self.running)
        try:
            time.sleep(0.05)  # long enough for the others to arrive while this one runs
            return self.real.verify(stored, password)  # type: ignore[attr-defined, no-any-return]
        finally:
            with self.lock:
                self.running -= 1


@pytest.fixture
def counting(monkeypatch: pytest.MonkeyPatch) -> Iterator[Counting]:
    counter = Counting(passwords._hasher)
    monkeypatch.setattr(passwords, "_hasher", counter)
    passwords._verified.clear()
    yield counter
    passwords._verified.clear()


def _together(count: int, check: object) -> list[bool]:
    results: list[bool] = []
    gate = threading.Barrier(count)

    def run() -> None:
        gate.wait()
        results.append(check())  # type: ignore[operator]

    threads = [threading.Thread(target=run) for _ in range(count)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    return results


def test_concurrent_checks_of_one_credential_share_one_argon2_run(counting: Counting) -> None:
    stored = passwords.hash_password("right-password")
    results = _together(12, lambda: passwords.verify_password(stored, "right-password"))
    assert results == [True] * 12
    assert counting.calls == 1


def test_no_more_than_a_few_argon2_checks_run_at_once(counting: Counting) -> None:
    stored = passwords.hash_password("right-password")
    results = _together(10, lambda: passwords.verify_password(stored, f"wrong-{threading.get_ident()}"))
    assert results == [False] * 10
    assert counting.calls == 10 and counting.most <= passwords.ARGON2_AT_ONCE
