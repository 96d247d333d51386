"""The fingerprint of a registry token's scopes that a JWT carries: the same set gives the same one."""

from __future__ import annotations

from cargobay.domain.scopes import TokenScope, scopes_fingerprint

PULL = TokenScope("repository", "team/*", frozenset({"pull"}))
PUSH = TokenScope("repository", "team/*", frozenset({"pull", "push"}))
CATALOG = TokenScope("registry", "*", frozenset({"pull"}))


def test_the_same_scopes_in_any_order_give_the_same_fingerprint() -> None:
    assert scopes_fingerprint([PUSH, CATALOG]) == scopes_fingerprint((CATALOG, PUSH))
    assert scopes_fingerprint(
        [TokenScope("repository", "a", frozenset({"push", "pull"}))]
    ) == scopes_fingerprint([TokenScope("repository", "a", frozenset({"pull", "push"}))])


def test_other_scopes_give_another_fingerprint() -> None:
    fingerprints = {
        scopes_fingerprint(scopes)
        for scopes in (
            [],
            [PULL],
            [PUSH],
            [PUSH, CATALOG],
            [TokenScope("repository", "other/*", frozenset({"pull"}))],
        )
    }
    assert len(fingerprints) == 5
