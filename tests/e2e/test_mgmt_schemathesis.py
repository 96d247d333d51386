"""Schemathesis against /containerregistries/openapi.json: no 5xx, no response that breaks the schema.

Every check runs except ``positive_data_acceptance``: the schema cannot express the business rules
(registry names are global, name/location are immutable on PUT, vulnerability scanning never goes
off again, expiry at least an hour ahead, real CIDR syntax, opaque cursors), so schema-valid
requests are legitimately refused with a 400/409 whose message names the field and rule.
"""

from __future__ import annotations

import subprocess
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.support.server import VENV_BIN, Server

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def fuzz_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("schemathesis")
    with Server(data_dir=base / "data") as srv:
        yield srv


def test_schemathesis_finds_no_server_errors_or_schema_violations(
    fuzz_server: Server, tmp_path: Path
) -> None:
    command = [
        str(VENV_BIN / "schemathesis"),
        "run",
        f"{fuzz_server.url}/containerregistries/openapi.json",
        "--auth",
        f"{fuzz_server.admin_user}:{fuzz_server.admin_password}",
        "--checks",
        "all",
        "--exclude-checks",
        "positive_data_acceptance",
        "--max-examples",
        "20",
        "--seed",
        "20241127",
        "--workers",
        "1",
        "--no-color",
        "--generation-database",
        "none",
        "--report",
        "junit",
        "--report-dir",
        str(tmp_path),
    ]
    result = subprocess.run(command, capture_output=True, text=True, timeout=900, cwd=tmp_path)
    assert result.returncode == 0, result.stdout[-20000:] + result.stderr[-5000:]
    assert "25/25" in result.stdout  # the 22 IONOS operations and the 3 of the GC extension
