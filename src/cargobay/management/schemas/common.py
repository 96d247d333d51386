"""Building blocks shared by every resource: timestamps, error body, links, metadata."""

from __future__ import annotations

from datetime import datetime
from typing import Annotated, Any

from pydantic import BaseModel, ConfigDict, Field, PlainSerializer, WithJsonSchema
from pydantic.json_schema import SkipJsonSchema

from cargobay.domain.errors import InvalidInput
from cargobay.domain.timestamps import render_timestamp

UtcTimestamp = Annotated[
    datetime,
    PlainSerializer(render_timestamp, return_type=str),
    WithJsonSchema({"type": "string", "format": "date-time", "example": "2024-05-01T12:00:00Z"}),
]


def doc(schema: dict[str, Any]) -> Any:
    """Describe a request field in the OpenAPI document only; the services enforce the rule with a
    message that names the field (pydantic's generic messages do not)."""
    return WithJsonSchema(schema)


class WireModel(BaseModel):
    model_config = ConfigDict(populate_by_name=True)


class InputModel(BaseModel):
    """Request bodies: unknown fields are ignored, as the IONOS API does."""

    model_config = ConfigDict(extra="ignore")


class PatchInput(InputModel):
    """A PATCH body, whose fields are at the top level. ``properties`` (the wrapper of POST and PUT
    bodies) is kept only to refuse a wrapped body: ignored as an unknown field, it would be a 200
    that changes nothing."""

    properties: SkipJsonSchema[Any] = None

    def refuse_wrapper(self) -> None:
        if "properties" in self.model_fields_set:
            fields = ", ".join(name for name in type(self).model_fields if name != "properties")
            raise InvalidInput(
                f"is not a field of this PATCH: send {fields} at the top level of the body "
                "(only POST and PUT wrap them in properties)",
                field="properties",
            )


class ErrorMessage(WireModel):
    errorCode: str = Field(description="application error code (a string)", examples=["400"])
    message: str


class ErrorBody(WireModel):
    httpStatus: int
    messages: list[ErrorMessage]


class PaginationLinks(WireModel):
    """Links of the registries and tokens lists; ``""`` when there is no such page."""

    self_: str = Field(alias="self")
    previous: str
    next: str


class Links(WireModel):
    """Links of the repositories, artifacts and vulnerabilities lists."""

    prev: str | None = Field(None, description="only when offset > 0")
    self_: str = Field(alias="self")
    next: str | None = Field(None, description="only when offset + limit < total")


class ApiResourceMetadata(WireModel):
    """Metadata of registries and tokens."""

    createdBy: str
    createdByUserId: str
    createdDate: UtcTimestamp
    lastModifiedBy: str | None = None
    lastModifiedByUserId: str | None = None
    lastModifiedDate: UtcTimestamp | None = None
    state: str


ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorBody, "description": "invalid request (the message names the field and the rule)"},
    401: {"model": ErrorBody, "description": "missing or invalid credentials"},
    403: {"model": ErrorBody, "description": "the caller's role may not do this"},
    404: {"model": ErrorBody, "description": "no such resource (in the caller's contract)"},
    405: {"model": ErrorBody, "description": "method not allowed"},
    500: {"model": ErrorBody, "description": "internal error"},
}


def errors(*extra: int) -> dict[int | str, dict[str, Any]]:
    responses = dict(ERROR_RESPONSES)
    for status in extra:
        responses[status] = {"model": ErrorBody, "description": {409: "conflict"}.get(status, "error")}
    return responses
