"""A minimal OCI push/pull client over raw HTTP, for end-to-end tests of a live server."""

from __future__ import annotations

import hashlib
import json

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


def push_blob(client: httpx.Client, name: str, data: bytes) -> str:
    """Monolithic push (POST with ?digest=); returns the digest."""
    digest = digest_of(data)
    response = client.post(
        f"/v2/{name}/blobs/uploads/",
        params={"digest": digest},
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )
    assert response.status_code == 201, response.text
    return digest


def push_image(client: httpx.Client, name: str, tag: str, layer: bytes) -> tuple[str, bytes]:
    """Push a config, one layer and a manifest tagged ``tag``; returns (manifest digest, body)."""
    config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
    config_digest = push_blob(client, name, config)
    layer_digest = push_blob(client, name, layer)
    manifest = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config_digest,
                "size": len(config),
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer_digest,
                    "size": len(layer),
                }
            ],
        }
    ).encode()
    response = client.put(
        f"/v2/{name}/manifests/{tag}", content=manifest, headers={"Content-Type": OCI_MANIFEST}
    )
    assert response.status_code == 201, response.text
    return digest_of(manifest), manifest
