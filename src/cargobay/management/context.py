"""What the management routes are wired with, plus the URL-shaped facts they render (hrefs, hostnames)."""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import quote, urlencode

from starlette.requests import Request

from cargobay.config import Settings
from cargobay.services.api_tokens import ApiTokenService
from cargobay.services.artifacts import ArtifactService
from cargobay.services.gc import GarbageCollector
from cargobay.services.registries import public_origin
from cargobay.services.registry_admin import RegistryAdmin
from cargobay.services.repository_admin import RepositoryAdmin
from cargobay.services.tokens import TokenService
from cargobay.services.vulnerabilities import VulnerabilityService

PREFIX = "/containerregistries"


@dataclass(frozen=True)
class Management:
    settings: Settings
    registries: RegistryAdmin
    tokens: TokenService
    repositories: RepositoryAdmin
    artifacts: ArtifactService
    api_tokens: ApiTokenService
    vulnerabilities: VulnerabilityService
    gc: GarbageCollector

    def origin(self, request: Request) -> str:
        """``scheme://host[:port]`` as clients reach the server (``CARGOBAY_PUBLIC_URL`` wins)."""
        return public_origin(
            self.settings.public_url, request.url.scheme, request.headers.get("host"), self.settings.listen
        )

    def public_host(self, request: Request) -> str:
        """``host:port`` for path-style registry hostnames."""
        return self.origin(request).split("://", 1)[-1]

    def href(self, request: Request, *segments: str, query: dict[str, str | int] | None = None) -> str:
        path = "/".join(quote(s, safe="") for s in segments)
        url = f"{self.origin(request)}{PREFIX}/{path}"
        if query:
            url += "?" + urlencode(query)
        return url
