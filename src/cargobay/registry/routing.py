"""Matching /v2/ paths and working out which registry a request addresses.

A registry is addressed by Host (``{registry}.{domain}``) or by the first path segment
(``/v2/{registry}/{repository}/…``); the client-visible name keeps whatever form the client used.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum


class Endpoint(Enum):
    BASE = "base"
    CATALOG = "catalog"
    TAGS = "tags"
    MANIFEST = "manifest"
    BLOB = "blob"
    UPLOADS = "uploads"  # POST .../blobs/uploads/
    UPLOAD = "upload"  # .../blobs/uploads/<id>
    REFERRERS = "referrers"


# Route templates, the ``route`` label of metrics and the access log (bounded cardinality).
TEMPLATES: dict[Endpoint, str] = {
    Endpoint.BASE: "/v2/",
    Endpoint.CATALOG: "/v2/_catalog",
    Endpoint.TAGS: "/v2/{name}/tags/list",
    Endpoint.MANIFEST: "/v2/{name}/manifests/{reference}",
    Endpoint.BLOB: "/v2/{name}/blobs/{digest}",
    Endpoint.UPLOADS: "/v2/{name}/blobs/uploads/",
    Endpoint.UPLOAD: "/v2/{name}/blobs/uploads/{uuid}",
    Endpoint.REFERRERS: "/v2/{name}/referrers/{digest}",
}

METHODS: dict[Endpoint, frozenset[str]] = {
    Endpoint.BASE: frozenset({"GET", "HEAD"}),
    Endpoint.CATALOG: frozenset({"GET"}),
    Endpoint.TAGS: frozenset({"GET"}),
    Endpoint.MANIFEST: frozenset({"GET", "HEAD", "PUT", "DELETE"}),
    Endpoint.BLOB: frozenset({"GET", "HEAD", "DELETE"}),
    Endpoint.UPLOADS: frozenset({"POST"}),
    Endpoint.UPLOAD: frozenset({"GET", "PATCH", "PUT", "DELETE"}),
    Endpoint.REFERRERS: frozenset({"GET"}),
}

_ROUTE = re.compile(
    r"^/v2/(?P<name>.+?)/(?:"
    r"(?P<manifests>manifests)/(?P<reference>[^/]+)"
    r"|(?P<uploads>blobs/uploads)/(?P<upload>[^/]*)"
    r"|(?P<blobs>blobs)/(?P<digest>[^/]+)"
    r"|(?P<tags>tags/list)"
    r"|(?P<referrers>referrers)/(?P<subject>[^/]+)"
    r")$"
)


@dataclass(frozen=True, slots=True)
class Route:
    endpoint: Endpoint
    name: str = ""  # as the client spells it
    param: str = ""  # reference, digest, upload id or subject


def match(path: str) -> Route | None:
    if path in ("/v2", "/v2/"):
        return Route(Endpoint.BASE)
    if path == "/v2/_catalog":
        return Route(Endpoint.CATALOG)
    m = _ROUTE.match(path)
    if m is None:
        return None
    name = m["name"]
    if m["manifests"]:
        return Route(Endpoint.MANIFEST, name, m["reference"])
    if m["uploads"]:
        upload = m["upload"]
        return Route(Endpoint.UPLOAD if upload else Endpoint.UPLOADS, name, upload)
    if m["blobs"]:
        return Route(Endpoint.BLOB, name, m["digest"])
    if m["tags"]:
        return Route(Endpoint.TAGS, name)
    return Route(Endpoint.REFERRERS, name, m["subject"])


@dataclass(frozen=True, slots=True)
class Address:
    registry: str
    repository: str  # the repository inside the registry
    client_name: str  # the name as the client spells it


def registry_from_host(host: str | None, domain: str | None) -> str | None:
    """``team.registry.example.com`` -> ``team`` when the domain is ``registry.example.com``."""
    if not host or not domain:
        return None
    hostname = host.rsplit(":", 1)[0] if not host.endswith("]") else host
    hostname = hostname.lower().rstrip(".")
    suffix = "." + domain.lower().strip(".")
    if hostname.endswith(suffix):
        label = hostname[: -len(suffix)]
        if label and "." not in label:
            return label
    return None


def address(name: str, host_registry: str | None) -> Address | None:
    """Split a client name into registry and repository; None when either part is empty."""
    if host_registry is not None:
        return Address(host_registry, name, name)
    registry, sep, repository = name.partition("/")
    if not sep or not registry or not repository:
        return None
    return Address(registry, repository, name)
