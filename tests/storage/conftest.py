from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from cargobay.storage.base import BlobStore
from cargobay.storage.encrypted import EncryptedStore
from cargobay.storage.filesystem import FilesystemStore
from cargobay.storage.s3 import MIN_PART, S3Store
from tests.support.s3 import S3Server
from tests.support.storage import StaticKeys, Streamed

STORES = [
    "filesystem",
    "encrypted",
    "encrypted-threaded",
    "encrypted-small-segments",
    "s3",
    "encrypted-s3",
    "encrypted-s3-streamed",
]


@pytest.fixture(params=STORES)
async def store(request: pytest.FixtureRequest, tmp_path: Path) -> AsyncIterator[BlobStore]:
    """Every driver, and the encryption wrapper over each.

    Over files the wrapper opens reads on the event loop while the page cache has them;
    "encrypted-threaded" sends every read through its reader thread instead, so both paths pass the
    whole suite. Over S3 it reads and opens segments in one thread through the driver's raw reads;
    "encrypted-s3-streamed" hides those, as a driver without blocking reads would, and the segments
    stream through the driver's reader. The S3 driver cuts 5 MiB parts, S3's smallest.
    """
    param = str(request.param)
    driver: BlobStore
    if "s3" in param:
        server: S3Server = request.getfixturevalue("s3_server")
        with pytest.MonkeyPatch.context() as env:
            for name, value in server.env.items():
                env.setenv(name, value)
            driver = S3Store.from_url(server.url(server.new_bucket(), "cargobay", part_size=str(MIN_PART)))
    else:
        driver = FilesystemStore(tmp_path / "store")
    if param.endswith("-streamed"):
        driver = Streamed(driver)
    if param.startswith("encrypted"):
        options = {
            "encrypted-threaded": {"inline_reads": False},
            "encrypted-small-segments": {"segment_size": 4000},
        }
        driver = EncryptedStore(driver, StaticKeys(), **options.get(param, {}))  # type: ignore[arg-type]
    yield driver
    await driver.close()
