"""Housekeeping of registry tokens: a token past its expiry date is deleted.

Authentication already refuses an expired token at once; this only removes the dead rows.
"""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete
from sqlalchemy.orm import Session

from cargobay.db.models import Token
from cargobay.db.types import utcnow


def delete_expired_tokens(session: Session, now: datetime | None = None) -> int:
    """Delete every token whose ``expiry_date`` has passed; returns how many."""
    result = session.execute(
        delete(Token)
        .where(Token.expiry_date.is_not(None), Token.expiry_date <= (now or utcnow()))
        .execution_options(synchronize_session=False)
    )
    return int(result.rowcount)  # type: ignore[attr-defined]
