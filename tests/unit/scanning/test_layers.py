from __future__ import annotations

import io
import random

import pytest

from cargobay.scanning.layers import normalize_path, read_layer
from tests.support.scanimages import DEBIAN12_OS_RELEASE, Entry, compress, dpkg_stanza, layer_tar

STATUS = dpkg_stanza("bash", "5.2.15-2+b2", source="bash (5.2.15-2)").encode()


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_reads_gzip_zstd_and_plain_layers(compression: str) -> None:
    blob = compress(
        layer_tar([("var/lib/dpkg/status", STATUS), ("etc/os-release", DEBIAN12_OS_RELEASE)]), compression
    )
    inv = read_layer(io.BytesIO(blob))
    assert inv.compression == compression
    assert inv.errors == []
    assert [p.name for p in inv.files["var/lib/dpkg/status"].packages] == ["bash"]
    assert inv.files["etc/os-release"].release is not None


def test_concatenated_gzip_members_are_one_stream() -> None:
    first = compress(layer_tar([("var/lib/dpkg/status", STATUS)])[:-1024], "gzip")
    second = compress(b"\0" * 1024, "gzip")
    inv = read_layer(io.BytesIO(first + second))
    assert inv.errors == []
    assert "var/lib/dpkg/status" in inv.files


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        ("./etc/os-release", "etc/os-release"),
        ("/etc/os-release", "etc/os-release"),
        ("etc//os-release", "etc/os-release"),
        ("etc/./os-release", "etc/os-release"),
        ("usr/lib/", "usr/lib"),
        ("../etc/passwd", None),
        ("usr/../../etc", None),
        ("usr/lib/.hidden", "usr/lib/.hidden"),
        (".", ""),
    ],
)
def test_paths_are_normalised_and_dotdot_refused(name: str, expected: str | None) -> None:
    assert normalize_path(name) == expected


def test_dotdot_entries_are_ignored_with_a_reason() -> None:
    inv = read_layer(io.BytesIO(layer_tar([("../var/lib/dpkg/status", STATUS)])))
    assert inv.files == {}
    assert any("'..'" in e for e in inv.errors)


def test_whiteouts_and_opaque_markers_are_recorded_not_cataloged() -> None:
    tar = layer_tar(
        [
            ("./usr/lib/python3/.wh.dist-packages", b""),
            ("var/lib/dpkg/.wh.status", b""),
            ("app/node_modules/.wh..wh..opq", b""),
            ("x/.wh..wh.plnk", b""),
            (".wh.top", b""),
        ]
    )
    inv = read_layer(io.BytesIO(tar))
    assert inv.whiteouts == ["usr/lib/python3/dist-packages", "var/lib/dpkg/status", "top"]
    assert inv.opaque_dirs == ["app/node_modules"]
    assert inv.files == {}


def test_links_to_wanted_paths_are_recorded_as_skipped_not_followed() -> None:
    tar = layer_tar(
        [
            ("usr/lib/os-release", DEBIAN12_OS_RELEASE),
            Entry("etc/os-release", kind="symlink", target="../usr/lib/os-release"),
            Entry("var/lib/dpkg/status", kind="hardlink", target="usr/lib/os-release"),
        ]
    )
    inv = read_layer(io.BytesIO(tar))
    assert inv.files["usr/lib/os-release"].release is not None
    assert "not followed" in inv.files["etc/os-release"].skipped
    assert inv.files["etc/os-release"].release is None
    assert "not followed" in inv.files["var/lib/dpkg/status"].skipped


def test_irrelevant_files_are_not_read_and_big_wanted_files_are_capped() -> None:
    big_metadata = b"Name: big\nVersion: 1\n" + b"x" * (5 * 1024 * 1024)
    tar = layer_tar(
        [
            ("usr/share/doc/big.bin", b"\0" * (2 * 1024 * 1024)),
            ("usr/lib/python3/dist-packages/big-1.dist-info/METADATA", big_metadata),
        ]
    )
    inv = read_layer(io.BytesIO(tar))
    assert list(inv.files) == ["usr/lib/python3/dist-packages/big-1.dist-info/METADATA"]
    assert "cap" in inv.files["usr/lib/python3/dist-packages/big-1.dist-info/METADATA"].skipped


def test_non_elf_executables_are_not_cataloged() -> None:
    tar = layer_tar([Entry("usr/bin/script", b"#!/bin/sh\n" + b"echo hi\n" * 1000, mode=0o755)])
    assert read_layer(io.BytesIO(tar)).files == {}


@pytest.mark.parametrize("compression", ["gzip", "zstd", "none"])
def test_truncated_layer_keeps_what_was_read_and_says_why(compression: str) -> None:
    filler = random.Random(0).randbytes(400_000)  # incompressible: the cut lands inside the filler
    tar = layer_tar([("var/lib/dpkg/status", STATUS), ("usr/share/filler", filler)])
    blob = compress(tar, compression)
    inv = read_layer(io.BytesIO(blob[: len(blob) // 2]))
    assert "var/lib/dpkg/status" in inv.files
    assert inv.errors and "unreadable" in inv.errors[0]


@pytest.mark.parametrize("blob", [b"", b"\x1f\x8b", b"\x28\xb5\x2f\xfd garbage", b"not a tar at all" * 100])
def test_garbage_is_an_error_entry_not_an_exception(blob: bytes) -> None:
    inv = read_layer(io.BytesIO(blob))
    assert inv.files == {}
    assert inv.errors


def test_parser_crash_skips_the_file_only() -> None:
    from cargobay.scanning.catalogers import Cataloger, Selector

    def boom(path: str, data: bytes) -> object:
        raise RuntimeError("bug")

    broken = Cataloger("broken", lambda p: p == "a/b", boom, 1024, basenames=frozenset({"b"}))  # type: ignore[arg-type]
    inv = read_layer(io.BytesIO(layer_tar([("a/b", b"x"), ("c", b"y")])), Selector([broken]))
    assert "parser failed: RuntimeError: bug" in inv.files["a/b"].skipped
    assert inv.errors == []


class FailingStream(io.RawIOBase):
    """Yields ``data`` then raises, like a storage stream that dies mid-blob."""

    def __init__(self, data: bytes) -> None:
        self._data = io.BytesIO(data)

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk = self._data.read(size)
        if not chunk:
            raise OSError("storage went away")
        return chunk


@pytest.mark.parametrize("prefetch", [True, False])
def test_stream_errors_end_the_layer_with_a_reason_and_stop_the_helper_thread(prefetch: bool) -> None:
    import threading

    filler = random.Random(1).randbytes(300_000)
    blob = compress(layer_tar([("var/lib/dpkg/status", STATUS), ("usr/share/filler", filler)]), "gzip")
    before = threading.active_count()
    inv = read_layer(FailingStream(blob[: len(blob) // 2]), prefetch=prefetch)
    assert "var/lib/dpkg/status" in inv.files
    assert "storage went away" in inv.errors[0]
    assert threading.active_count() == before


def test_prefetch_gives_the_same_inventory() -> None:
    blob = compress(
        layer_tar([("var/lib/dpkg/status", STATUS), ("etc/os-release", DEBIAN12_OS_RELEASE)]), "zstd"
    )
    assert read_layer(io.BytesIO(blob), prefetch=True) == read_layer(io.BytesIO(blob), prefetch=False)
