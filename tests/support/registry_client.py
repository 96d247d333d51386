"""A small raw-HTTP registry client for end-to-end tests: push and pull blobs and manifests."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx

OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
OCI_CONFIG = "application/vnd.oci.image.config.v1+json"
OCI_LAYER = "application/vnd.oci.image.layer.v1.tar"


def digest_of(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class RegistryClient:
    base_url: str
    auth: tuple[str, str]

    def client(self) -> httpx.Client:
        return httpx.Client(base_url=self.base_url, auth=self.auth, timeout=120)

    def push_blob(self, repo: str, data: bytes) -> str:
        """Monolithic upload: one POST with the digest and the body."""
        digest = digest_of(data)
        with self.client() as c:
            r = c.post(f"/v2/{repo}/blobs/uploads/", params={"digest": digest}, content=data)
            assert r.status_code == 201, r.text
        return digest

    def push_blob_chunked(self, repo: str, data: bytes, chunk: int) -> str:
        """POST to open a session, PATCH chunks with Content-Range, PUT with the digest."""
        digest = digest_of(data)
        with self.client() as c:
            r = c.post(f"/v2/{repo}/blobs/uploads/")
            assert r.status_code == 202, r.text
            location = r.headers["location"]
            for start in range(0, len(data), chunk):
                piece = data[start : start + chunk]
                r = c.patch(
                    location,
                    content=piece,
                    headers={
                        "Content-Range": f"{start}-{start + len(piece) - 1}",
                        "Content-Type": "application/octet-stream",
                    },
                )
                assert r.status_code == 202, r.text
                location = r.headers["location"]
            r = c.put(location, params={"digest": digest})
            assert r.status_code == 201, r.text
        return digest

    def push_manifest(self, repo: str, reference: str, manifest: dict[str, Any]) -> str:
        body = json.dumps(manifest).encode()
        with self.client() as c:
            r = c.put(
                f"/v2/{repo}/manifests/{reference}",
                content=body,
                headers={"Content-Type": manifest["mediaType"]},
            )
            assert r.status_code == 201, r.text
        return digest_of(body)

    def push_image(
        self, repo: str, tag: str, layers: list[bytes], annotations: dict[str, str]
    ) -> dict[str, str]:
        """Push a config, layers and an OCI manifest; returns the digests by role."""
        config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}}).encode()
        digests = {"config": self.push_blob(repo, config)}
        descriptors = []
        for i, layer in enumerate(layers):
            digests[f"layer{i}"] = self.push_blob(repo, layer)
            descriptors.append({"mediaType": OCI_LAYER, "digest": digests[f"layer{i}"], "size": len(layer)})
        manifest = {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {"mediaType": OCI_CONFIG, "digest": digests["config"], "size": len(config)},
            "layers": descriptors,
            "annotations": annotations,
        }
        digests["manifest"] = self.push_manifest(repo, tag, manifest)
        return digests

    def get_blob(self, repo: str, digest: str, headers: dict[str, str] | None = None) -> httpx.Response:
        with self.client() as c:
            return c.get(f"/v2/{repo}/blobs/{digest}", headers=headers or {})

    def stream_blob(self, repo: str, digest: str, headers: dict[str, str] | None = None) -> Iterator[bytes]:
        """Yield the body as it arrives; raises on a non-2xx status or a broken transfer."""
        with self.client() as c, c.stream("GET", f"/v2/{repo}/blobs/{digest}", headers=headers or {}) as r:
            if r.status_code >= 300:
                r.read()
                raise httpx.HTTPStatusError(f"{r.status_code}: {r.text}", request=r.request, response=r)
            yield from r.iter_bytes()

    def get_manifest(self, repo: str, reference: str) -> httpx.Response:
        with self.client() as c:
            return c.get(f"/v2/{repo}/manifests/{reference}", headers={"Accept": OCI_MANIFEST})
