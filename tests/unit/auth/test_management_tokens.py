"""Management bearer JWTs and registry JWTs must never be accepted in each other's place."""

from datetime import timedelta

import jwt

from cargobay.auth.jwt_tokens import TokenSigner
from cargobay.auth.management import AUDIENCE, ManagementTokenSigner, identity_claims
from cargobay.auth.principals import UserPrincipal
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


def test_a_management_token_carries_the_ionos_identity_claim() -> None:
    now = utcnow()
    user = UserPrincipal("uid", "dev@example.com", 1234, "user", manage_registry=True)
    token = ManagementTokenSigner(KEY).issue("tid", "uid", 1234, now, now + timedelta(hours=1), user)
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["sub"], claims["contract"], claims["jti"]) == ("uid", 1234, "tid")
    assert claims["identity"] == {
        "uuid": "uid",
        "userId": "uid",
        "email": "dev@example.com",
        "contractNumber": 1234,
        "role": "user",
        "privileges": ["manageRegistry"],
        "isParent": False,
    }
    reader = UserPrincipal("rid", "ro@example.com", 1234, "user", manage_registry=False)
    assert identity_claims(reader)["privileges"] == []
    assert identity_claims(UserPrincipal("o", "o@example.com", 9, "owner", False))["privileges"] == [
        "manageRegistry"
    ]
    assert ManagementTokenSigner(KEY).verify(token) is not None
