"""The weekly garbage-collection schedule: case-sensitive English weekdays and a UTC time of day.

Rules (the API stores what these accept and echoes the time exactly as given):
* ``days`` lists each weekday at most once; an empty list, or ``null`` (ionosctl sends it when no day
  was chosen), is a schedule with no day: it is kept, shown, and never runs.
* ``time`` is an RFC 3339 partial-time in UTC: no offset, ``Z``, or ``+00:00``/``-00:00``; any other
  offset is refused rather than converted, because the schedule is defined in UTC.
"""

from __future__ import annotations

import datetime as dt
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from cargobay.domain.errors import InvalidInput

DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
# RFC 3339 partial-time, optionally followed by an offset (clients send 01:23:00+00:00 or 16:00:00Z).
TIME_RE = re.compile(
    r"^(?:[01]\d|2[0-3]):[0-5]\d:(?:[0-5]\d|60)(?:\.\d{1,9})?(?:[zZ]|[+-](?:[01]\d|2[0-3]):[0-5]\d)?$"
)
_UTC_OFFSETS = ("", "z", "Z", "+00:00", "-00:00")


@dataclass(frozen=True, slots=True)
class WeeklySchedule:
    days: tuple[str, ...]
    time: str  # echoed exactly as the client gave it

    @property
    def time_of_day(self) -> dt.time:
        """The UTC time the runs start (fractions dropped, a leap second read as :59)."""
        hour, minute, second = (int(part) for part in self.time[:8].split(":"))
        return dt.time(hour, minute, min(second, 59), tzinfo=UTC)

    def latest_window(self, now: datetime) -> datetime | None:
        """The most recent start time at or before ``now``; None for a schedule without days."""
        if not self.days:
            return None
        at = self.time_of_day
        today = now.astimezone(UTC).date()
        for back in range(8):
            day = today - timedelta(days=back)
            start = datetime.combine(day, at)
            if DAYS[day.weekday()] in self.days and start <= now:
                return start
        return None  # pragma: no cover - some listed day falls within any 8 days

    def next_window(self, now: datetime) -> datetime | None:
        """The first start time after ``now``; None for a schedule without days."""
        if not self.days:
            return None
        at = self.time_of_day
        today = now.astimezone(UTC).date()
        for ahead in range(8):
            day = today + timedelta(days=ahead)
            start = datetime.combine(day, at)
            if DAYS[day.weekday()] in self.days and start > now:
                return start
        return None  # pragma: no cover


def parse_schedule(days: object, time_of_day: object) -> WeeklySchedule:
    """Validate a schedule; errors name ``days[i]`` or ``time`` (the caller places them)."""
    if days is None:
        days = []
    if not isinstance(days, list):
        raise InvalidInput("must be an array of weekday names", field="days")
    chosen: list[str] = []
    for i, day in enumerate(days):
        if day not in DAYS:
            raise InvalidInput(f"{day!r} is not a weekday; use one of {', '.join(DAYS)}", field=f"days[{i}]")
        if day in chosen:
            raise InvalidInput(f"{day!r} is listed twice", field=f"days[{i}]")
        chosen.append(day)
    if not isinstance(time_of_day, str) or TIME_RE.match(time_of_day) is None:
        raise InvalidInput(
            f"{time_of_day!r} is not a UTC time of day HH:MM:SS "
            "(optionally with fractions and Z or +00:00), e.g. 01:23:00Z",
            field="time",
        )
    offset = time_of_day[8:].lstrip(".0123456789")
    if offset not in _UTC_OFFSETS:
        raise InvalidInput(
            f"{time_of_day!r} has the offset {offset}; the schedule is in UTC: "
            "give the time in UTC, with Z, +00:00 or no offset",
            field="time",
        )
    return WeeklySchedule(tuple(chosen), time_of_day)
