from __future__ import annotations

import io
import json
import uuid

from cargobay.scanning.inventory import merge
from cargobay.scanning.layers import read_layer
from cargobay.scanning.sbom import cyclonedx_json
from tests.support.scanimages import DEBIAN12_OS_RELEASE, DEBIAN12_STATUS, dist_info, layer_tar, npm_package


def test_cyclonedx_1_6_json_lists_os_and_packages_with_purls() -> None:
    tar = layer_tar(
        [
            ("etc/os-release", DEBIAN12_OS_RELEASE),
            ("var/lib/dpkg/status", DEBIAN12_STATUS.read_bytes()),
            dist_info("requests", "2.28.1"),
            npm_package("@babel/core", "7.0.0"),
        ]
    )
    image = merge([read_layer(io.BytesIO(tar))])
    doc = json.loads(cyclonedx_json(image, name="demo/app", version="sha256:abc", serial=uuid.UUID(int=1)))
    assert doc["bomFormat"] == "CycloneDX" and doc["specVersion"] == "1.6"
    assert doc["serialNumber"] == "urn:uuid:00000000-0000-0000-0000-000000000001"
    assert doc["metadata"]["component"]["name"] == "demo/app"
    components = doc["components"]
    assert {"type": "operating-system", "name": "debian"}.items() <= next(
        c for c in components if c["type"] == "operating-system"
    ).items()
    purls = {c.get("purl") for c in components}
    assert "pkg:pypi/requests@2.28.1" in purls
    assert "pkg:npm/%40babel/core@7.0.0" in purls
    bsdutils = next(c for c in components if c["name"] == "bsdutils")
    props = {p["name"]: p["value"] for p in bsdutils["properties"]}
    assert props["cargobay:source_name"] == "util-linux" and props["cargobay:layer"] == "0"
    assert len(components) == len(image.packages) + 1


def test_sbom_validates_against_the_cyclonedx_1_6_schema() -> None:
    from cyclonedx.schema import SchemaVersion
    from cyclonedx.validation.json import JsonStrictValidator

    tar = layer_tar(
        [("etc/os-release", DEBIAN12_OS_RELEASE), ("var/lib/dpkg/status", DEBIAN12_STATUS.read_bytes())]
    )
    image = merge([read_layer(io.BytesIO(tar))])
    document = cyclonedx_json(image, name="demo/app", version="sha256:abc")
    assert JsonStrictValidator(SchemaVersion.V1_6).validate_str(document) is None
