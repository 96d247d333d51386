"""Path parameters arrive still percent-encoded (the app routes on the raw path, so ``team%2Fapp`` is
one segment); these helpers decode and validate them."""

from __future__ import annotations

from typing import Any
from urllib.parse import unquote

from fastapi import Path

from cargobay.services.gc import parse_run_id
from cargobay.services.ownership import parse_id


def segment(value: str) -> str:
    return unquote(value, errors="replace")


def registry_id(value: str) -> str:
    return parse_id(segment(value), "registryId")


def token_id(value: str) -> str:
    return parse_id(segment(value), "tokenId")


def run_id(value: str) -> int:
    return parse_run_id(segment(value))


def uuid_path(description: str) -> Any:
    return Path(description=description, json_schema_extra={"format": "uuid"})
