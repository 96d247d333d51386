"""Real-looking image layers for the vulnerability scanning tests, and pushing them through the services.

The Debian 12 base is the committed dpkg status of a bookworm image, rolled back to util-linux
2.38.1-5+b1 (before DSA-5650-1 / CVE-2024-28085) and glibc 2.36-9+deb12u1 (before DSA-5514-1 /
CVE-2023-4911); the Python layer installs requests 2.28.1 (before CVE-2023-32681). The advisories
that match them are in ``tests.support.osv_records``.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Sequence
from pathlib import Path
from typing import Any

from tests.support.scanimages import (
    DEBIAN12_OS_RELEASE,
    DEBIAN12_STATUS,
    Entry,
    compress,
    dist_info,
    layer_tar,
)

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
HELM_CONFIG = "application/vnd.cncf.helm.config.v1+json"
HELM_CHART = "application/vnd.cncf.helm.chart.content.v1.tar+gzip"

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


def old_bookworm_status(util_linux: str = "2.38.1-5", glibc: str = "2.36-9+deb12u1") -> str:
    """The committed Debian 12 dpkg status with util-linux and glibc at the versions given."""
    out = []
    for stanza in DEBIAN12_STATUS.read_text().split("\n\n"):
        name = stanza.split("\n", 1)[0].removeprefix("Package: ")
        lines = stanza.split("\n")
        if name in UTIL_LINUX_BINARIES:
            epoch = "1:" if name == "bsdutils" else ""
            lines = [ln for ln in lines if not ln.startswith(("Version:", "Source:"))]
            lines += [f"Source: util-linux ({util_linux})", f"Version: {epoch}{util_linux}+b1"]
        elif name in GLIBC_BINARIES:
            lines = [ln for ln in lines if not ln.startswith(("Version:", "Source:"))]
            lines += ["Source: glibc", f"Version: {glibc}"]
        out.append("\n".join(line for line in lines if line))
    return "\n\n".join(s for s in out if s.strip()) + "\n"


def debian_base(util_linux: str = "2.38.1-5", glibc: str = "2.36-9+deb12u1", filler: int = 20) -> bytes:
    """A gzip layer: os-release, the dpkg status, and some files nobody catalogs."""
    entries: list[Entry | tuple[str, bytes]] = [
        ("etc/os-release", DEBIAN12_OS_RELEASE),
        ("etc/debian_version", b"12.1\n"),
        ("var/lib/dpkg/status", old_bookworm_status(util_linux, glibc).encode()),
    ]
    entries += [(f"usr/share/doc/pkg{i}/copyright", b"free software\n" * 50) for i in range(filler)]
    return compress(layer_tar(entries), "gzip")


def python_layer(packages: dict[str, str] | None = None) -> bytes:
    wanted = packages if packages is not None else {"requests": "2.28.1", "certifi": "2024.2.2"}
    return compress(
        layer_tar([dist_info(n, v, "usr/local/lib/python3.11/site-packages") for n, v in wanted.items()]),
        "gzip",
    )


def app_layer(text: str) -> bytes:
    return compress(layer_tar([("app/main.py", text.encode())]), "gzip")


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def descriptor(media_type: str, data: bytes, **extra: Any) -> dict[str, Any]:
    return {"mediaType": media_type, "digest": sha256(data), "size": len(data), **extra}


def image_config(layers: Sequence[bytes], note: str = "") -> bytes:
    import gzip

    doc = {
        "architecture": "amd64",
        "os": "linux",
        "config": {"Env": [f"NOTE={note}"]},
        "rootfs": {"type": "layers", "diff_ids": [sha256(gzip.decompress(layer)) for layer in layers]},
    }
    return json.dumps(doc, sort_keys=True).encode()


def image_manifest(
    config: bytes, layers: Sequence[bytes], config_type: str = OCI_CONFIG, layer_type: str = OCI_LAYER
) -> bytes:
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "config": descriptor(config_type, config),
        "layers": [descriptor(layer_type, layer) for layer in layers],
    }
    return json.dumps(doc, sort_keys=True).encode()


def index_manifest(children: Sequence[bytes]) -> bytes:
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_INDEX,
        "manifests": [
            descriptor(OCI_MANIFEST, child, platform={"os": "linux", "architecture": arch})
            for child, arch in zip(children, ("amd64", "arm64", "s390x", "ppc64le"), strict=False)
        ],
    }
    return json.dumps(doc, sort_keys=True).encode()


def write_records(folder: Path, records: Sequence[dict[str, Any]]) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    for record in records:
        (folder / f"{record['id']}.json").write_text(json.dumps(record))
    return folder


def write_zip(path: Path, records: Sequence[dict[str, Any]]) -> Path:
    import zipfile

    path.parent.mkdir(parents=True, exist_ok=True)
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as zf:
        for record in records:
            zf.writestr(f"{record['id']}.json", json.dumps(record))
    return path


async def one(data: bytes) -> AsyncIterator[bytes]:
    yield data
