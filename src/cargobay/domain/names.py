"""Names: repositories and tags (OCI distribution-spec grammar), registries and tokens (IONOS rules)."""

from __future__ import annotations

import re

from cargobay.domain.errors import BadRequest, OciCode, RegistryError

# distribution-spec: <name> ::= [a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*(\/[a-z0-9]+((\.|_|__|-+)[a-z0-9]+)*)*
_COMPONENT = r"[a-z0-9]+(?:(?:\.|_|__|-+)[a-z0-9]+)*"
REPOSITORY_RE = re.compile(rf"^{_COMPONENT}(?:/{_COMPONENT})*$")
TAG_RE = re.compile(r"^[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}$")
REGISTRY_NAME_RE = re.compile(r"^[a-z][-a-z0-9]{1,61}[a-z0-9]$")
TOKEN_NAME_RE = re.compile(r"^[A-Za-z][-A-Za-z0-9]{0,61}[A-Za-z0-9]$")
MAX_REPOSITORY_LENGTH = 255


def is_repository_name(name: str) -> bool:
    return len(name) <= MAX_REPOSITORY_LENGTH and REPOSITORY_RE.match(name) is not None


def check_repository_name(name: str) -> str:
    if not is_repository_name(name):
        raise RegistryError(OciCode.NAME_INVALID, "invalid repository name", {"name": name[:300]})
    return name


def is_tag(value: str) -> bool:
    return TAG_RE.match(value) is not None


def check_tag(value: str) -> str:
    if not is_tag(value):
        raise RegistryError(OciCode.TAG_INVALID, "invalid tag", {"tag": value[:200]}, status=400)
    return value


def is_registry_name(name: str) -> bool:
    return REGISTRY_NAME_RE.match(name) is not None


def check_registry_name(name: str, field: str = "properties.name") -> str:
    if not is_registry_name(name):
        raise BadRequest(
            f"{field} {name!r} is invalid: 3-63 characters of a-z, 0-9 and '-', "
            "starting with a letter and ending with a letter or digit"
        )
    return name


def check_token_name(name: str, field: str = "properties.name") -> str:
    if TOKEN_NAME_RE.match(name) is None:
        raise BadRequest(
            f"{field} {name!r} is invalid: 2-63 characters of A-Z, a-z, 0-9 and '-', "
            "starting with a letter and ending with a letter or digit"
        )
    return name
