from __future__ import annotations

import io
import struct
from pathlib import Path

import pytest

from cargobay.scanning.catalogers import (
    Selector,
    apk,
    default_catalogers,
    dpkg,
    gobinary,
    java,
    npm,
    osrelease,
    python,
    rpm,
)
from cargobay.scanning.facts import Package
from tests.support.scanimages import DEBIAN12_STATUS, dpkg_stanza, jar, rpm_header, rpmdb


def test_selector_routes_paths_to_catalogers() -> None:
    sel = Selector(default_catalogers())
    routes = {
        "var/lib/dpkg/status": "dpkg",
        "var/lib/dpkg/status.d/base": "dpkg",
        "var/lib/dpkg/status.d/base.md5sums": None,
        "var/lib/dpkg/statusx": None,
        "lib/apk/db/installed": "apk",
        "usr/lib/sysimage/rpm/rpmdb.sqlite": "rpm",
        "var/lib/rpm/rpmdb.sqlite": "rpm",
        "etc/os-release": "os-release",
        "usr/lib/os-release": "os-release",
        "etc/debian_version": "os-release",
        "etc/alpine-release": "os-release",
        "usr/lib/python3.11/site-packages/requests-2.31.0.dist-info/METADATA": "python",
        "usr/lib/python3/dist-packages/six-1.16.0.egg-info/PKG-INFO": "python",
        "usr/lib/python3/dist-packages/six-1.16.0.egg-info": "python",
        "docs/METADATA": None,
        "app/node_modules/lodash/package.json": "npm",
        "app/node_modules/@babel/core/package.json": "npm",
        "app/node_modules/lodash/fp/package.json": None,
        "app/package.json": None,
        "opt/app/lib/log4j-core-2.14.1.jar": "java",
        "opt/app.war": "java",
        "usr/share/doc/readme.txt": None,
    }
    assert {p: (c.name if (c := sel.select(p)) else None) for p in routes} == routes


def test_dpkg_real_debian12_status_reports_source_packages() -> None:
    facts = dpkg.parse("var/lib/dpkg/status", DEBIAN12_STATUS.read_bytes())
    by_name = {p.name: p for p in facts.packages}
    assert len(by_name) >= 60
    bsdutils = by_name["bsdutils"]
    assert (bsdutils.source_name, bsdutils.source_version) == ("util-linux", "2.38.1-5+deb12u3")
    assert bsdutils.version == "1:2.38.1-5+deb12u3"
    assert by_name["bash"].source_version == "5.2.15-2"  # binNMU: binary 5.2.15-2+b8
    assert by_name["libc6"].source_name == "glibc" and by_name["libc6"].source_version == ""
    assert by_name["dpkg"].source_name == ""  # source = binary


def test_dpkg_drops_removed_packages_and_keeps_statusless_stanzas() -> None:
    text = "\n".join(
        [
            dpkg_stanza("gone", "1.0", status="deinstall ok config-files"),
            dpkg_stanza("never", "1.0", status="purge ok not-installed"),
            dpkg_stanza("held", "1.0", status="hold ok installed"),
            dpkg_stanza("distroless", "2.0", status=""),
            "Package: noversion\nStatus: install ok installed\n",
            dpkg_stanza("odd", "1.0", source="weird source (x) (y)"),
        ]
    )
    facts = dpkg.parse("var/lib/dpkg/status.d/x", text.encode())
    assert [p.name for p in facts.packages] == ["held", "distroless", "odd"]
    assert any("noversion" in n for n in facts.notes)
    assert any("Source" in n for n in facts.notes)


def test_apk_installed_uses_origin_as_source() -> None:
    text = (
        "C:Q1abc=\nP:libcrypto3\nV:3.1.4-r5\nA:x86_64\no:openssl\n\n"
        "P:musl\nV:1.2.4_git20230717-r4\nA:x86_64\no:musl\n\nV:1\n"
    )
    facts = apk.parse("lib/apk/db/installed", text.encode())
    assert facts.packages == (
        Package("apk", "libcrypto3", "3.1.4-r5", source_name="openssl", arch="x86_64"),
        Package("apk", "musl", "1.2.4_git20230717-r4", arch="x86_64"),
    )
    assert facts.notes


def test_os_release_files() -> None:
    ubuntu = (
        b'NAME="Ubuntu"\nVERSION="22.04.3 LTS (Jammy Jellyfish)"\nID=ubuntu\nVERSION_ID="22.04"\n# c\njunk\n'
    )
    release = osrelease.parse("etc/os-release", ubuntu).release
    assert release is not None and (release.id, release.version_id) == ("ubuntu", "22.04")
    assert "LTS" in release.version
    assert osrelease.parse("etc/os-release", b"NAME=x\n").skipped
    assert osrelease.parse("etc/debian_version", b"12.5\n").release.version == "12.5"  # type: ignore[union-attr]
    assert osrelease.parse("etc/alpine-release", b"").skipped


def test_python_metadata_header_only() -> None:
    meta = b"Metadata-Version: 2.1\nName: Jinja2\nVersion: 3.1.2\n\nVersion: 9.9 (in the body)\n"
    facts = python.parse("x/Jinja2-3.1.2.dist-info/METADATA", meta)
    assert facts.packages == (Package("pypi", "Jinja2", "3.1.2"),)
    assert python.parse("x/a.egg-info/PKG-INFO", b"Name: a\n").skipped


@pytest.mark.parametrize(
    ("body", "ok"),
    [
        (b'{"name": "lodash", "version": "4.17.20"}', True),
        (b"[1]", False),
        (b"{", False),
        (b'{"name": 1}', False),
    ],
)
def test_npm_package_json(body: bytes, ok: bool) -> None:
    facts = npm.parse("node_modules/lodash/package.json", body)
    assert bool(facts.packages) is ok and bool(facts.skipped) is not ok


def test_java_pom_properties_in_nested_archives() -> None:
    inner = jar([("org.apache.logging.log4j", "log4j-core", "2.14.1")])
    innermost = jar([("com.example", "deep", "1.0")])
    middle = jar([("org.yaml", "snakeyaml", "1.33")], nested=[("lib/deep.jar", innermost)])
    war = jar(
        [("com.example", "app", "1.0.0")],
        nested=[("WEB-INF/lib/log4j-core.jar", inner), ("WEB-INF/lib/m.jar", middle)],
    )
    facts = java.parse("opt/app.war", war)
    names = {(p.name, p.version) for p in facts.packages}
    assert names == {
        ("com.example:app", "1.0.0"),
        ("org.apache.logging.log4j:log4j-core", "2.14.1"),
        ("org.yaml:snakeyaml", "1.33"),
        ("com.example:deep", "1.0"),
    }
    log4j = next(p for p in facts.packages if "log4j" in p.name)
    assert log4j.location.startswith("WEB-INF/lib/log4j-core.jar!META-INF/maven/")
    assert java.parse("a.jar", b"PK\x03\x04 broken").skipped


def test_java_properties_parser() -> None:
    assert java.parse_properties("# c\n! c\ngroupId = g\nartifactId:a\nversion=1=2\n") == {
        "groupId": "g",
        "artifactId": "a",
        "version": "1=2",
    }


# -- rpm --------------------------------------------------------------------------------------


GLIBC = {
    rpm.TAG_NAME: "glibc-common",
    rpm.TAG_VERSION: "2.34",
    rpm.TAG_RELEASE: "60.el9",
    rpm.TAG_ARCH: "x86_64",
    rpm.TAG_SOURCERPM: "glibc-2.34-60.el9.src.rpm",
}


@pytest.mark.parametrize("wal", [False, True])
def test_rpm_sqlite_database(tmp_path: Path, wal: bool) -> None:
    openssl = {
        rpm.TAG_NAME: "openssl-libs",
        rpm.TAG_EPOCH: 1,
        rpm.TAG_VERSION: "3.0.7",
        rpm.TAG_RELEASE: "24.el9",
        rpm.TAG_ARCH: "x86_64",
        rpm.TAG_SOURCERPM: "openssl-3.0.7-24.el9.src.rpm",
    }
    data = rpmdb(
        tmp_path,
        [
            rpm_header(GLIBC),
            rpm_header(openssl),
            b"\0\0\0\1garbage",
            rpm_header({rpm.TAG_NAME: "gpg-pubkey", rpm.TAG_VERSION: "1", rpm.TAG_RELEASE: "1"}),
        ],
        wal,
    )
    facts = rpm.parse("var/lib/rpm/rpmdb.sqlite", data)
    assert facts.packages == (
        Package("rpm", "glibc-common", "2.34-60.el9", source_name="glibc", arch="x86_64"),
        Package("rpm", "openssl-libs", "1:3.0.7-24.el9", source_name="openssl", arch="x86_64"),
    )
    assert len(facts.notes) == 1


def test_rpm_header_with_package_file_magic_and_bounds_checks() -> None:
    assert rpm.parse_header(rpm_header(GLIBC, magic=True)).name == "glibc-common"
    good = rpm_header(GLIBC)
    for bad in (good[:20], good[:-3], struct.pack(">II", 10**6, 0), b""):
        with pytest.raises(rpm.FormatError):
            rpm.parse_header(bad)
    assert rpm.parse("var/lib/rpm/rpmdb.sqlite", b"SQLite format 3\0" + b"\0" * 100).skipped
    assert rpm.parse("var/lib/rpm/rpmdb.sqlite", b"Berkeley").skipped


# -- go binaries ------------------------------------------------------------------------------


def _uvarint(n: int) -> bytes:
    out = b""
    while n >= 0x80:
        out += bytes([n & 0x7F | 0x80])
        n >>= 7
    return out + bytes([n])


def buildinfo_blob(go_version: str, modinfo: str, offset: int = 4096) -> bytes:
    framed = "0" * 16 + modinfo + "1" * 16
    header = gobinary.BUILDINFO_MAGIC + bytes([8, gobinary.FLAG_VERSION_INLINE]) + b"\0" * 16
    body = header + _uvarint(len(go_version)) + go_version.encode() + _uvarint(len(framed)) + framed.encode()
    return b"\x7fELF" + b"\x01" * (offset - 4) + body + b"\0" * 100


MODINFO = (
    "path\texample.com/app\n"
    "mod\texample.com/app\tv1.2.3\th1:x=\n"
    "dep\tgolang.org/x/net\tv0.13.0\th1:y=\n"
    "dep\tgithub.com/old/thing\tv1.0.0\th1:z=\n"
    "=>\tgithub.com/new/thing\tv1.0.5\th1:w=\n"
    "dep\tgithub.com/local/thing\tv0.0.0\n"
    "=>\t../thing\t\n"
    "build\t-compiler=gc\n"
)


@pytest.mark.parametrize("offset", [4096, 1024 * 1024, 3 * 1024 * 1024 + 16])
def test_go_buildinfo_found_across_chunk_boundaries(offset: int) -> None:
    blob = buildinfo_blob("go1.21.0", MODINFO, offset)
    stream = io.BytesIO(blob)
    facts = gobinary.scan(stream.read(5), stream.read)  # 5 + 1 MiB chunks: the magic at 1 MiB straddles
    assert facts is not None
    assert [(p.name, p.version) for p in facts.packages] == [
        ("example.com/app", "v1.2.3"),
        ("golang.org/x/net", "v0.13.0"),
        ("github.com/new/thing", "v1.0.5"),
        ("github.com/local/thing", "(devel)"),
        ("stdlib", "1.21.0"),
    ]
    assert any("local directory" in n for n in facts.notes)


def test_go_unaligned_magic_and_old_format() -> None:
    unaligned = b"\x7fELF" + b"\0" * 4 + gobinary.BUILDINFO_MAGIC + b"\0" * 100
    assert gobinary.scan(unaligned[:4], io.BytesIO(unaligned[4:]).read) is None
    old = b"\x7fELF" + b"\0" * 12 + gobinary.BUILDINFO_MAGIC + bytes([8, 0]) + b"\0" * 64
    facts = gobinary.scan(old[:4], io.BytesIO(old[4:]).read)
    assert facts is not None and "pre-Go 1.18" in facts.skipped
    truncated = buildinfo_blob("go1.21.0", MODINFO)[:-200]
    facts = gobinary.scan(truncated[:4], io.BytesIO(truncated[4:]).read)
    assert facts is not None and "truncated" in facts.skipped


@pytest.mark.parametrize(
    ("go", "expected"),
    [
        ("go1.21.5", "1.21.5"),
        ("go1.22", "1.22.0"),
        ("go1.22rc1", "1.22.0-rc1"),
        ("go1.21.0 X:boringcrypto", "1.21.0"),
        ("devel go1.23-abc", ""),
        ("", ""),
    ],
)
def test_stdlib_version(go: str, expected: str) -> None:
    assert gobinary.stdlib_version(go) == expected
