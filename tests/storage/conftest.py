from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cargobay.storage.base import BlobStore
from cargobay.storage.encrypted import EncryptedStore
from cargobay.storage.filesystem import FilesystemStore
from tests.support.storage import StaticKeys


@pytest.fixture(params=["filesystem", "encrypted", "encrypted-threaded", "encrypted-small-segments"])
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobStore]:
    """Every driver, and the encryption wrapper over one.

    The wrapper opens reads on the event loop while the page cache has them; "encrypted-threaded"
    sends every read through its reader thread instead, so both paths pass the whole suite.
    """
    driver: BlobStore = FilesystemStore(tmp_path / "store")
    if request.param == "encrypted":
        driver = EncryptedStore(driver, StaticKeys())
    elif request.param == "encrypted-threaded":
        driver = EncryptedStore(driver, StaticKeys(), inline_reads=False)
    elif request.param == "encrypted-small-segments":
        driver = EncryptedStore(driver, StaticKeys(), segment_size=4000)
    yield driver
    await driver.close()
