"""Vulnerability scanning end to end, with real clients: images built here from real-looking layers
(a Debian 12 dpkg status with util-linux and glibc before their security fixes, a Python
distribution) are pushed with crane and skopeo, OSV records of real advisories are imported with the
CLI, the server's jobs scan them, and the official IONOS SDK reads the results: findings with
severity and fixable filters and orders, CVE search, repository severities, one advisory, a
never-scanned artifact's nulls, and the rescan an import of a new advisory triggers."""

from __future__ import annotations

import gzip
import json
import time
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import httpx
import pytest
from ionoscloud_container_registry import (
    ApiClient,
    ArtifactsApi,
    PatchRegistryInput,
    PostRegistryInput,
    PostRegistryProperties,
    RegistriesApi,
    RegistryFeatures,
    RepositoriesApi,
    VulnerabilitiesApi,
)
from ionoscloud_container_registry.exceptions import BadRequestException, NotFoundException
from ionoscloud_container_registry.models.feature_vulnerability_scanning import FeatureVulnerabilityScanning

from tests.support import osv_records as R
from tests.support.clients import ClientEnv
from tests.support.images import (
    OCI_CONFIG,
    OCI_LAYER_GZIP,
    OCI_MANIFEST,
    Content,
    Image,
    canonical,
    write_oci_layout,
)
from tests.support.mgmt import Login, bearer_token, new_contract, sdk, unique
from tests.support.server import Server
from tests.support.vulnimages import app_layer, debian_base, python_layer, sha256, write_records, write_zip

pytestmark = pytest.mark.slow
T = TypeVar("T")
GLIBC = ("DEBIAN-CVE-2023-4911", "DSA-5514-1")  # imported later: the rescan finds them


@pytest.fixture(scope="module")
def scan_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of its own: the vulnerability database is global to an installation."""
    base = tmp_path_factory.mktemp("scan-sdk")
    with Server(data_dir=base / "data", extra_env={"CARGOBAY_JOB_POLL_SECONDS": "0.2"}) as srv:
        yield srv


@pytest.fixture(scope="module")
def owner(scan_server: Server) -> Login:
    return new_contract(scan_server, "scan-owner")


@pytest.fixture(scope="module")
def api(scan_server: Server, owner: Login) -> Iterator[ApiClient]:
    with sdk(scan_server, token=bearer_token(scan_server, owner)) as client:
        yield client


def _without_glibc() -> list[dict[str, Any]]:
    """The records every test starts from (importing them again changes nothing)."""
    return [r for r in R.ALL if r["id"] not in GLIBC]


def _features(scanning: bool) -> RegistryFeatures:
    return RegistryFeatures(vulnerability_scanning=FeatureVulnerabilityScanning(enabled=scanning))


def _registry(api: ApiClient, scanning: bool) -> tuple[str, str]:
    name = unique("scan")
    body = PostRegistryInput(
        properties=PostRegistryProperties(name=name, location="de/fra", features=_features(scanning))
    )
    return name, str(RegistriesApi(api).registries_post(body).id)


def _wait(check: Callable[[], T | None], what: str, timeout: float = 90) -> T:
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value is not None:
            return value
        assert time.monotonic() < deadline, f"{what} not reached in {timeout} s"
        time.sleep(0.3)


def _crane_append(server: Server, clients: ClientEnv, login: Login, ref: str, layers: list[bytes]) -> str:
    clients.run("crane", "auth", "login", server.host, "-u", login.email, "-p", login.password)
    args = []
    for i, layer in enumerate(layers):
        path = clients.workdir / f"{sha256(layer)[7:19]}-{i}.tar.gz"
        path.write_bytes(layer)
        args += ["-f", str(path)]
    out = clients.run("crane", "--insecure", "append", *args, "-t", f"{server.host}/{ref}").stdout
    return out.strip().splitlines()[-1].rsplit("@", 1)[1]


def _skopeo_copy(server: Server, clients: ClientEnv, login: Login, ref: str, layers: list[bytes]) -> str:
    blobs = tuple(Content(OCI_LAYER_GZIP, layer) for layer in layers)
    config_doc = {
        "architecture": "amd64",
        "os": "linux",
        "rootfs": {"type": "layers", "diff_ids": [sha256(gzip.decompress(layer)) for layer in layers]},
    }
    config = Content(OCI_CONFIG, canonical(config_doc))
    manifest = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": config.descriptor(),
        "layers": [b.descriptor() for b in blobs],
    }
    image = Image(config, blobs, Content(OCI_MANIFEST, canonical(manifest)))
    layout = write_oci_layout(clients.workdir / "layout", {"v1": image})
    clients.run(
        "skopeo",
        "--insecure-policy",
        "copy",
        "--retry-times",
        "0",
        "--dest-creds",
        f"{login.email}:{login.password}",
        "--dest-tls-verify=false",
        f"oci:{layout}:v1",
        f"docker://{server.host}/{ref}",
    )
    return image.digest


def _findings(api: ApiClient, rid: str, repository: str, digest: str, **options: Any) -> list[Any]:
    result = ArtifactsApi(api).registries_repositories_artifacts_vulnerabilities_get(
        rid, repository, digest, **options
    )
    assert result.id == "vulnerabilities" and result.type == "collection"
    return list(result.items or [])


def _artifact(api: ApiClient, rid: str, repository: str, digest: str) -> Any:
    return ArtifactsApi(api).registries_repositories_artifacts_find_by_digest(rid, repository, digest)


def test_pushed_images_are_scanned_searched_and_rescanned(
    scan_server: Server, owner: Login, api: ApiClient, clients: ClientEnv, tmp_path: Path
) -> None:
    scan_server.cli("vulndb", "import", str(write_records(tmp_path / "osv", _without_glibc())))
    name, rid = _registry(api, scanning=True)
    app = _crane_append(scan_server, clients, owner, f"{name}/team/app:v1", [debian_base(), python_layer()])
    base = _skopeo_copy(
        scan_server, clients, owner, f"{name}/team/base:v1", [debian_base(), app_layer("base")]
    )

    scanned = _wait(
        lambda: (
            _artifact(api, rid, "team/app", app)
            if _artifact(api, rid, "team/app", app).metadata.last_scanned_at
            else None
        ),
        "the crane image's scan",
    )
    meta = scanned.metadata
    assert (meta.vuln_total_count, meta.vuln_fixable_count, meta.vuln_max_severity) == (3, 2, "medium")
    assert meta.vuln_total_score == pytest.approx(5.5 + 6.1)

    items = {v.id: v for v in _findings(api, rid, "team/app", app)}
    assert set(items) == {"CVE-2024-28085", "CVE-2022-0563", "CVE-2023-32681"}
    wall = items["CVE-2024-28085"].properties
    assert wall.fixable and wall.severity == "unknown" and wall.score is None
    assert {p.name for p in wall.affects} >= {"bsdutils", "util-linux", "mount"}
    assert {p.type for p in wall.affects} == {"deb"} and "1:2.38.1-5+b1" in {p.version for p in wall.affects}
    assert wall.description.startswith("wall in util-linux")
    assert "https://security-tracker.debian.org/tracker/CVE-2024-28085" in wall.references
    assert wall.data_source.id == "DEBIAN-CVE-2024-28085"
    assert "util-linux to 2.38.1-5+deb12u1" in wall.recommendations
    requests = items["CVE-2023-32681"].properties
    assert (requests.severity, requests.score, requests.fixable) == ("medium", 6.1, True)
    assert [(p.type, p.name, p.version) for p in requests.affects] == [("pypi", "requests", "2.28.1")]
    assert items["CVE-2023-32681"].metadata.published_at is not None

    def ids(**options: Any) -> list[str]:
        return [v.id for v in _findings(api, rid, "team/app", app, **options)]

    assert ids(filter_severity="medium") == ["CVE-2023-32681", "CVE-2022-0563"]  # -score is the default
    assert sorted(ids(filter_severity="medium,unknown")) == sorted(items)
    assert ids(filter_fixable=True, order_by="score") == ["CVE-2023-32681", "CVE-2024-28085"]
    assert ids(filter_fixable=False) == ["CVE-2022-0563"]
    assert ids(order_by="-fixable")[-1] == "CVE-2022-0563"
    assert ids(limit=1, offset=1) == ["CVE-2022-0563"]
    with pytest.raises(BadRequestException):
        ids(filter_severity="severe")

    _wait(lambda: _artifact(api, rid, "team/base", base).metadata.last_scanned_at, "the skopeo image's scan")
    artifacts = ArtifactsApi(api)

    def search(ident: str) -> set[str]:
        found = artifacts.registries_artifacts_get(rid, filter_vulnerability_id=ident)
        return {a.properties.repository_name for a in found.items or []}

    assert search("CVE-2024-28085") == {"team/app", "team/base"}
    assert search("DSA-5650-1") == search("DEBIAN-CVE-2024-28085") == {"team/app", "team/base"}
    assert search("GHSA-j8r2-6x86-q33q") == search("CVE-2023-32681") == {"team/app"}
    assert search("CVE-2021-44228") == set()
    by_count = artifacts.registries_artifacts_get(rid, order_by="-vulnTotalCount").items
    assert [a.properties.repository_name for a in by_count] == ["team/app", "team/base"]

    repositories = RepositoriesApi(api)
    listed = {r.id: r for r in repositories.registries_repositories_get(rid).items}
    assert listed["team/app"].metadata.last_severity == "medium"
    medium = repositories.registries_repositories_get(rid, filter_vulnerability_severity="medium,high").items
    assert {r.id for r in medium} == {"team/app", "team/base"}
    assert repositories.registries_repositories_get(rid, filter_vulnerability_severity="critical").items == []

    advisory = VulnerabilitiesApi(api).vulnerabilities_find_by_id("CVE-2023-32681")
    assert advisory.id == "CVE-2023-32681" and advisory.properties.score == 6.1
    assert {p.name.lower() for p in advisory.properties.affects} == {"requests"}
    with pytest.raises(NotFoundException):
        VulnerabilitiesApi(api).vulnerabilities_find_by_id("CVE-2023-4911")  # not imported yet

    # An import that adds the glibc advisories: the rescan it queues finds them in both images.
    scan_server.cli(
        "vulndb",
        "import",
        str(write_zip(tmp_path / "Debian" / "all.zip", [R.DEBIAN_CVE_2023_4911, R.DSA_5514_1])),
    )
    _wait(lambda: True if "CVE-2023-4911" in ids() else None, "the rescan of the crane image")
    glibc = {v.id: v for v in _findings(api, rid, "team/app", app)}["CVE-2023-4911"].properties
    assert (glibc.severity, glibc.score, glibc.fixable) == ("high", 7.8, True)
    assert _artifact(api, rid, "team/app", app).metadata.vuln_max_severity == "high"
    assert search("CVE-2023-4911") == {"team/app", "team/base"}
    assert VulnerabilitiesApi(api).vulnerabilities_find_by_id("CVE-2023-4911").properties.severity == "high"


def test_a_never_scanned_artifact_shows_nulls_not_zeros(
    scan_server: Server, owner: Login, api: ApiClient, clients: ClientEnv, tmp_path: Path
) -> None:
    scan_server.cli(
        "vulndb", "import", str(write_records(tmp_path / "osv", R.ALL))
    )  # upserts: no-op if known
    name, rid = _registry(api, scanning=False)
    digest = _crane_append(scan_server, clients, owner, f"{name}/team/app:v1", [debian_base()])
    meta = _artifact(api, rid, "team/app", digest).metadata
    assert meta.last_scanned_at is None and meta.vuln_max_severity is None
    assert (meta.vuln_total_count, meta.vuln_fixable_count, meta.vuln_total_score) == (None, None, None)
    assert _findings(api, rid, "team/app", digest) == []
    url = f"{scan_server.url}/containerregistries/registries/{rid}/repositories/team%2Fapp/artifacts/{digest}"
    raw = httpx.get(url, auth=owner.auth, timeout=30).json()["metadata"]
    fields = ("lastScannedAt", "vulnMaxSeverity", "vulnTotalCount", "vulnFixableCount", "vulnTotalScore")
    assert {k: raw[k] for k in fields} == dict.fromkeys(fields)  # present on the wire, as null
    repository = RepositoriesApi(api).registries_repositories_find_by_name(rid, "team/app")
    assert repository.metadata.last_severity is None
    ordered = ArtifactsApi(api).registries_artifacts_get(rid, order_by="-vulnTotalCount").items
    assert [a.id for a in ordered] == [digest]  # null counts sort last, and are still listed

    # Switching scanning on scans what the registry already holds; it cannot be switched off again.
    registries = RegistriesApi(api)
    registries.registries_patch(rid, PatchRegistryInput(features=_features(True)))
    scanned = _wait(
        lambda: meta if (meta := _artifact(api, rid, "team/app", digest).metadata).last_scanned_at else None,
        "the scan of what the registry held",
    )
    found = {v.id for v in _findings(api, rid, "team/app", digest)}
    assert {"CVE-2024-28085", "CVE-2022-0563"} <= found and scanned.vuln_total_count == len(found)
    assert RepositoriesApi(api).registries_repositories_find_by_name(rid, "team/app").metadata.last_severity
    with pytest.raises(BadRequestException):
        registries.registries_patch(rid, PatchRegistryInput(features=_features(False)))
    assert registries.registries_find_by_id(rid).properties.features.vulnerability_scanning.enabled


def test_the_extensions_serve_the_sbom_and_the_scan_state(
    scan_server: Server, owner: Login, api: ApiClient, clients: ClientEnv
) -> None:
    name, rid = _registry(api, scanning=True)
    digest = _crane_append(scan_server, clients, owner, f"{name}/team/app:v1", [python_layer()])
    base = (
        f"{scan_server.url}/containerregistries/x-cargobay/registries/{rid}"
        f"/repositories/team%2Fapp/artifacts/{digest}"
    )
    with httpx.Client(auth=owner.auth, timeout=30) as http:
        sbom = _wait(
            lambda: r if (r := http.get(base + "/sbom")).status_code == 200 else None, "the SBOM job"
        )
        assert sbom.headers["content-type"] == "application/vnd.cyclonedx+json"
        doc = sbom.json()
        assert doc["specVersion"] == "1.6"
        assert any(c.get("purl") == "pkg:pypi/requests@2.28.1" for c in doc["components"])
        state = http.get(base + "/scan").json()
        assert state["status"] == "scanned" and state["packages"] == 2 and state["digest"] == digest
        missing = http.get(base.replace(digest, "sha256:" + "0" * 64) + "/scan")
        assert missing.status_code == 404 and missing.json()["httpStatus"] == 404
        bad = http.get(base.replace(digest, "sha256:xyz") + "/sbom")
        assert bad.status_code == 400 and bad.json()["messages"][0]["errorCode"] == "400"
        assert http.get(base + "/scan", auth=None).status_code == 401
        for wrong, field in [(rid, "registryId"), ("team%2Fapp", "repositoryName")]:
            refused = http.get(base.replace(wrong, "NOT-valid") + "/scan")
            assert refused.status_code == 400 and field in refused.json()["messages"][0]["message"]
        other = new_contract(scan_server, "scan-other")
        assert http.get(base + "/sbom", auth=other.auth).status_code == 404  # another tenant's artifact
    assert json.loads(json.dumps(state))["lastScannedAt"].endswith("Z")
