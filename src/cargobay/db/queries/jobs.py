"""Read-only views of the job queue (the queue's own statements live in ``cargobay.jobs.queue``)."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from cargobay.db.models import Job


def depth(session: Session) -> list[tuple[str, str, int]]:
    """(kind, status, count) of the jobs queued or running."""
    rows = session.execute(
        select(Job.kind, Job.status, func.count())
        .where(Job.status.in_(("queued", "running")))
        .group_by(Job.kind, Job.status)
    )
    return [(r[0], r[1], int(r[2])) for r in rows]
