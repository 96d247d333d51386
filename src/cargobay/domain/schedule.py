"""The weekly garbage-collection schedule: case-sensitive English weekdays and a UTC partial-time."""

from __future__ import annotations

import re
from dataclasses import dataclass

from cargobay.domain.errors import BadRequest

DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# RFC 3339 partial-time, optionally followed by an offset (clients send 01:23:00+00:00 or 16:00:00Z).
TIME_RE = re.compile(
    r"^(?:[01]\d|2[0-3]):[0-5]\d:(?:[0-5]\d|60)(?:\.\d{1,9})?(?:[zZ]|[+-](?:[01]\d|2[0-3]):[0-5]\d)?$"
)


@dataclass(frozen=True, slots=True)
class WeeklySchedule:
    days: tuple[str, ...]
    time: str  # echoed exactly as the client gave it


def parse_schedule(days: object, time: object, field: str) -> WeeklySchedule:
    """Validate a schedule; ``days: null`` (ionosctl sends it) means no day is selected."""
    if days is None:
        days = []
    if not isinstance(days, list):
        raise BadRequest(f"{field}.days must be an array of weekday names")
    chosen: list[str] = []
    for i, day in enumerate(days):
        if day not in DAYS:
            raise BadRequest(f"{field}.days[{i}] {day!r} is not a weekday; use one of {', '.join(DAYS)}")
        if day not in chosen:
            chosen.append(day)
    if not isinstance(time, str) or TIME_RE.match(time) is None:
        raise BadRequest(
            f"{field}.time {time!r} is not a UTC time of day HH:MM:SS "
            "(optionally with fractions and Z or +00:00), e.g. 01:23:00Z"
        )
    return WeeklySchedule(tuple(chosen), time)
