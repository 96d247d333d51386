"""Repositories, artifacts and vulnerabilities (read-only views of what was pushed)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from cargobay.management.schemas.common import Links, UtcTimestamp, WireModel


class RepositoryMetadata(WireModel):
    createdDate: UtcTimestamp
    resourceURN: str
    artifactCount: int
    pullCount: int
    pushCount: int
    lastPulledAt: UtcTimestamp | None = None
    lastPushedAt: UtcTimestamp | None = None
    lastSeverity: str | None = Field(
        None, description="highest severity of the last pushed artifact; null until it has a scan result"
    )


class Repository(WireModel):
    name: str


class RepositoryRead(WireModel):
    id: str = Field(description="the repository name")
    type: Literal["repository"] = "repository"
    href: str
    metadata: RepositoryMetadata
    properties: Repository


class RepositoryReadList(WireModel):
    id: Literal["repositories"] = "repositories"
    type: Literal["collection"] = "collection"
    href: str
    items: list[RepositoryRead]
    offset: int = Field(ge=0)
    limit: int = Field(ge=0)
    links: Links = Field(alias="_links")


class ArtifactMetadata(WireModel):
    createdDate: UtcTimestamp
    resourceURN: str
    lastPushedAt: UtcTimestamp
    lastPulledAt: UtcTimestamp | None = None
    lastScannedAt: UtcTimestamp | None = Field(None, description="null: not scanned")
    pushCount: int
    pullCount: int
    # null until a scan has a result (never 0 for "not scanned"); severity `unknown` without counts
    # for an artifact that cannot be scanned
    vulnMaxSeverity: str | None = Field(None, description="none, low, medium, high, critical or unknown")
    vulnTotalScore: float | None = Field(None, description="sum of the findings' CVSS scores")
    vulnTotalCount: int | None = None
    vulnFixableCount: int | None = None


class Artifact(WireModel):
    repositoryName: str
    digest: str
    tags: list[str]
    mediaType: str


class ArtifactRead(WireModel):
    id: str = Field(description="the digest")
    type: Literal["artifact"] = "artifact"
    href: str
    metadata: ArtifactMetadata
    properties: Artifact


class ArtifactReadList(WireModel):
    id: Literal["artifacts"] = "artifacts"
    type: Literal["collection"] = "collection"
    href: str
    items: list[ArtifactRead]
    offset: int = Field(ge=0)
    limit: int = Field(ge=0)
    links: Links = Field(alias="_links")


class Purl(WireModel):
    type: str
    name: str
    version: str


class VulnerabilityDataSource(WireModel):
    id: str | None = None
    url: str | None = None


class Vulnerability(WireModel):
    description: str
    recommendations: str | None = None
    dataSource: VulnerabilityDataSource
    fixable: bool
    affects: list[Purl]
    references: list[str] | None = None
    severity: str = Field(description="none, low, medium, high, critical or unknown (no CVSS vector)")
    score: float | None = Field(description="the highest CVSS base score; null when severity is unknown")


class VulnerabilityMetadata(WireModel):
    publishedAt: UtcTimestamp | None = Field(description="when the advisory was published (else modified)")
    updatedAt: UtcTimestamp | None = None


class VulnerabilityRead(WireModel):
    id: str
    type: Literal["vulnerability"] = "vulnerability"
    href: str
    metadata: VulnerabilityMetadata
    properties: Vulnerability


class VulnerabilityReadList(WireModel):
    id: Literal["vulnerabilities"] = "vulnerabilities"
    type: Literal["collection"] = "collection"
    href: str
    items: list[VulnerabilityRead]
    offset: int = Field(ge=0)
    limit: int = Field(ge=0)
    links: Links = Field(alias="_links")
