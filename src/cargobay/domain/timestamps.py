"""Timestamps of the management API: RFC 3339 in, UTC with a literal ``Z`` out.

Input may carry ``Z``, a numeric offset, or no offset at all (then it is taken as UTC, which is what
the Python SDK means when it sends a naive ``datetime``). Output is always UTC with ``Z``, because Go
clients (ionosctl, terraform) append ``Z`` to anything that lacks one before parsing.
"""

from __future__ import annotations

from datetime import UTC, datetime

from cargobay.domain.errors import InvalidInput


def parse_timestamp(value: object, field: str) -> datetime:
    """An aware UTC datetime, or a 400 naming ``field``."""
    if not isinstance(value, str):
        raise InvalidInput("must be an RFC 3339 date-time string such as 2030-01-02T03:04:05Z", field=field)
    text = value.strip()
    if len(text) < 16 or text[10] not in "Tt ":
        raise InvalidInput(f"{value!r} is not an RFC 3339 date-time (e.g. 2030-01-02T03:04:05Z)", field=field)
    if text[-1] in "zZ":
        text = text[:-1] + "+00:00"
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise InvalidInput(
            f"{value!r} is not an RFC 3339 date-time (e.g. 2030-01-02T03:04:05Z)", field=field
        ) from None
    if parsed.tzinfo is None:
        return parsed.replace(tzinfo=UTC)
    try:
        return parsed.astimezone(UTC)
    except OverflowError:
        raise InvalidInput(f"{value!r} is out of range", field=field) from None


def render_timestamp(value: datetime) -> str:
    """``YYYY-MM-DDTHH:MM:SSZ``, with microseconds only when there are any."""
    if value.tzinfo is not None:
        value = value.astimezone(UTC)
    text = value.strftime("%Y-%m-%dT%H:%M:%S")
    if value.microsecond:
        text += f".{value.microsecond:06d}"
    return text + "Z"
