"""Parsers take arbitrary input: garbage is skipped with a reason, never an exception that ends a scan."""

from __future__ import annotations

import contextlib
import io
import json
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from cargobay.scanning.catalogers import apk, dpkg, gobinary, java, npm, osrelease, python, rpm
from cargobay.scanning.facts import FileFacts
from cargobay.scanning.inventory import ImageInventory, merge
from cargobay.scanning.layers import read_layer
from cargobay.scanning.matcher import RecordIndex, match
from cargobay.scanning.osv import InvalidRecord, OsvRecord
from tests.support.scanimages import (
    DEBIAN12_OS_RELEASE,
    compress,
    dist_info,
    dpkg_stanza,
    layer_tar,
    npm_package,
)

FUZZ = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])

PARSERS = [
    (dpkg.parse, "var/lib/dpkg/status"),
    (apk.parse, "lib/apk/db/installed"),
    (rpm.parse, "var/lib/rpm/rpmdb.sqlite"),
    (python.parse, "x.dist-info/METADATA"),
    (npm.parse, "node_modules/x/package.json"),
    (java.parse, "a.jar"),
    (osrelease.parse, "etc/os-release"),
    (osrelease.parse, "etc/debian_version"),
]

text_like = st.one_of(
    st.binary(max_size=2000),
    st.text(max_size=2000).map(str.encode),
    st.lists(
        st.sampled_from(
            [
                "Package: a",
                "Version: 1",
                "Source: b (2)",
                "Status: install ok installed",
                "",
                " x",
                "P:a",
                "V:1",
                "o:b",
                "Name: n",
                "{",
                "}",
            ]
        ),
        max_size=40,
    ).map(lambda ls: "\n".join(ls).encode()),
)


@FUZZ
@given(text_like)
def test_file_parsers_never_raise(data: bytes) -> None:
    for parse, path in PARSERS:
        assert isinstance(parse(path, data), FileFacts)


@FUZZ
@given(st.binary(max_size=3000))
def test_rpm_header_parser_raises_only_format_errors(blob: bytes) -> None:
    with contextlib.suppress(rpm.FormatError):
        rpm.parse_header(blob)


@FUZZ
@given(st.binary(max_size=3000), st.binary(max_size=200))
def test_go_buildinfo_scan_never_raises(prefix: bytes, tail: bytes) -> None:
    blob = b"\x7fELF" + prefix[:12] + gobinary.BUILDINFO_MAGIC + tail
    stream = io.BytesIO(blob)
    result = gobinary.scan(stream.read(4), stream.read)
    assert result is None or isinstance(result, FileFacts)


GOOD_LAYER = layer_tar(
    [
        ("etc/os-release", DEBIAN12_OS_RELEASE),
        ("var/lib/dpkg/status", dpkg_stanza("bash", "5.2.15-2").encode()),
        dist_info("requests", "2.28.1"),
        npm_package("lodash", "4.17.20"),
    ]
)


@FUZZ
@given(
    st.integers(min_value=0, max_value=len(GOOD_LAYER) - 1),
    st.integers(min_value=0, max_value=255),
    st.sampled_from(["gzip", "zstd", "none"]),
    st.booleans(),
)
def test_corrupted_layers_give_an_inventory_not_an_exception(
    offset: int, value: int, compression: str, cut: bool
) -> None:
    damaged = bytearray(GOOD_LAYER)
    damaged[offset] = value
    blob = compress(bytes(damaged), compression)
    if cut:
        blob = blob[: max(1, len(blob) * offset // len(GOOD_LAYER))]
    inv = read_layer(io.BytesIO(blob))
    json.dumps(inv.to_json())  # still a cacheable value
    merge([inv])


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.text(max_size=10),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=10), children, max_size=4)
    ),
    max_leaves=20,
)
record_like = st.fixed_dictionaries(
    {"id": st.text(min_size=1, max_size=12)},
    optional={
        "aliases": st.lists(
            st.sampled_from(["CVE-2024-1", "GHSA-x", "DEBIAN-CVE-2024-1", "PYSEC-1"]), max_size=3
        )
        | json_values,
        "upstream": st.lists(st.sampled_from(["CVE-2024-1", "CVE-2024-2"]), max_size=2),
        "withdrawn": st.sampled_from(["", "2024-01-01T00:00:00Z"]),
        "severity": st.lists(
            st.fixed_dictionaries(
                {
                    "type": st.sampled_from(["CVSS_V2", "CVSS_V3", "CVSS_V4", "Ubuntu"]),
                    "score": st.text(max_size=40)
                    | st.sampled_from(
                        ["CVSS:3.1/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", "AV:N/AC:L/Au:N/C:P/I:P/A:P"]
                    ),
                }
            ),
            max_size=2,
        ),
        "affected": st.lists(
            st.fixed_dictionaries(
                {
                    "package": st.fixed_dictionaries(
                        {
                            "ecosystem": st.sampled_from(
                                ["Debian:12", "PyPI", "npm", "Go", "Maven", "Weird"]
                            ),
                            "name": st.sampled_from(["bash", "requests", "lodash", "stdlib", "x"]),
                        }
                    )
                },
                optional={
                    "ranges": st.lists(
                        st.fixed_dictionaries(
                            {
                                "type": st.sampled_from(["ECOSYSTEM", "SEMVER", "GIT"]),
                                "events": st.lists(
                                    st.dictionaries(
                                        st.sampled_from(["introduced", "fixed", "last_affected", "limit"]),
                                        st.sampled_from(["0", "1.0", "2.0.0", "5.2.15-2", "*", "!!", ""]),
                                        min_size=1,
                                        max_size=1,
                                    ),
                                    max_size=4,
                                ),
                            }
                        ),
                        max_size=2,
                    ),
                    "versions": st.lists(
                        st.sampled_from(["1.0", "5.2.15-2", "2.28.1", "4.17.20"]), max_size=3
                    ),
                },
            ),
            max_size=3,
        ),
    },
)


@FUZZ
@given(st.one_of(json_values, record_like))
def test_osv_parse_raises_only_invalid_record(data: Any) -> None:
    with contextlib.suppress(InvalidRecord):
        OsvRecord.parse(data)


IMAGE: ImageInventory = merge([read_layer(io.BytesIO(GOOD_LAYER))])


@FUZZ
@given(st.lists(record_like, max_size=6))
def test_matching_arbitrary_valid_records_never_raises(records: list[dict[str, Any]]) -> None:
    parsed = []
    for r in records:
        try:
            parsed.append(OsvRecord.parse(r))
        except InvalidRecord:
            continue
    for finding in match(IMAGE, RecordIndex(parsed)):
        assert finding.severity in ("unknown", "none", "low", "medium", "high", "critical")
        json.dumps(finding.to_json())
