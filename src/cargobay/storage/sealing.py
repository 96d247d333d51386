"""Sealing small records (manifest bodies) per namespace; the no-op twin serves when encryption is off."""

from __future__ import annotations

from typing import Protocol


class Sealer(Protocol):
    async def seal(self, namespace: str, context: bytes, data: bytes) -> bytes:
        """Protect ``data`` for ``namespace``; ``context`` is bound as associated data."""
        ...

    async def open(self, namespace: str, context: bytes, sealed: bytes) -> bytes:
        """Inverse of seal; raises storage.base.IntegrityError on any mismatch."""
        ...


class PlainSealer:
    """Stores records as they are (encryption at rest switched off)."""

    async def seal(self, namespace: str, context: bytes, data: bytes) -> bytes:
        return data

    async def open(self, namespace: str, context: bytes, sealed: bytes) -> bytes:
        return sealed
