"""Console sessions: a signed-in browser holds a management token, and its forms carry CSRF tokens.

Signing in checks the password as the management API checks Basic credentials and issues a management
token (``/auth/v1/tokens``: a signed JWT whose row can be revoked) for twelve hours; the cookie holds
the chosen contract and that JWT, HttpOnly and SameSite=Lax (Secure over HTTPS). Every request
authenticates the JWT as a Bearer request of the management API would (the row must still exist, the
user must still be a member of the contract), so both APIs see the same users, contracts and roles.
Signing out deletes the token's row, which ends the session everywhere at once.

Forms carry a token the server can recompute: an HMAC, under the installation's console key, of the
session's token id (or, on the sign-in form, of a random nonce held in a cookie of its own). A request
from another site has neither the cookie (SameSite) nor the page's token.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from dataclasses import dataclass

from starlette.requests import Request
from starlette.responses import Response

from cargobay.auth.management import Caller, ManagementAuthenticator
from cargobay.auth.principals import UserPrincipal
from cargobay.domain.errors import PermissionDenied, Unauthenticated
from cargobay.services.api_tokens import ApiTokenService

COOKIE = "cargobay_console"
LOGIN_COOKIE = "cargobay_console_signin"
SESSION_SECONDS = 12 * 3600
PATH = "/console"


class SignInRequired(Exception):
    """No session, or one that ended (signed out, expired, revoked, membership gone)."""


class BadFormToken(Exception):
    """A form arrived without the token of the page it came from (a cross-site request, or a stale page)."""


@dataclass(frozen=True, slots=True)
class Session:
    caller: Caller
    csrf: str

    @property
    def principal(self) -> UserPrincipal:
        return self.caller.principal


def _mac(key: bytes, purpose: bytes, value: str) -> str:
    digest = hmac.new(key, purpose + b"\0" + value.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(digest[:24]).decode()


class Sessions:
    def __init__(
        self, authenticator: ManagementAuthenticator, api_tokens: ApiTokenService, key: bytes
    ) -> None:
        self.authenticator = authenticator
        self.api_tokens = api_tokens
        self.key = key

    # -- signed-in requests --

    async def current(self, request: Request) -> Session:
        """The session of this request, re-checked now; ``SignInRequired`` when there is none."""
        contract, _, token = request.cookies.get(COOKIE, "").partition(".")
        if not token or not contract.isdigit():
            raise SignInRequired()
        try:
            caller = await self.authenticator.authenticate(f"Bearer {token}", contract)
        except (Unauthenticated, PermissionDenied):
            raise SignInRequired() from None
        assert caller.token_id is not None
        return Session(caller, _mac(self.key, b"csrf", caller.token_id))

    async def switch(self, request: Request, contract: str) -> str:
        """The cookie value for acting in another contract of the same user (403 if not a member)."""
        token = request.cookies.get(COOKIE, "").partition(".")[2]
        caller = await self.authenticator.authenticate(f"Bearer {token}", contract)
        return f"{caller.principal.contract_number}.{token}"

    def check_form(self, session: Session, sent: str | None) -> None:
        if sent is None or not hmac.compare_digest(sent, session.csrf):
            raise BadFormToken()

    # -- signing in and out --

    def sign_in_token(self, request: Request) -> tuple[str, str | None]:
        """The sign-in form's token, and a new nonce to set as its cookie when the browser has none."""
        nonce = request.cookies.get(LOGIN_COOKIE)
        fresh = None
        if not nonce or len(nonce) > 64:
            nonce = fresh = secrets.token_urlsafe(24)
        return _mac(self.key, b"signin", nonce), fresh

    def check_sign_in_form(self, request: Request, sent: str | None) -> None:
        nonce = request.cookies.get(LOGIN_COOKIE)
        if not nonce or sent is None or not hmac.compare_digest(sent, _mac(self.key, b"signin", nonce)):
            raise BadFormToken()

    async def sign_in(self, email: str, password: str) -> tuple[Caller, str]:
        """Check the password and open a session: the caller and the cookie value."""
        caller = await self.authenticator.sign_in(email, password)
        token = await self.api_tokens.generate(caller, SESSION_SECONDS)
        return caller, f"{caller.principal.contract_number}.{token}"

    async def sign_out(self, session: Session) -> None:
        assert session.caller.token_id is not None
        await self.api_tokens.delete(session.caller, session.caller.token_id)


def set_session_cookie(request: Request, response: Response, value: str) -> None:
    _cookie(request, response, COOKIE, value, SESSION_SECONDS)
    response.delete_cookie(LOGIN_COOKIE, path=PATH)


def end_session_cookie(response: Response) -> None:
    response.delete_cookie(COOKIE, path=PATH)


def set_sign_in_cookie(request: Request, response: Response, nonce: str) -> None:
    _cookie(request, response, LOGIN_COOKIE, nonce, 3600)


def _cookie(request: Request, response: Response, name: str, value: str, seconds: int) -> None:
    # Lax: a link from elsewhere opens a signed-in page; forms are guarded by their tokens, and
    # cross-site POSTs carry no cookie at all.
    response.set_cookie(
        name,
        value,
        max_age=seconds,
        path=PATH,
        httponly=True,
        samesite="lax",
        secure=request.url.scheme == "https",
    )
