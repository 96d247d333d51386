"""What every layer knows about a registry on a request's path."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RegistryInfo:
    """A registry as the registry API sees it: identity, tenant and allowlist."""

    id: str
    name: str
    contract_number: int
    allowlist: tuple[str, ...]
