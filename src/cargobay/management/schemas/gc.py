"""Garbage-collection runs: Cargobay's extension beside the IONOS shapes (the IONOS API has none)."""

from __future__ import annotations

from typing import Literal

from pydantic import Field, StrictBool

from cargobay.management.schemas.common import InputModel, UtcTimestamp, WireModel


class PostGarbageCollectionRunProperties(InputModel):
    dryRun: StrictBool = Field(False, description="report what a run would free, delete nothing")


class PostGarbageCollectionRunInput(InputModel):
    """The body is optional: no body is a run that deletes."""

    properties: PostGarbageCollectionRunProperties = Field(default_factory=PostGarbageCollectionRunProperties)


class GarbageCollectionProgress(WireModel):
    phase: str | None = Field(description="uploads, manifests, blobs, objects or sweep while running")
    done: int
    total: int
    secondsLeft: float | None = Field(description="estimate while running, else null")


class GarbageCollectionRun(WireModel):
    state: Literal["queued", "running", "succeeded", "failed"]
    trigger: Literal["schedule", "api", "cli"]
    requestedBy: str | None = Field(description="the user who asked for it through the API")
    dryRun: bool
    gracePeriodSeconds: int = Field(description="only what changed at least this long ago is collected")
    untaggedManifests: Literal["keep", "delete"]
    createdDate: UtcTimestamp
    startedDate: UtcTimestamp | None
    finishedDate: UtcTimestamp | None
    progress: GarbageCollectionProgress
    blobsFreed: int = Field(description="for a dry run: what a run would free")
    bytesFreed: int = Field(description="subtracted from the registry's storageUsage")
    manifestsDeleted: int
    uploadsExpired: int
    orphanedObjectsDeleted: int = Field(description="stored objects no row named (crash leftovers)")
    error: str | None = Field(description="why a failed run failed")


class GarbageCollectionRunRead(WireModel):
    id: str = Field(description="the run's number, as a string")
    type: Literal["garbageCollectionRun"] = "garbageCollectionRun"
    href: str
    properties: GarbageCollectionRun


class GarbageCollectionRunReadList(WireModel):
    id: Literal["runs"] = "runs"
    type: Literal["collection"] = "collection"
    href: str
    items: list[GarbageCollectionRunRead] = Field(description="newest first")
    limit: int = Field(ge=0)
