from __future__ import annotations

import io
import json

import pytest

from cargobay.scanning.facts import Release
from cargobay.scanning.inventory import (
    ImageInventory,
    InventoryFormatError,
    LayerInventory,
    merge,
    os_ecosystem,
)
from cargobay.scanning.layers import read_layer
from tests.support.scanimages import (
    DEBIAN12_OS_RELEASE,
    DEBIAN12_STATUS,
    Entry,
    dist_info,
    dpkg_stanza,
    layer_tar,
    npm_package,
)


def layer(*entries: Entry | tuple[str, bytes]) -> LayerInventory:
    return read_layer(io.BytesIO(layer_tar(entries)))


BASE = layer(
    ("etc/os-release", DEBIAN12_OS_RELEASE),
    (
        "var/lib/dpkg/status",
        (
            dpkg_stanza("base-files", "12.4+deb12u5")
            + "\n"
            + dpkg_stanza("bash", "5.2.15-2+b2", "bash (5.2.15-2)")
        ).encode(),
    ),
    dist_info("requests", "2.28.1"),
    npm_package("lodash", "4.17.20"),
    npm_package("left-pad", "1.3.0"),
)


def names(image: ImageInventory) -> set[str]:
    return {p.name for p in image.packages}


def test_top_most_package_database_wins_and_layers_record_origin() -> None:
    upper = layer(
        (
            "var/lib/dpkg/status",
            "\n".join(
                [
                    dpkg_stanza("base-files", "12.4+deb12u5"),
                    dpkg_stanza("bash", "5.2.15-2+b7", "bash (5.2.15-2)"),
                    dpkg_stanza("curl", "7.88.1-10+deb12u5"),
                ]
            ).encode(),
        )
    )
    image = merge([BASE, layer(("srv/x", b"")), upper])
    debs = {p.name: p for p in image.packages if p.kind == "deb"}
    assert set(debs) == {"base-files", "bash", "curl"}
    assert debs["base-files"].layer == 0  # unchanged since the base layer
    assert debs["bash"].layer == 2 and debs["bash"].version == "5.2.15-2+b7"  # upgraded in layer 2
    assert debs["curl"].layer == 2
    assert all(p.ecosystem == "Debian:12" for p in debs.values())
    assert debs["bash"].purl == "pkg:deb/debian/bash@5.2.15-2%2Bb7?arch=amd64&distro=debian-12"


def test_whiteout_removes_a_file_and_a_subtree() -> None:
    upper = layer(
        ("usr/lib/python3/dist-packages/.wh.requests-2.28.1.dist-info", b""), ("app/.wh.node_modules", b"")
    )
    image = merge([BASE, upper])
    assert names(image) == {"base-files", "bash"}


def test_opaque_directory_hides_lower_children_but_keeps_its_own_layer() -> None:
    upper = layer(("app/node_modules/.wh..wh..opq", b""), npm_package("lodash", "4.17.21"))
    image = merge([BASE, upper])
    npm = [(p.name, p.version, p.layer) for p in image.packages if p.kind == "npm"]
    assert npm == [("lodash", "4.17.21", 1)]


def test_a_file_readded_after_a_whiteout_comes_back_from_its_new_layer() -> None:
    removed = layer(("var/lib/dpkg/.wh.status", b""))
    readded = layer(("var/lib/dpkg/status", dpkg_stanza("bash", "5.2.15-2+b2", "bash (5.2.15-2)").encode()))
    image = merge([BASE, removed, readded])
    bash = next(p for p in image.packages if p.name == "bash")
    assert bash.layer == 2
    assert "base-files" not in names(image)
    assert "base-files" not in names(merge([BASE, removed]))


def test_root_opaque_marker_hides_everything_below() -> None:
    assert merge([BASE, layer((".wh..wh..opq", b""))]).packages == ()


def test_os_from_top_most_os_release_and_fallbacks() -> None:
    symlinked = layer(
        ("usr/lib/os-release", DEBIAN12_OS_RELEASE),
        Entry("etc/os-release", kind="symlink", target="../usr/lib/os-release"),
    )
    assert merge([symlinked]).os.ecosystem == "Debian:12"  # type: ignore[union-attr]
    bare = layer(
        ("etc/debian_version", b"11.9\n"), ("var/lib/dpkg/status", dpkg_stanza("bash", "5.1-2").encode())
    )
    image = merge([bare])
    assert image.os is not None and image.os.ecosystem == "Debian:11"
    assert image.packages[0].ecosystem == "Debian:11"
    alpine_on_top = layer(("etc/os-release", b"ID=alpine\nVERSION_ID=3.19.1\n"))
    image = merge([BASE, alpine_on_top])
    assert image.os is not None and image.os.ecosystem == "Alpine:v3.19"
    assert {p.ecosystem for p in image.packages if p.kind == "deb"} == {""}  # dpkg data on Alpine: unmatched


@pytest.mark.parametrize(
    ("release", "ecosystem"),
    [
        (Release("debian", "12"), "Debian:12"),
        (Release("debian", ""), ""),
        (Release("ubuntu", "22.04", "22.04.3 LTS (Jammy Jellyfish)"), "Ubuntu:22.04:LTS"),
        (Release("ubuntu", "23.10", "23.10 (Mantic Minotaur)"), "Ubuntu:23.10"),
        (Release("alpine", "3.19.1"), "Alpine:v3.19"),
        (Release("alpine", "edge"), ""),
        (Release("rocky", "9.3"), "Rocky Linux:9"),
        (Release("almalinux", "8.9"), "AlmaLinux:8"),
        (Release("rhel", "9.3"), "Red Hat"),
        (Release("fedora", "39"), ""),
    ],
)
def test_os_ecosystems(release: Release, ecosystem: str) -> None:
    assert os_ecosystem(release) == ecosystem


def test_real_debian_status_inventory_round_trips_through_json() -> None:
    base = layer(
        ("etc/os-release", DEBIAN12_OS_RELEASE), ("var/lib/dpkg/status", DEBIAN12_STATUS.read_bytes())
    )
    restored_layer = LayerInventory.from_json(json.loads(json.dumps(base.to_json())))
    assert restored_layer == base
    image = merge([restored_layer])
    restored = ImageInventory.from_json(json.loads(json.dumps(image.to_json())))
    assert restored == image
    assert len(image.packages) >= 60


def test_other_formats_and_malformed_caches_are_refused() -> None:
    with pytest.raises(InventoryFormatError):
        LayerInventory.from_json({"format": "cargobay.layer-inventory/0", "files": {}})
    with pytest.raises(InventoryFormatError):
        ImageInventory.from_json({"packages": []})
    with pytest.raises(InventoryFormatError):
        LayerInventory.from_json({"format": "cargobay.layer-inventory/1", "files": {"a": {"packages": 3}}})
    with pytest.raises(InventoryFormatError):
        ImageInventory.from_json({"format": "cargobay.image-inventory/1", "packages": [{"name": "x"}]})


def test_layer_errors_and_skipped_files_are_reported() -> None:
    broken = read_layer(io.BytesIO(b"garbage"))
    image = merge([BASE, broken, layer(("app/node_modules/x/package.json", b"{"))])
    reasons = [(s.layer, s.path) for s in image.skipped]
    assert (1, "") in reasons
    assert (2, "app/node_modules/x/package.json") in reasons
