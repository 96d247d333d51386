"""Registry tokens: docker credentials with status, expiry and scopes."""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StrictStr

from cargobay.domain.names import TOKEN_NAME_RE
from cargobay.domain.scopes import ACTIONS, SCOPE_TYPES
from cargobay.management.schemas.common import (
    ApiResourceMetadata,
    InputModel,
    PaginationLinks,
    PatchInput,
    UtcTimestamp,
    WireModel,
    doc,
)

EXPIRY_DOC = {
    "type": "string",
    "format": "date-time",
    "description": "at least one hour ahead; null = never expires; naive values are UTC",
}
STATUS_DOC = {"type": "string", "enum": ["enabled", "disabled"]}


class ScopeIn(InputModel):
    name: Annotated[
        StrictStr,
        doc(
            {
                "type": "string",
                "pattern": "^[a-z0-9*._/-]{1,255}$",
                "description": "repository name; '*' is a wildcard",
            }
        ),
    ]
    type: Annotated[StrictStr, doc({"type": "string", "enum": list(SCOPE_TYPES)})]
    actions: Annotated[
        list[StrictStr] | None,
        doc({"type": "array", "minItems": 1, "items": {"type": "string", "enum": list(ACTIONS)}}),
    ]


class PostTokenProperties(InputModel):
    name: Annotated[
        StrictStr,
        doc({"type": "string", "pattern": TOKEN_NAME_RE.pattern, "description": "also the docker username"}),
    ]
    expiryDate: Annotated[StrictStr, doc(EXPIRY_DOC)] | None = None
    scopes: list[ScopeIn] | None = None
    status: Annotated[StrictStr, doc(STATUS_DOC)] | None = None


class PostTokenInput(InputModel):
    properties: PostTokenProperties


class PatchTokenInput(PatchInput):
    """Absent fields stay as they are; ``expiryDate: null`` removes the expiry; ``scopes``
    replaces the whole list."""

    expiryDate: Annotated[StrictStr, doc(EXPIRY_DOC)] | None = None
    scopes: list[ScopeIn] | None = None
    status: Annotated[StrictStr, doc(STATUS_DOC)] | None = None


class Scope(WireModel):
    name: str
    type: Literal["repository", "registry"]
    actions: list[Literal["pull", "push", "delete"]]


class Credentials(WireModel):
    username: str = Field(description="the token name")
    password: str = Field(description='the secret, only in the answer that created the token; "" otherwise')


class TokenProperties(WireModel):
    name: str
    credentials: Credentials
    expiryDate: UtcTimestamp | None = None
    scopes: list[Scope]
    status: Literal["enabled", "disabled"]


class TokenResponse(WireModel):
    id: str
    type: Literal["token"] = "token"
    href: str
    metadata: ApiResourceMetadata
    properties: TokenProperties


class TokensResponse(WireModel):
    id: Literal["tokens"] = "tokens"
    type: Literal["collection"] = "collection"
    href: str
    items: list[TokenResponse]
    count: int
    offset: int
    limit: int
    total: int
    links: PaginationLinks = Field(alias="_links")
