"""Query parameters of the list endpoints: page sizes, orderings, severity filters, cursors.

Every rule raises a 400 whose message names the parameter and the rule.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Generic, TypeVar

from cargobay.domain.errors import InvalidInput

T = TypeVar("T")

MAX_LIMIT = 1000
MAX_OFFSET = 2**31 - 1  # int32, as the API documents offsets; larger values overflow databases
DEFAULT_LIMIT = 100
SEVERITIES = ("none", "low", "medium", "high", "critical", "unknown")

REPOSITORY_ORDERS = ("name", "lastPush", "lastPull", "artifactCount", "pullCount", "pushCount")
REPOSITORY_ORDER_VALUES = (
    "name",
    *(f"{sign}{key}" for key in REPOSITORY_ORDERS if key != "name" for sign in ("", "-")),
)
REGISTRY_ARTIFACT_ORDERS = (
    "pullCount",
    "pushCount",
    "lastPush",
    "lastPull",
    "lastScan",
    "vulnTotalCount",
    "vulnFixableCount",
)
REPOSITORY_ARTIFACT_ORDERS = (
    "lastPush",
    "lastPull",
    "lastScan",
    "pullCount",
    "pushCount",
    "vulnMaxSeverity",
    "vulnTotalScore",
    "vulnTotalCount",
    "vulnFixableCount",
)
VULNERABILITY_ORDERS = ("score", "severity", "publishedAt", "updatedAt", "fixable")

_SEVERITY = "(" + "|".join(SEVERITIES) + ")"
# The documented form (empty = no filter); parsing is also case-insensitive and allows spaces.
SEVERITY_LIST_PATTERN = f"^({_SEVERITY}(,{_SEVERITY})*)?$"
LIMIT_PATTERN = r"^([1-9][0-9]{0,2}|1000)$"
OFFSET_PATTERN = r"^[0-9]{1,9}$"


def signed(keys: tuple[str, ...]) -> tuple[str, ...]:
    return tuple(f"{sign}{key}" for key in keys for sign in ("", "-"))


def parse_digits(raw: str | None, name: str, default: int, minimum: int, maximum: int) -> int:
    """A page parameter sent as a string of digits (registries and tokens declare them as strings)."""
    if raw is None or raw == "":
        return default
    text = raw.strip()
    if not text.isdigit() or not text.isascii():
        raise InvalidInput(
            f"must be a whole number between {minimum} and {maximum}, got {raw[:40]!r}", field=name
        )
    return check_range(int(text), name, minimum, maximum)


def check_range(value: int, name: str, minimum: int, maximum: int) -> int:
    if not minimum <= value <= maximum:
        raise InvalidInput(f"must be between {minimum} and {maximum}, got {value}", field=name)
    return value


def parse_order(raw: str | None, allowed: tuple[str, ...], default: str) -> tuple[str, bool]:
    """(key, descending) of an ``orderBy`` value such as ``-lastPush``."""
    value = default if raw is None or raw == "" else raw
    if value not in allowed:
        raise InvalidInput(f"{raw!r} is not supported; use one of {', '.join(allowed)}", field="orderBy")
    return value.lstrip("-"), value.startswith("-")


def parse_severities(raw: str | None, name: str) -> frozenset[str] | None:
    """A severity or a comma-separated list of them (API 1.2.2), case-insensitive."""
    if raw is None or raw == "":
        return None
    values = [v.strip().lower() for v in raw.split(",")]
    for value in values:
        if value not in SEVERITIES:
            raise InvalidInput(f"{value!r} is not a severity; use {', '.join(SEVERITIES)}", field=name)
    return frozenset(values)


def parse_bool(raw: str | None, name: str) -> bool | None:
    if raw is None or raw == "":
        return None
    if raw not in ("true", "false"):
        raise InvalidInput(f"must be true or false, got {raw[:40]!r}", field=name)
    return raw == "true"


def encode_cursor(last_name: str) -> str:
    """An opaque ``pagination.token``: the last name of the page, base64url-encoded."""
    return base64.urlsafe_b64encode(b"n:" + last_name.encode()).decode().rstrip("=")


def decode_cursor(token: str | None) -> str | None:
    if token is None or token == "":
        return None
    try:
        raw = base64.urlsafe_b64decode(token + "=" * (-len(token) % 4))
        text = raw.decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        text = ""
    if not text.startswith("n:"):
        raise InvalidInput("is not a token returned by a previous page", field="pagination.token")
    return text[2:]


@dataclass(frozen=True, slots=True)
class Position:
    """A row's place in a list's order: its sort key (None for a NULL key) and its unique tiebreak."""

    key: Any
    tiebreak: Any


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list; ``next`` is where the following page starts (None on the last page)."""

    items: list[T]
    more: bool
    next: Position | None = None


_KEYSET = "k1:"
_SCALARS = (int, str, type(None))


def list_fingerprint(*parts: str | None) -> str:
    """What a keyset token is bound to: the list and its order and filters, as the client gave them."""
    return hashlib.sha256("\x1f".join(p or "" for p in parts).encode()).hexdigest()[:16]


def encode_position(position: Position, fingerprint: str, offset: int) -> str:
    """An opaque ``pagination.token`` for the page that starts at ``offset`` right after ``position``."""
    values = [_encode_value(position.key), _encode_value(position.tiebreak)]
    text = _KEYSET + json.dumps([fingerprint, offset, *values], separators=(",", ":"))
    return base64.urlsafe_b64encode(text.encode()).decode().rstrip("=")


def decode_position(token: str | None, fingerprint: str, offset: int) -> Position | None:
    """The position a token names, if it was made for this list, order, filters and offset.

    A token that does not decode is a 400; one made for another offset, order or filters is not
    used (the offset alone then places the page), so a token never changes which rows are answered.
    """
    if token is None or token == "":
        return None
    text = _decode_text(token)
    try:
        data = json.loads(text[len(_KEYSET) :]) if text.startswith(_KEYSET) else None
        if not (isinstance(data, list) and len(data) == 4 and isinstance(data[1], int)):
            raise ValueError(text)
        position = Position(_decode_value(data[2]), _decode_value(data[3]))
    except ValueError:
        raise InvalidInput("is not a token returned by a previous page", field="pagination.token") from None
    if data[0] != fingerprint or data[1] != offset:
        return None
    return position


def _encode_value(value: Any) -> Any:
    if isinstance(value, datetime):
        return {"t": value.isoformat()}
    if isinstance(value, bool) or not isinstance(value, _SCALARS):
        raise TypeError(f"cannot place {type(value).__name__} in a page token")
    return value


def _decode_value(value: Any) -> Any:
    if isinstance(value, dict) and isinstance(value.get("t"), str):
        return datetime.fromisoformat(value["t"])
    if isinstance(value, bool) or not isinstance(value, _SCALARS):
        raise ValueError("not a key")
    return value


def _decode_text(token: str) -> str:
    try:
        return base64.urlsafe_b64decode(token + "=" * (-len(token) % 4)).decode()
    except (binascii.Error, ValueError, UnicodeDecodeError):
        return ""
