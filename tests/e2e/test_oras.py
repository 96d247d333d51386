"""oras and regctl against a live server: artifacts with an artifact type, referrers attached and
discovered through the referrers API, pulls of both, and regctl's view of the same referrers."""

from __future__ import annotations

import json
import random
from pathlib import Path
from typing import Any

import pytest

from tests.support.clients import ClientEnv
from tests.support.images import OCI_MANIFEST, sha256
from tests.support.server import Server
from tests.support.v2 import V2

ARTIFACT = "application/vnd.cargobay.test.bundle"
SIGNATURE = "application/vnd.cargobay.test.signature"
SBOM = "application/vnd.cargobay.test.sbom"


@pytest.fixture
def oras(server: Server, clients: ClientEnv) -> ClientEnv:
    clients.run(
        "oras",
        "login",
        "--plain-http",
        "--registry-config",
        str(clients.oras_config),
        "-u",
        server.admin_user,
        "--password-stdin",
        server.host,
        input=server.admin_password,
    )
    return clients


def _oras(clients: ClientEnv, command: str, *args: str) -> str:
    """``command`` may be two words (``repo tags``); the connection flags go after it."""
    return clients.run(
        "oras", *command.split(), "--plain-http", "--registry-config", str(clients.oras_config), *args
    ).stdout


def _push_bundle(
    oras: ClientEnv, ref: str, workdir: Path, rng: random.Random
) -> tuple[dict[str, Any], dict[str, bytes]]:
    files = {"readme.txt": b"hello from cargobay\n", "data.bin": rng.randbytes(700_000)}
    for name, data in files.items():
        (workdir / name).write_bytes(data)
    pushed = json.loads(
        _oras(
            oras,
            "push",
            "--format",
            "json",
            "--artifact-type",
            ARTIFACT,
            "--annotation",
            "org.example.purpose=tests",
            ref,
            "readme.txt:text/plain",
            "data.bin:application/octet-stream",
        )
    )
    return pushed, files


def _attach(
    oras: ClientEnv, ref: str, artifact_type: str, name: str, data: bytes, workdir: Path
) -> dict[str, Any]:
    (workdir / name).write_bytes(data)
    return dict(
        json.loads(
            _oras(
                oras,
                "attach",
                "--format",
                "json",
                "--artifact-type",
                artifact_type,
                ref,
                f"{name}:text/plain",
            )
        )
    )


def _referrers(discovered: dict[str, Any]) -> list[dict[str, Any]]:
    """oras >= 1.2 reports ``referrers``; older versions used ``manifests``."""
    return list(discovered.get("referrers", discovered.get("manifests", [])))


def test_push_attach_discover_and_pull(
    server: Server, v2: V2, repo: str, oras: ClientEnv, tmp_path: Path, rng: random.Random
) -> None:
    work = oras.workdir
    ref = f"{server.host}/{repo}:bundle"
    pushed, files = _push_bundle(oras, ref, work, rng)
    assert pushed["artifactType"] == ARTIFACT
    subject = pushed["digest"]
    manifest = v2.manifest(repo, "bundle")
    assert manifest.headers["content-type"] == OCI_MANIFEST
    body = manifest.json()
    assert body["artifactType"] == ARTIFACT
    assert {layer["digest"] for layer in body["layers"]} == {sha256(data) for data in files.values()}

    signature = _attach(oras, ref, SIGNATURE, "signature.txt", b"signed by tests\n", work)
    sbom = _attach(oras, ref, SBOM, "sbom.txt", b"nothing inside\n", work)
    assert v2.tags(repo) == ["bundle"]  # the referrers API was used, not the tag fallback

    discovered = json.loads(_oras(oras, "discover", "--format", "json", ref))
    assert discovered["digest"] == subject
    found = {r["digest"]: r for r in _referrers(discovered)}
    assert set(found) == {signature["digest"], sbom["digest"]}
    assert found[signature["digest"]]["artifactType"] == SIGNATURE
    assert found[sbom["digest"]]["artifactType"] == SBOM

    filtered = json.loads(_oras(oras, "discover", "--format", "json", "--artifact-type", SIGNATURE, ref))
    assert [r["digest"] for r in _referrers(filtered)] == [signature["digest"]]

    out = tmp_path / "pulled"
    _oras(oras, "pull", "-o", str(out), ref)
    assert {p.name: p.read_bytes() for p in out.iterdir()} == files
    attached = tmp_path / "attached"
    _oras(oras, "pull", "-o", str(attached), f"{server.host}/{repo}@{signature['digest']}")
    assert (attached / "signature.txt").read_bytes() == b"signed by tests\n"

    tags = _oras(oras, "repo tags", f"{server.host}/{repo}").split()
    assert tags == ["bundle"]
    fetched = oras.output(
        "oras", "manifest", "fetch", "--plain-http", "--registry-config", str(oras.oras_config), ref
    )
    assert fetched == manifest.content


def test_regctl_lists_the_same_referrers(
    server: Server, v2: V2, repo: str, oras: ClientEnv, tmp_path: Path, rng: random.Random
) -> None:
    work = oras.workdir
    ref = f"{server.host}/{repo}:bundle"
    pushed, _ = _push_bundle(oras, ref, work, rng)
    signature = _attach(oras, ref, SIGNATURE, "signature.txt", b"signed\n", work)
    _attach(oras, ref, SBOM, "sbom.txt", b"sbom\n", work)
    host = f"reg={server.host},tls=disabled,user={server.admin_user},pass={server.admin_password}"

    listed = oras.json("regctl", "artifact", "list", "--host", host, ref, "--format", "{{json .}}")
    assert listed["subject"]["Digest"] == pushed["digest"]
    assert {d["artifactType"] for d in listed["descriptors"]} == {SIGNATURE, SBOM}

    only = oras.json(
        "regctl",
        "artifact",
        "list",
        "--host",
        host,
        ref,
        "--filter-artifact-type",
        SIGNATURE,
        "--format",
        "{{json .Manifest}}",
    )
    assert [d["digest"] for d in only["manifests"]] == [signature["digest"]]
    assert oras.run("regctl", "tag", "ls", "--host", host, f"{server.host}/{repo}").stdout.split() == [
        "bundle"
    ]
