"""The scanning commands against a live server: ``vulndb import``/``status``/``sync`` and ``scan IMAGE``,
with an image pushed by crane and scanned by the server's own job worker."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support import osv_records as R
from tests.support.clients import ClientEnv
from tests.support.osv_mirror import DumpServer
from tests.support.server import Server
from tests.support.vulnimages import debian_base, python_layer, write_records, write_zip

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def scan_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    """A server of its own: the vulnerability database is global to an installation."""
    base = tmp_path_factory.mktemp("scan-cli")
    with Server(data_dir=base / "data", extra_env={"CARGOBAY_JOB_POLL_SECONDS": "0.2"}) as srv:
        srv.create_registry("scans")
        yield srv


def _crane_push(server: Server, clients: ClientEnv, tmp_path: Path, ref: str, layers: list[bytes]) -> str:
    clients.run("crane", "auth", "login", server.host, "-u", server.admin_user, "-p", server.admin_password)
    args = []
    for i, layer in enumerate(layers):
        path = tmp_path / f"layer{i}.tar.gz"
        path.write_bytes(layer)
        args += ["-f", str(path)]
    out = clients.run("crane", "--insecure", "append", *args, "-t", f"{server.host}/{ref}").stdout
    return out.strip().splitlines()[-1].rsplit("@", 1)[1]


def _scan_json(server: Server, image: str, *extra: str) -> dict[str, Any]:
    return dict(json.loads(server.cli("scan", image, "--format", "json", *extra).stdout))


def _wait_scanned(server: Server, image: str, timeout: float = 60) -> dict[str, Any]:
    deadline = time.monotonic() + timeout
    while True:
        result = _scan_json(server, image, "--no-scan")
        if result["status"] not in (None, "pending"):
            return result
        assert time.monotonic() < deadline, f"{image} not scanned in {timeout} s: {result}"
        time.sleep(0.3)


def test_import_push_and_scan_report(scan_server: Server, clients: ClientEnv, tmp_path: Path) -> None:
    first = [r for r in R.ALL if r["id"] not in ("DEBIAN-CVE-2023-4911", "DSA-5514-1")]
    out = scan_server.cli("vulndb", "import", str(write_records(tmp_path / "osv", first)))
    assert "added" in out.stdout and "a rescan of recent artifacts is queued" in out.stdout
    status = scan_server.cli("vulndb", "status").stdout
    assert status.startswith("version 1 (9 advisories")  # the withdrawn record is not counted

    digest = _crane_push(scan_server, clients, tmp_path, "scans/team/app:v1", [debian_base(), python_layer()])
    result = _wait_scanned(scan_server, "scans/team/app:v1")
    assert result["image"] == f"scans/team/app@{digest}" and result["status"] == "scanned"
    ids = {v["id"] for v in result["vulnerabilities"]}
    assert ids == {"CVE-2024-28085", "CVE-2022-0563", "CVE-2023-32681"}
    assert (result["total"], result["fixable"], result["maxSeverity"]) == (3, 2, "medium")

    # A second import with the glibc advisories: the server's rescan job finds them.
    scan_server.cli(
        "vulndb",
        "import",
        str(write_zip(tmp_path / "Debian" / "all.zip", [R.DEBIAN_CVE_2023_4911, R.DSA_5514_1])),
    )
    deadline = time.monotonic() + 60
    while "CVE-2023-4911" not in {
        v["id"] for v in _scan_json(scan_server, f"scans/team/app@{digest}", "--no-scan")["vulnerabilities"]
    }:
        assert time.monotonic() < deadline, "the rescan did not find CVE-2023-4911"
        time.sleep(0.3)

    table = scan_server.cli("scan", f"127.0.0.1:1/scans/team/app@{digest}").stdout  # a host prefix is dropped
    assert "CVE-2023-4911" in table and "2.36-9+deb12u3" in table and "libc6" in table
    sbom = json.loads(scan_server.cli("scan", "scans/team/app:v1", "--format", "sbom").stdout)
    assert sbom["specVersion"] == "1.6" and any(
        c.get("purl", "").startswith("pkg:pypi/requests@2.28.1") for c in sbom["components"]
    )


def test_scan_refuses_what_it_cannot_find(scan_server: Server) -> None:
    missing = scan_server.cli("scan", "nope/team/app:v1", check=False)
    assert missing.returncode == 1 and "registry 'nope' not found" in missing.stderr
    unknown = scan_server.cli("scan", "scans/team/none:v9", check=False)
    assert unknown.returncode == 1 and "not found in scans" in unknown.stderr
    bad = scan_server.cli("scan", "justaname", check=False)
    assert bad.returncode == 1 and "registry/repository" in bad.stderr
    bad_format = scan_server.cli("scan", "scans/team/app:v1", "--format", "xml", check=False)
    assert bad_format.returncode == 1


def test_import_refuses_paths_that_are_not_osv_sources(scan_server: Server, tmp_path: Path) -> None:
    result = scan_server.cli("vulndb", "import", str(tmp_path / "absent.json"), check=False)
    assert result.returncode == 1 and "no such file or folder" in result.stderr
    (tmp_path / "broken.json").write_text("[1, 2]")
    only_bad = scan_server.cli("vulndb", "import", str(tmp_path / "broken.json"), check=False)
    assert only_bad.returncode == 1 and "an OSV record is a JSON object" in only_bad.stderr


def test_sync_fetches_from_a_mirror_and_asks_conditionally(scan_server: Server, tmp_path: Path) -> None:
    root = tmp_path / "bucket"
    write_zip(root / "PyPI" / "all.zip", [R.GHSA_URLLIB3])
    with DumpServer(root) as mirror:
        first = scan_server.cli("vulndb", "sync", "--url", mirror.url, "--ecosystem", "PyPI")
        assert "fetched: PyPI" in first.stdout
        again = scan_server.cli("vulndb", "sync", "--url", mirror.url, "--ecosystem", "PyPI")
        assert "not modified: PyPI" in again.stdout
        missing = scan_server.cli("vulndb", "sync", "--url", mirror.url, "--ecosystem", "Nope", check=False)
        assert missing.returncode == 1 and "HTTP 404" in missing.stderr
    assert [status for _, _, status in mirror.requests] == [200, 304, 404]
