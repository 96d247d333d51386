"""Test data, generated once per run in the temp dir: random (incompressible) bytes, fixed seeds."""

from __future__ import annotations

import hashlib
import json
import os
import random
from dataclasses import dataclass
from pathlib import Path

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar+gzip"
_BLOCK = 16 * 1024 * 1024


@dataclass(frozen=True)
class Blob:
    path: Path
    digest: str
    size: int


@dataclass(frozen=True)
class Image:
    """An OCI image in a directory: ``manifest.json`` and ``blobs/<hex>`` (also an OCI layout)."""

    directory: Path
    manifest_digest: str
    layers: int
    total_bytes: int


def make_blob(path: Path, size: int) -> Blob:
    """``size`` random bytes (os.urandom: incompressible, never deduplicated across runs)."""
    digest = hashlib.sha256()
    with open(path, "wb") as f:
        remaining = size
        while remaining > 0:
            block = os.urandom(min(_BLOCK, remaining))
            digest.update(block)
            f.write(block)
            remaining -= len(block)
    return Blob(path, f"sha256:{digest.hexdigest()}", size)


def _write_blob(blobs: Path, data: bytes) -> dict[str, object]:
    hexdigest = hashlib.sha256(data).hexdigest()
    (blobs / hexdigest).write_bytes(data)
    return {"digest": f"sha256:{hexdigest}", "size": len(data)}


def make_image(directory: Path, layers: int, min_size: int, max_size: int, seed: int = 2) -> Image:
    """An image of ``layers`` random layers of uniform random size in [min_size, max_size]."""
    rng = random.Random(seed)
    blobs = directory / "blobs"
    blobs.mkdir(parents=True, exist_ok=True)
    layer_descriptors = []
    total = 0
    for _ in range(layers):
        size = rng.randint(min_size, max_size)
        descriptor = _write_blob(blobs, rng.randbytes(size))
        layer_descriptors.append({"mediaType": OCI_LAYER, **descriptor})
        total += size
    config = json.dumps(
        {
            "architecture": "amd64",
            "os": "linux",
            "rootfs": {"type": "layers", "diff_ids": [d["digest"] for d in layer_descriptors]},
        }
    ).encode()
    config_descriptor = {"mediaType": OCI_CONFIG, **_write_blob(blobs, config)}
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": config_descriptor,
            "layers": layer_descriptors,
        },
        separators=(",", ":"),
    ).encode()
    (directory / "manifest.json").write_bytes(manifest)
    manifest_digest = _write_blob(blobs, manifest)["digest"]
    _write_oci_layout(directory, str(manifest_digest), len(manifest))
    return Image(directory, str(manifest_digest), layers, total + len(config) + len(manifest))


def _write_oci_layout(directory: Path, digest: str, size: int) -> None:
    """Make the directory an OCI image layout too (``crane push DIR`` reads it)."""
    layout = directory / "blobs" / "sha256"
    layout.mkdir(exist_ok=True)
    for blob in (directory / "blobs").iterdir():
        if blob.is_file():
            target = layout / blob.name
            if not target.exists():
                os.link(blob, target)
    (directory / "oci-layout").write_text('{"imageLayoutVersion":"1.0.0"}')
    index = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.index.v1+json",
        "manifests": [{"mediaType": OCI_MANIFEST, "digest": digest, "size": size}],
    }
    (directory / "index.json").write_text(json.dumps(index))
