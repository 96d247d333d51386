"""What a /v2/ handler gets: the parsed request, the addressed repository and the granted access."""

from __future__ import annotations

from dataclasses import dataclass

from starlette.requests import Request

from cargobay.auth.registry_access import Access
from cargobay.domain.registries import RegistryInfo
from cargobay.registry.routing import Address, Route


@dataclass(frozen=True, slots=True)
class Call:
    request: Request
    route: Route
    address: Address | None
    access: Access

    @property
    def registry(self) -> RegistryInfo:
        assert self.access.registry is not None
        return self.access.registry

    @property
    def repository(self) -> str:
        assert self.address is not None
        return self.address.repository

    @property
    def name(self) -> str:
        """The repository name as the client spells it (used in Location headers and bodies)."""
        assert self.address is not None
        return self.address.client_name

    @property
    def head(self) -> bool:
        return self.request.method == "HEAD"
