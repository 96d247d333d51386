"""Building test images by hand: random tar layers, configs, manifests, indexes and OCI layouts.

Everything is deterministic given the ``random.Random`` passed in, so a failing test can be replayed.
"""

from __future__ import annotations

import gzip
import hashlib
import io
import json
import random
import tarfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_INDEX = "application/vnd.oci.image.index.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER_GZIP = "application/vnd.oci.image.layer.v1.tar+gzip"
OCI_EMPTY = "application/vnd.oci.empty.v1+json"
DOCKER_MANIFEST = "application/vnd.docker.distribution.manifest.v2+json"
DOCKER_MANIFEST_LIST = "application/vnd.docker.distribution.manifest.list.v2+json"
DOCKER_CONFIG = "application/vnd.docker.container.image.v1+json"
DOCKER_LAYER_GZIP = "application/vnd.docker.image.rootfs.diff.tar.gzip"
REF_NAME = "org.opencontainers.image.ref.name"


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def sha512(data: bytes) -> str:
    return "sha512:" + hashlib.sha512(data).hexdigest()


def canonical(doc: dict[str, Any]) -> bytes:
    return json.dumps(doc, separators=(",", ":"), sort_keys=True).encode()


@dataclass(frozen=True)
class Content:
    """Bytes with their media type; the descriptor is derived from them."""

    media_type: str
    data: bytes

    @property
    def digest(self) -> str:
        return sha256(self.data)

    @property
    def size(self) -> int:
        return len(self.data)

    def descriptor(self, **extra: Any) -> dict[str, Any]:
        return {"mediaType": self.media_type, "digest": self.digest, "size": self.size, **extra}


@dataclass(frozen=True)
class Image:
    config: Content
    layers: tuple[Content, ...]
    manifest: Content
    platform: dict[str, str] = field(default_factory=dict)

    @property
    def blobs(self) -> tuple[Content, ...]:
        return (self.config, *self.layers)

    @property
    def digest(self) -> str:
        return self.manifest.digest


@dataclass(frozen=True)
class Index:
    images: tuple[Image, ...]
    manifest: Content

    @property
    def digest(self) -> str:
        return self.manifest.digest


def random_layer(rng: random.Random, files: int = 3, max_file_size: int = 64 * 1024) -> bytes:
    """A gzipped tar of a few files of random bytes (incompressible, so sizes stay as chosen)."""
    return tar_layer(rng, [rng.randint(0, max_file_size) for _ in range(files)])


def tar_layer(rng: random.Random, file_sizes: list[int]) -> bytes:
    """A gzipped tar with one file of random bytes per size given."""
    raw = io.BytesIO()
    with tarfile.open(fileobj=raw, mode="w", format=tarfile.PAX_FORMAT) as tar:
        for i, size in enumerate(file_sizes):
            data = rng.randbytes(size)
            info = tarfile.TarInfo(f"data/file-{rng.getrandbits(32):08x}-{i}.bin")
            info.size = len(data)
            info.mtime = 1_700_000_000
            info.mode = 0o644
            tar.addfile(info, io.BytesIO(data))
    return gzip.compress(raw.getvalue(), mtime=0)


def make_image(
    rng: random.Random,
    layers: int = 3,
    os: str = "linux",
    architecture: str = "amd64",
    docker: bool = False,
    max_file_size: int = 64 * 1024,
    layer_sizes: list[int] | None = None,
) -> Image:
    """An image with ``layers`` random layers (or one per ``layer_sizes`` entry, each a file of about
    that many bytes); OCI media types unless ``docker``."""
    media_type = DOCKER_LAYER_GZIP if docker else OCI_LAYER_GZIP
    if layer_sizes is not None:
        blobs = tuple(Content(media_type, tar_layer(rng, [size])) for size in layer_sizes)
    else:
        blobs = tuple(Content(media_type, random_layer(rng, 2, max_file_size)) for _ in range(layers))
    diff_ids = [sha256(gzip.decompress(b.data)) for b in blobs]
    config_doc = {
        "architecture": architecture,
        "os": os,
        "created": "2024-01-01T00:00:00Z",
        "config": {"Env": [f"SEED={rng.getrandbits(64)}"]},
        "rootfs": {"type": "layers", "diff_ids": diff_ids},
        "history": [{"created": "2024-01-01T00:00:00Z", "created_by": "tests"} for _ in blobs],
    }
    config = Content(DOCKER_CONFIG if docker else OCI_CONFIG, canonical(config_doc))
    media_type = DOCKER_MANIFEST if docker else OCI_MANIFEST
    manifest_doc = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "config": config.descriptor(),
        "layers": [b.descriptor() for b in blobs],
    }
    return Image(
        config, blobs, Content(media_type, canonical(manifest_doc)), {"os": os, "architecture": architecture}
    )


def make_index(images: tuple[Image, ...] | list[Image], docker: bool = False) -> Index:
    media_type = DOCKER_MANIFEST_LIST if docker else OCI_INDEX
    doc = {
        "schemaVersion": 2,
        "mediaType": media_type,
        "manifests": [image.manifest.descriptor(platform=image.platform) for image in images],
    }
    return Index(tuple(images), Content(media_type, canonical(doc)))


def write_oci_layout(root: Path, tagged: dict[str, Image | Index]) -> Path:
    """An OCI image layout holding the given images/indexes, each under its tag (``ref.name``)."""
    blobs_dir = root / "blobs" / "sha256"
    blobs_dir.mkdir(parents=True, exist_ok=True)
    (root / "oci-layout").write_text(json.dumps({"imageLayoutVersion": "1.0.0"}))

    def put(content: Content) -> None:
        (blobs_dir / content.digest.split(":", 1)[1]).write_bytes(content.data)

    entries = []
    for tag, item in tagged.items():
        images = item.images if isinstance(item, Index) else (item,)
        for image in images:
            for blob in image.blobs:
                put(blob)
            put(image.manifest)
        put(item.manifest)
        entries.append(item.manifest.descriptor(annotations={REF_NAME: tag}))
    index = {"schemaVersion": 2, "mediaType": OCI_INDEX, "manifests": entries}
    (root / "index.json").write_text(json.dumps(index))
    return root


def layout_blobs(root: Path) -> dict[str, bytes]:
    """Every blob of an OCI layout by digest, each checked against its file name."""
    found: dict[str, bytes] = {}
    for algorithm_dir in (root / "blobs").iterdir():
        for path in algorithm_dir.iterdir():
            data = path.read_bytes()
            digest = f"{algorithm_dir.name}:{path.name}"
            computed = hashlib.new(algorithm_dir.name, data).hexdigest()
            assert computed == path.name, f"{digest} in the layout holds other bytes"
            found[digest] = data
    return found
