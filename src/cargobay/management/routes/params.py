"""Path and query parameters shared by the management operations (their OpenAPI text lives here)."""

# No `from __future__ import annotations`: FastAPI reads these Annotated aliases at import time.
from typing import Annotated, Any

from fastapi import Path, Query

from cargobay.domain.listing import LIMIT_PATTERN, MAX_LIMIT, MAX_OFFSET, OFFSET_PATTERN
from cargobay.domain.names import MAX_REPOSITORY_LENGTH, REPOSITORY_RE
from cargobay.management import paths

RegistryId = Annotated[str, paths.uuid_path("the registry id (UUID)")]
TokenId = Annotated[str, paths.uuid_path("the token id (UUID)")]
# Patterns are documentation: the values arrive percent-encoded and are checked once decoded.
RepositoryName = Annotated[
    str,
    Path(
        description="repository name, percent-encoded ('/' as %2F)",
        json_schema_extra={"pattern": REPOSITORY_RE.pattern, "maxLength": MAX_REPOSITORY_LENGTH},
    ),
]
DigestParam = Annotated[
    str,
    Path(
        description="artifact digest, e.g. sha256:<hex> (':' may be sent as %3A)",
        json_schema_extra={"pattern": "^(sha256:[a-f0-9]{64}|sha512:[a-f0-9]{128})$"},
    ),
]

# Repositories, artifacts and vulnerabilities: integer offsets.
Offset = Annotated[int, Query(ge=0, le=MAX_OFFSET, description="first item (default 0)")]
Limit = Annotated[int, Query(ge=1, le=MAX_LIMIT, description="page size (default 100)")]
# Registries and tokens: offsets and limits declared as strings of digits (as the SDK sends them).
OffsetDigits = Annotated[
    str | None, Query(description="first item, digits (default 0)", pattern=OFFSET_PATTERN)
]
LimitDigits = Annotated[
    str | None, Query(description="page size, digits (default 100, at most 1000)", pattern=LIMIT_PATTERN)
]
PaginationToken = Annotated[
    str | None, Query(alias="pagination.token", description="cursor from the previous page")
]
# Repositories and artifacts: the cursor their ``next`` links carry (not in the OpenAPI document, where
# the IONOS API has only offsets; a client that builds its own URLs never needs it).
SeekToken = Annotated[str | None, Query(alias="pagination.token", include_in_schema=False)]
NameFilter = Annotated[str | None, Query(alias="filter.name", description="part of the name")]


def order_query(values: tuple[str, ...], default: str) -> Any:
    return Query(alias="orderBy", description=f"default {default}", json_schema_extra={"enum": list(values)})
