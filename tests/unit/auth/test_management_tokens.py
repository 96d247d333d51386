"""Management bearer JWTs and registry JWTs must never be accepted in each other's place."""

from datetime import timedelta

from cargobay.auth.jwt_tokens import TokenSigner
from cargobay.auth.management import AUDIENCE, ManagementTokenSigner
from cargobay.db.types import utcnow

KEY = b"k" * 32


def _issue(signer: ManagementTokenSigner, seconds: int = 3600) -> str:
    now = utcnow()
    return signer.issue("tid", "uid", 1234, now, now + timedelta(seconds=seconds))


def test_a_management_token_verifies_with_its_claims() -> None:
    claims = ManagementTokenSigner(KEY).verify(_issue(ManagementTokenSigner(KEY)))
    assert claims is not None
    assert (claims.token_id, claims.user_id, claims.contract_number) == ("tid", "uid", 1234)


def test_an_expired_or_foreign_key_token_is_refused() -> None:
    signer = ManagementTokenSigner(KEY)
    assert signer.verify(_issue(signer, seconds=-10)) is None
    assert ManagementTokenSigner(b"x" * 32).verify(_issue(signer)) is None
    assert signer.verify("not.a.jwt") is None


def test_a_management_token_is_not_a_registry_token() -> None:
    token = _issue(ManagementTokenSigner(KEY))
    registry = TokenSigner(KEY)
    assert registry.verify(token, AUDIENCE) is None
    assert registry.verify(token, "127.0.0.1:5000") is None


def test_a_registry_token_is_not_a_management_token() -> None:
    registry = TokenSigner(KEY)
    for audience in (AUDIENCE, "127.0.0.1:5000"):
        issued = registry.issue("user:uid", audience, [], [])
        assert ManagementTokenSigner(KEY).verify(issued.token) is None
