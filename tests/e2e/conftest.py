from __future__ import annotations

from pathlib import Path

import pytest

from tests.support.clients import ClientEnv


@pytest.fixture
def clients(tmp_path: Path) -> ClientEnv:
    """Real registry clients with a private HOME and auth files (never the user's)."""
    root = tmp_path / "clients"
    root.mkdir()
    return ClientEnv(root)
