"""Form bodies in, field errors out.

Forms are plain ``application/x-www-form-urlencoded`` posts (no JavaScript needed), read here with a
size limit. Services validate them and raise domain errors naming a field by its API path
(``garbageCollectionSchedule.days[1]``, ``scopes[0].actions``…); ``field_errors`` places each message
next to the form input that path names, so the console shows the rule's own words.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from urllib.parse import parse_qsl

from starlette.datastructures import ImmutableMultiDict
from starlette.requests import Request

from cargobay.domain.errors import (
    Conflict,
    DomainError,
    NotFound,
    PermissionDenied,
    StorageFull,
    Unauthenticated,
    Unavailable,
)

MAX_FORM_BYTES = 64 * 1024
FORM_TYPE = "application/x-www-form-urlencoded"


class FormTooLarge(Exception):
    pass


class NotAForm(Exception):
    pass


Form = ImmutableMultiDict[str, str]


async def read_form(request: Request) -> Form:
    content_type = request.headers.get("content-type", "").split(";", 1)[0].strip().lower()
    if content_type != FORM_TYPE:
        raise NotAForm()
    body = bytearray()
    async for chunk in request.stream():
        body += chunk
        if len(body) > MAX_FORM_BYTES:
            raise FormTooLarge()
    try:
        pairs = parse_qsl(body.decode("utf-8"), keep_blank_values=True, max_num_fields=500)
    except (UnicodeDecodeError, ValueError):
        raise NotAForm() from None
    return ImmutableMultiDict(pairs)


def text(form: Form, name: str) -> str:
    return form.get(name, "").strip()


# Checked in order; anything else a rule refuses is bad input (400). The management API maps the
# same errors to the same statuses.
_STATUS: tuple[tuple[type[DomainError], int], ...] = (
    (Unauthenticated, 401),
    (PermissionDenied, 403),
    (NotFound, 404),
    (Conflict, 409),
    (Unavailable, 503),
    (StorageFull, 507),
)


def status_of(exc: DomainError) -> int:
    return next((status for kind, status in _STATUS if isinstance(exc, kind)), 400)


# API field paths (indexes dropped) whose form input has another name.
_INPUTS = {
    "garbageCollectionSchedule.days": "days",
    "garbageCollectionSchedule.time": "time",
    "garbageCollectionSchedule": "time",
    "apiSubnetAllowList": "allowlist",
    "features.vulnerabilityScanning.enabled": "scanning",
    "expiryDate": "expiry",
}
_INDEX = re.compile(r"\[\d+\]")
_SCOPE = re.compile(r"^scopes\[(\d+)\](?:\.(type|name|actions))?$")


@dataclass
class FormErrors:
    """Messages by form input, and one for the whole form (an error that names no input)."""

    fields: dict[str, str] = field(default_factory=dict)
    form: str | None = None

    def __bool__(self) -> bool:
        return bool(self.fields) or self.form is not None


def field_errors(exc: DomainError, scope_rows: Mapping[int, int] | None = None) -> FormErrors:
    """``exc`` placed next to the input its field names; ``scope_rows`` maps the index of a scope
    as validated to the row of the form it came from (empty rows are not sent to the rule)."""
    where = exc.field
    if where is None:
        return FormErrors(form=exc.message)
    scope = _SCOPE.match(where)
    if scope is not None:
        index = int(scope.group(1))
        row = (scope_rows or {}).get(index, index)
        return FormErrors({f"scopes[{row}].{scope.group(2) or 'name'}": exc.reason})
    if where == "scopes":
        return FormErrors({"scopes": exc.reason})
    bare = _INDEX.sub("", where)
    return FormErrors({_INPUTS.get(bare, bare): _with_item(where, exc.reason)})


def _with_item(where: str, reason: str) -> str:
    """A list input's message says which entry it is about (``entry 3: …``)."""
    found = _INDEX.findall(where)
    if not found or where.startswith("garbageCollectionSchedule.days"):
        return reason
    return f"entry {int(found[-1][1:-1]) + 1}: {reason}"
