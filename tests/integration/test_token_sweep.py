"""Expired registry tokens and management bearer tokens are removed by the ``tokens.expire`` job."""

from __future__ import annotations

import asyncio
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from cargobay.config import Settings
from cargobay.db.models import ApiToken, Token
from cargobay.db.types import utcnow
from cargobay.jobs.queue import ClaimedJob
from cargobay.runtime import build_runtime
from cargobay.services import registries, tenancy
from cargobay.worker import build_jobs


def test_token_expiry_job_removes_only_what_has_expired(data_dir: Path) -> None:
    runtime = build_runtime(Settings(data_dir=data_dir))
    now = utcnow()

    def seed(session) -> None:  # type: ignore[no-untyped-def]
        contract = tenancy.create_contract(session, "c")
        user = tenancy.create_user(session, "sweep@example.com", "password-123")
        registry = registries.create_registry(
            session, contract_number=contract.number, name="sweep", location="de/fra"
        )
        for name, expiry in [
            ("past", now - timedelta(seconds=1)),
            ("future", now + timedelta(hours=2)),
            ("never", None),
        ]:
            session.add(
                Token(
                    id=name,
                    registry_id=registry.id,
                    name=name,
                    password_hash="x",
                    expiry_date=expiry,
                    scopes=[],
                )
            )
        session.add(
            ApiToken(
                id="old", user_id=user.id, contract_number=contract.number, expires_at=now - timedelta(1)
            )
        )
        session.add(
            ApiToken(
                id="new", user_id=user.id, contract_number=contract.number, expires_at=now + timedelta(1)
            )
        )

    runtime.db.write_sync(seed)
    job = ClaimedJob(1, "tokens.expire", {}, 1, 5, "test")
    result = asyncio.run(build_jobs(runtime).handlers["tokens.expire"](job))
    assert result == {"deleted": 1, "api_tokens_deleted": 1}
    tokens = runtime.db.read_sync(lambda s: sorted(s.scalars(select(Token.id))))
    api_tokens = runtime.db.read_sync(lambda s: sorted(s.scalars(select(ApiToken.id))))
    assert tokens == ["future", "never"]
    assert api_tokens == ["new"]
    runtime.db.dispose()
