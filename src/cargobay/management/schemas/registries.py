"""Registries, locations and their sub-objects (GC schedule, features, storage usage)."""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import Field, StrictBool, StrictStr

from cargobay.domain.allowlist import MAX_ENTRIES
from cargobay.domain.names import REGISTRY_NAME_RE
from cargobay.domain.schedule import DAYS, TIME_RE
from cargobay.management.schemas.common import (
    ApiResourceMetadata,
    InputModel,
    PaginationLinks,
    PatchInput,
    UtcTimestamp,
    WireModel,
    doc,
)

Day = Literal["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"]
DayIn = Annotated[StrictStr, doc({"type": "string", "enum": list(DAYS)})]
TIME_DOC = {
    "type": "string",
    "description": "UTC time of day, RFC 3339 partial-time (optionally with Z or +00:00); echoed as given",
    "pattern": TIME_RE.pattern,
    "example": "01:23:00+00:00",
}
NAME_DOC = {
    "type": "string",
    "pattern": REGISTRY_NAME_RE.pattern,
    "description": "3-63 of a-z, 0-9 and '-', starting with a letter, ending with a letter or digit; "
    "globally unique; immutable",
}
SUBNET_DOC = {
    "type": "string",
    "description": "IPv4 or IPv6 address or CIDR network; a bare address is a single host",
    "example": "198.51.100.0/24",
}


# -- requests -------------------------------------------------------------------------------------
class WeeklyScheduleIn(InputModel):
    days: list[DayIn] | None = Field(None, description="weekdays (case-sensitive); null = none")
    time: Annotated[StrictStr, doc(TIME_DOC)]


class FeatureIn(InputModel):
    enabled: StrictBool
    properties: dict[str, Any] | None = None


class RegistryFeaturesIn(InputModel):
    vulnerabilityScanning: FeatureIn | None = Field(
        None, description="on by default; cannot be switched off once on"
    )


class PostRegistryProperties(InputModel):
    name: Annotated[StrictStr, doc(NAME_DOC)]
    location: Annotated[StrictStr, doc({"type": "string", "description": "an id from GET /locations"})]
    garbageCollectionSchedule: WeeklyScheduleIn | None = None
    features: RegistryFeaturesIn | None = None
    apiSubnetAllowList: list[Annotated[StrictStr, doc(SUBNET_DOC)]] | None = Field(
        None, json_schema_extra={"maxItems": MAX_ENTRIES}, description="empty or absent: no restriction"
    )


class PostRegistryInput(InputModel):
    properties: PostRegistryProperties


class PatchRegistryInput(PatchInput):
    """Absent fields stay as they are; ``apiSubnetAllowList: []`` clears the list and
    ``garbageCollectionSchedule: null`` removes the schedule."""

    garbageCollectionSchedule: WeeklyScheduleIn | None = None
    features: RegistryFeaturesIn | None = None
    apiSubnetAllowList: list[Annotated[StrictStr, doc(SUBNET_DOC)]] | None = Field(
        None, json_schema_extra={"maxItems": MAX_ENTRIES}
    )


# -- responses ------------------------------------------------------------------------------------
class WeeklySchedule(WireModel):
    days: list[Day]
    time: str


class FeatureVulnerabilityScanning(WireModel):
    enabled: bool


class RegistryFeatures(WireModel):
    vulnerabilityScanning: FeatureVulnerabilityScanning


class StorageUsage(WireModel):
    bytes: int
    updatedAt: UtcTimestamp | None = None


class RegistryProperties(WireModel):
    name: str
    location: str
    hostname: str = Field(description='"" while the registry is New; {name}.{domain} or host:port/{name}')
    garbageCollectionSchedule: WeeklySchedule | None = None
    storageUsage: StorageUsage
    features: RegistryFeatures
    apiSubnetAllowList: list[str]


class RegistryResponse(WireModel):
    id: str
    type: Literal["registry"] = "registry"
    href: str
    metadata: ApiResourceMetadata
    properties: RegistryProperties


class RegistryPagination(WireModel):
    limit: int
    token: str = Field(description='cursor of the next page ("" on the last page)')


class RegistriesResponse(WireModel):
    id: Literal["registries"] = "registries"
    type: Literal["collection"] = "collection"
    href: str
    items: list[RegistryResponse]
    pagination: RegistryPagination
    links: PaginationLinks = Field(alias="_links")


class Location(WireModel):
    id: str


class LocationsResponse(WireModel):
    id: Literal["locations"] = "locations"
    type: Literal["collection"] = "collection"
    href: str
    items: list[Location]
