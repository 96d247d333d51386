"""The OCI distribution-spec conformance suite, against a live server with authentication on."""

from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.conformance import run_conformance
from tests.support.server import Server

pytestmark = pytest.mark.slow


@pytest.mark.parametrize("profile", ["1.1", "dev"])
def test_conformance_suite_passes_with_zero_failures(
    server: Server, registry: str, tmp_path: Path, profile: str
) -> None:
    run_conformance(server, f"{registry}/conformance-{profile}", profile, tmp_path)
