"""Cross-check against a scanner nobody here wrote: Google's osv-scanner v2.5.1, offline.

One ``docker save`` archive is built here (an older Debian 12 base with util-linux and glibc before
their security fixes, a Python distribution, an npm package, a jar, a Go binary built here with
``go build`` and a Python package that an upper layer deletes with a whiteout). osv-scanner reads it
with the test's OSV records zipped per ecosystem as its offline database; our library reads the
same layers with the same records. The findings are compared as (advisory id, package name)
pairs: every pair on one side only must be in ``EXPECTED_DIFFERENCES`` with the reason and the
side that is right, and every allowed difference must still occur (so the list cannot go stale).
"""

from __future__ import annotations

import io
import json
import os
import subprocess
import tarfile
import zipfile
from collections.abc import Iterator
from pathlib import Path

import pytest

from cargobay.scanning.inventory import ImageInventory, merge
from cargobay.scanning.layers import read_layer
from cargobay.scanning.matcher import RecordIndex, match
from cargobay.scanning.osv import OsvRecord
from tests.support import osv_records as R
from tests.support.peers import CACHE, peer
from tests.support.scanimages import (
    DEBIAN12_OS_RELEASE,
    DEBIAN12_STATUS,
    Entry,
    build_go_binary,
    dist_info,
    docker_archive,
    jar,
    layer_tar,
    npm_package,
)

pytestmark = pytest.mark.slow

Pair = tuple[str, str]  # (advisory id, package name: the binary package for OS packages)

# Which side is right is decided against the advisory's own data (the Debian security tracker for
# Debian records: a source package version before the fixed version is vulnerable).
EXPECTED_DIFFERENCES: dict[Pair, tuple[str, str]] = {
    # bsdutils is 1:2.38.1-5+b1 built from util-linux 2.38.1-5: the epoch belongs to the binary only.
    # osv-scanner compares the binary version with the source package's fixed version
    # (2.38.1-5+deb12u1), and the epoch makes it look newer; we compare the source version.
    ("DEBIAN-CVE-2024-28085", "bsdutils"): ("ours", "binary epoch hides the source version from osv-scanner"),
    ("DSA-5650-1", "bsdutils"): ("ours", "same: binary epoch 1: versus source version 2.38.1-5"),
    # PYSEC-2023-74 names the package "Requests"; PyPI names are case- and separator-insensitive
    # (PEP 503). osv-scanner's offline matcher compares names as written and misses it; the
    # finding itself (CVE-2023-32681) is found by both sides through GHSA-j8r2-6x86-q33q.
    ("PYSEC-2023-74", "requests"): ("ours", "PEP 503 name normalisation ('Requests' is 'requests')"),
}

UTIL_LINUX_BINARIES = (
    "bsdutils",
    "libblkid1",
    "libmount1",
    "libsmartcols1",
    "libuuid1",
    "mount",
    "util-linux",
)
GLIBC_BINARIES = ("libc6", "libc-bin")


def _old_bookworm_status() -> str:
    """The committed Debian 12 status, rolled back to util-linux 2.38.1-5+b1 and glibc 2.36-9+deb12u1."""
    out = []
    for stanza in DEBIAN12_STATUS.read_text().split("\n\n"):
        name = stanza.split("\n", 1)[0].removeprefix("Package: ")
        lines = stanza.split("\n")
        if name in UTIL_LINUX_BINARIES:
            epoch = "1:" if name == "bsdutils" else ""
            lines = [ln for ln in lines if not ln.startswith(("Version:", "Source:"))]
            lines += ["Source: util-linux (2.38.1-5)", f"Version: {epoch}2.38.1-5+b1"]
        elif name in GLIBC_BINARIES:
            lines = [ln for ln in lines if not ln.startswith(("Version:", "Source:"))]
            lines += ["Source: glibc", "Version: 2.36-9+deb12u1"]
        out.append("\n".join(lines))
    return "\n\n".join(out) + "\n"


def _npm_lockfile(packages: dict[str, str]) -> Entry:
    """``node_modules/.package-lock.json`` as npm >= 7 writes it (what osv-scanner reads in images)."""
    doc = {
        "name": "app",
        "lockfileVersion": 3,
        "requires": True,
        "packages": {
            f"node_modules/{n}": {"version": v, "resolved": f"https://x/{n}-{v}.tgz"}
            for n, v in packages.items()
        },
    }
    return Entry("app/node_modules/.package-lock.json", json.dumps(doc).encode())


@pytest.fixture(scope="module")
def workdir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("crosscheck")


@pytest.fixture(scope="module")
def go_binary(workdir: Path) -> bytes | None:
    cache = CACHE / "go" / "build"
    try:
        return build_go_binary(workdir, cache if cache.is_dir() else None)
    except FileNotFoundError:
        return None  # reported by test_go_part_ran


@pytest.fixture(scope="module")
def layers(go_binary: bytes | None) -> list[bytes]:
    base = layer_tar(
        [
            ("etc/os-release", DEBIAN12_OS_RELEASE),
            ("etc/debian_version", b"12.1\n"),
            ("var/lib/dpkg/status", _old_bookworm_status().encode()),
        ]
    )
    app_entries: list[Entry | tuple[str, bytes]] = [
        dist_info("requests", "2.28.1"),
        dist_info("urllib3", "1.26.16"),
        npm_package("lodash", "4.17.20"),
        _npm_lockfile({"lodash": "4.17.20"}),
        Entry(
            "opt/app/lib/log4j-core-2.14.1.jar", jar([("org.apache.logging.log4j", "log4j-core", "2.14.1")])
        ),
    ]
    if go_binary is not None:
        app_entries.append(Entry("usr/local/bin/hello", go_binary, mode=0o755))
    app = layer_tar(app_entries)
    cleanup = layer_tar([("usr/lib/python3/dist-packages/.wh.urllib3-1.26.16.dist-info", b"")])
    return [base, app, cleanup]


@pytest.fixture(scope="module")
def archive(workdir: Path, layers: list[bytes]) -> Path:
    path = workdir / "image.tar"
    docker_archive(path, layers)
    return path


@pytest.fixture(scope="module")
def offline_db(workdir: Path) -> Path:
    """Records zipped as ``osv-scalibr/<Ecosystem>/all.zip`` (``Debian:12`` records in ``Debian/``)."""
    root = workdir / "osvdb"
    by_ecosystem: dict[str, dict[str, dict[str, object]]] = {}
    for record in R.ALL:
        for affected in record["affected"]:
            base = affected["package"]["ecosystem"].split(":", 1)[0]
            by_ecosystem.setdefault(base, {})[record["id"]] = record
    for ecosystem, records in by_ecosystem.items():
        folder = root / "osv-scalibr" / ecosystem
        folder.mkdir(parents=True)
        with zipfile.ZipFile(folder / "all.zip", "w") as zf:
            for record_id, record in records.items():
                zf.writestr(f"{record_id}.json", json.dumps(record))
    return root


@pytest.fixture(scope="module")
def osv_scanner() -> str:
    """The binary; skipped (failed in CI) before anything is built when it is not installed."""
    return peer("osv-scanner")


def _osv_scanner_pairs(
    binary: str, archive: Path, db: Path, workdir: Path
) -> tuple[set[Pair], dict[str, str]]:
    env = dict(os.environ, OSV_SCANNER_LOCAL_DB_CACHE_DIRECTORY=str(db))
    out = workdir / "osv-scanner.json"
    proc = subprocess.run(
        [
            binary,
            "scan",
            "image",
            "--offline",
            "--all-vulns",
            "--all-packages",
            "--format",
            "json",
            "--output-file",
            str(out),
            "--archive",
            str(archive),
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=300,
    )
    # Exit 1 means "vulnerabilities found"; anything else is a failure of the run itself.
    assert proc.returncode in (0, 1), proc.stderr[-3000:]
    doc = json.loads(out.read_text())
    pairs: set[Pair] = set()
    versions: dict[str, str] = {}
    for result in doc["results"]:
        for entry in result["packages"]:
            pkg = entry["package"]
            name = pkg.get("os_package_name") or pkg["name"]
            versions[name] = pkg["version"]
            for vuln in entry.get("vulnerabilities") or []:
                pairs.add((vuln["id"], name))
    return pairs, versions


def _our_inventory(layers: list[bytes]) -> ImageInventory:
    return merge([read_layer(io.BytesIO(layer)) for layer in layers])


def _our_pairs(image: ImageInventory) -> set[Pair]:
    index = RecordIndex(OsvRecord.parse(r) for r in R.ALL)
    return {(source, f.package) for f in match(image, index) for source in f.data_source}


@pytest.fixture(scope="module")
def compared(
    osv_scanner: str, archive: Path, offline_db: Path, workdir: Path, layers: list[bytes]
) -> Iterator[dict[str, object]]:
    theirs, their_versions = _osv_scanner_pairs(osv_scanner, archive, offline_db, workdir)
    image = _our_inventory(layers)
    yield {"theirs": theirs, "their_versions": their_versions, "ours": _our_pairs(image), "image": image}


def test_findings_agree_except_the_listed_differences(compared: dict[str, object]) -> None:
    theirs: set[Pair] = compared["theirs"]  # type: ignore[assignment]
    ours: set[Pair] = compared["ours"]  # type: ignore[assignment]
    assert theirs, "osv-scanner found nothing: the cross-check would prove nothing"
    only_ours, only_theirs = ours - theirs, theirs - ours
    unexplained = {p: "ours only" for p in only_ours if EXPECTED_DIFFERENCES.get(p, ("",))[0] != "ours"}
    unexplained |= {
        p: "theirs only" for p in only_theirs if EXPECTED_DIFFERENCES.get(p, ("",))[0] != "theirs"
    }
    assert unexplained == {}
    stale = {
        p
        for p, (side, _) in EXPECTED_DIFFERENCES.items()
        if p not in (only_ours if side == "ours" else only_theirs)
    }
    assert stale == set(), "listed differences that no longer occur: remove them"


def test_both_sides_see_the_same_core_findings(compared: dict[str, object]) -> None:
    common: set[Pair] = compared["theirs"] & compared["ours"]  # type: ignore[operator]
    for pair in [
        ("DEBIAN-CVE-2024-28085", "libmount1"),
        ("DSA-5650-1", "util-linux"),
        ("DEBIAN-CVE-2023-4911", "libc6"),
        ("DSA-5514-1", "libc-bin"),
        ("DEBIAN-CVE-2022-0563", "mount"),
        ("GHSA-jfh8-c2jp-5v3q", "org.apache.logging.log4j:log4j-core"),
        ("GHSA-j8r2-6x86-q33q", "requests"),
        ("GHSA-35jh-r3h4-6jhm", "lodash"),
    ]:
        assert pair in common
    # urllib3 1.26.16 (vulnerable to GHSA-v845-jxx5-vc9f) was deleted by the whiteout in layer 2.
    image: ImageInventory = compared["image"]  # type: ignore[assignment]
    assert "urllib3" not in compared["their_versions"]  # type: ignore[operator]
    assert "urllib3" not in {p.name for p in image.packages}
    assert not any(vuln == R.WITHDRAWN["id"] for vuln, _ in common)


def test_go_part_ran(compared: dict[str, object], go_binary: bytes | None) -> None:
    if go_binary is None:
        pytest.skip("go is not installed: the Go binary part of the cross-check did not run")
    common: set[Pair] = compared["theirs"] & compared["ours"]  # type: ignore[operator]
    assert ("GO-2023-2102", "golang.org/x/net") in common
    image: ImageInventory = compared["image"]  # type: ignore[assignment]
    go_packages = {p.name: p.version for p in image.packages if p.kind == "golang"}
    their_versions: dict[str, str] = compared["their_versions"]  # type: ignore[assignment]
    assert go_packages["stdlib"] == their_versions["stdlib"]
    assert go_packages["golang.org/x/net"].removeprefix("v") == their_versions["golang.org/x/net"]


def test_package_inventories_agree(compared: dict[str, object]) -> None:
    """Every package osv-scanner lists we list too, at the same version (OS packages: the binary)."""
    image: ImageInventory = compared["image"]  # type: ignore[assignment]
    their_versions: dict[str, str] = compared["their_versions"]  # type: ignore[assignment]
    ours = {p.name: p.version.removeprefix("v") if p.kind == "golang" else p.version for p in image.packages}
    missing = {name: v for name, v in their_versions.items() if name not in ours}
    assert missing == {}
    differing = {n: (ours[n], v) for n, v in their_versions.items() if ours[n] != v}
    assert differing == {}


def test_archive_is_a_docker_save_tarball(archive: Path) -> None:
    with tarfile.open(archive) as tar:
        manifest = json.loads(tar.extractfile("manifest.json").read())  # type: ignore[union-attr]
    assert len(manifest[0]["Layers"]) == 3
