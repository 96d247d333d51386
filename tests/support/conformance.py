"""Running the OCI distribution-spec conformance suite (``scripts/install-peers.sh`` builds it)
against a live server, and judging its result: zero failures, zero skips, all of it run."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

from tests.support.peers import peer
from tests.support.server import Server


def run_conformance(server: Server, repo_prefix: str, profile: str, workdir: Path) -> None:
    """Run the suite against ``server`` (logged in as its owner) on two repositories under
    ``repo_prefix``; ``profile`` "dev" adds upload cancel, digest headers and tag parameters to "1.1"."""
    binary = peer("conformance")
    env = {
        **os.environ,
        "OCI_REGISTRY": server.host,
        "OCI_TLS": "disabled",
        "OCI_VERSION": profile,
        "OCI_REPO1": f"{repo_prefix}/repo1",
        "OCI_REPO2": f"{repo_prefix}/repo2",
        "OCI_USERNAME": server.admin_user,
        "OCI_PASSWORD": server.admin_password,
        "OCI_DATA_SHA512": "true",
        "OCI_RESULTS_DIR": str(workdir / "results"),
    }
    result = subprocess.run([binary], env=env, cwd=workdir, capture_output=True, text=True, timeout=600)
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
