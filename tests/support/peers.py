"""Locating the external test peers installed by ``scripts/install-peers.sh``.

In CI (``CI=true``) a missing peer fails the test: the Makefile installs them, so absence is a bug.
Elsewhere the test is skipped with the reason.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("CARGOBAY_CACHE_DIR", REPO / ".cache"))


def in_ci() -> bool:
    return os.environ.get("CI", "").lower() in ("1", "true", "yes")


def peer(name: str) -> str:
    """Path of a peer binary (cache bin dir first, then PATH), or skip/fail."""
    candidates = [CACHE / "bin" / name]
    found = next((str(c) for c in candidates if c.is_file() and os.access(c, os.X_OK)), None)
    found = found or shutil.which(name)
    if found is None:
        message = f"test peer {name!r} is not installed (run `make peers`)"
        if in_ci():
            pytest.fail(message)
        pytest.skip(message)
    return found
