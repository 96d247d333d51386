"""The OCI distribution-spec conformance suite, against a live server with authentication on."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest

from tests.support.peers import peer
from tests.support.server import Server

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("profile", ["1.1", "dev"])
def test_conformance_suite_passes_with_zero_failures(
    server: Server, registry: str, tmp_path: Path, profile: str
) -> None:
    binary = peer("conformance")
    env = {
        **os.environ,
        "OCI_REGISTRY": server.host,
        "OCI_TLS": "disabled",
        "OCI_VERSION": profile,  # "dev" adds upload cancel, digest headers and tag parameters
        "OCI_REPO1": f"{registry}/conformance-{profile}/repo1",
        "OCI_REPO2": f"{registry}/conformance-{profile}/repo2",
        "OCI_USERNAME": server.admin_user,
        "OCI_PASSWORD": server.admin_password,
        "OCI_DATA_SHA512": "true",
        "OCI_RESULTS_DIR": str(tmp_path / "results"),
    }
    result = subprocess.run([binary], env=env, cwd=tmp_path, capture_output=True, text=True, timeout=600)
    summary = [
        line.strip()
        for line in result.stdout.splitlines()
        if line.strip().startswith(("Pass", "FAIL", "Skip"))
    ]
    assert result.returncode == 0, "\n".join(summary) + "\n" + result.stderr[-4000:]
    counts = {line.split(".", 1)[0]: int(line.rsplit(":", 1)[1]) for line in summary if ":" in line}
    assert counts.get("FAIL") == 0
    assert counts.get("Skip") == 0, result.stdout[-4000:]
    assert counts.get("Pass", 0) > 800
