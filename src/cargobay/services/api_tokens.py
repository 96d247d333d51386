"""Bearer tokens for the management API (the IONOS Auth API: generate, list, get, delete).

The JWT is signed and handed out once; a row keeps its id, owner, contract and expiry so that it can
be listed and revoked (deleting the row makes the JWT useless at once).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from datetime import datetime, timedelta

from sqlalchemy.orm import Session

from cargobay.auth.management import Caller, ManagementTokenSigner
from cargobay.db.engine import Database
from cargobay.db.models import ApiToken
from cargobay.db.queries import api_tokens
from cargobay.db.types import utcnow
from cargobay.domain.errors import InvalidInput, NotFound

DEFAULT_TTL = 365 * 24 * 3600  # IONOS: "generated access tokens will expire after one year"
MIN_TTL = 60
CRITERIA = ("ALL", "EXPIRED", "CURRENT")


@dataclass(frozen=True, slots=True)
class ApiTokenView:
    id: str
    created_at: datetime
    expires_at: datetime


def _view(row: ApiToken) -> ApiTokenView:
    return ApiTokenView(row.id, row.created_at, row.expires_at)


def delete_expired_api_tokens(session: Session) -> int:
    return api_tokens.delete_expired(session)


class ApiTokenService:
    def __init__(self, db: Database, signer: ManagementTokenSigner) -> None:
        self.db = db
        self.signer = signer

    async def generate(self, caller: Caller, ttl: int | None) -> str:
        seconds = DEFAULT_TTL if ttl is None else ttl
        if not MIN_TTL <= seconds <= DEFAULT_TTL:
            raise InvalidInput(
                f"must be between {MIN_TTL} and {DEFAULT_TTL} seconds, got {seconds}", field="ttl"
            )
        principal = caller.principal
        now = utcnow().replace(microsecond=0)
        row = ApiToken(
            id=str(uuid.uuid4()),
            user_id=principal.user_id,
            contract_number=principal.contract_number,
            created_at=now,
            expires_at=now + timedelta(seconds=seconds),
        )

        await self.db.write(api_tokens.add, row)
        return self.signer.issue(
            row.id, row.user_id, row.contract_number, row.created_at, row.expires_at, principal
        )

    async def list(self, caller: Caller) -> list[ApiTokenView]:
        def work(session: Session) -> list[ApiTokenView]:
            rows = api_tokens.of_user(session, caller.principal.user_id, caller.principal.contract_number)
            return [_view(r) for r in rows]

        return await self.db.read(work)

    async def get(self, caller: Caller, token_id: str) -> ApiTokenView:
        return await self.db.read(lambda s: _view(_own(s, caller, token_id)))

    async def delete(self, caller: Caller, token_id: str) -> None:
        await self.db.write(lambda s: api_tokens.remove(s, _own(s, caller, token_id)))

    async def delete_by_criteria(self, caller: Caller, criteria: str | None) -> int:
        if criteria not in CRITERIA:
            raise InvalidInput(f"must be one of {', '.join(CRITERIA)}, got {criteria!r}", field="criteria")
        if criteria == "CURRENT" and caller.token_id is None:
            raise InvalidInput(
                "CURRENT needs Bearer authentication (it deletes the token in use)", field="criteria"
            )
        principal = caller.principal

        def work(session: Session) -> int:
            return api_tokens.delete_of_user(
                session,
                principal.user_id,
                principal.contract_number,
                expired_only=criteria == "EXPIRED",
                token_id=caller.token_id if criteria == "CURRENT" else None,
            )

        return await self.db.write(work)


def _own(session: Session, caller: Caller, token_id: str) -> ApiToken:
    row = api_tokens.get(session, token_id)
    if (
        row is None
        or row.user_id != caller.principal.user_id
        or row.contract_number != caller.principal.contract_number
    ):
        raise NotFound("token", token_id)
    return row
