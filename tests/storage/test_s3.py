"""What the S3 driver does beyond the contract: its URL, multipart parts and pending objects, no
listing and no copying on request paths (against versitygw)."""

from __future__ import annotations

import asyncio
import hashlib
import os
import re
from collections.abc import AsyncIterator, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import httpx
import pytest
from botocore.exceptions import ClientError

from cargobay.db.engine import Database
from cargobay.services.blobs import BlobInfo, BlobService
from cargobay.storage.base import IntegrityError, RedirectReads, StorageConfigError
from cargobay.storage.encrypted import SUFFIX, EncryptedStore
from cargobay.storage.factory import open_store
from cargobay.storage.s3 import MIN_PART, PART_SIZE, S3Location, S3Store
from tests.support.s3 import Calls, S3Server
from tests.support.storage import StaticKeys, fill, read_all, write_chunks

NS = "4f6a0c1e-0000-4000-8000-000000000001"
KEY = f"{NS}/blobs/ab/ab01"
DATA = os.urandom(2 * MIN_PART + 777)


def test_the_url_names_bucket_prefix_endpoint_region_and_part_size() -> None:
    location = S3Location.parse(
        "s3://blobs/cargo/bay/?endpoint_url=http://h:9000&region=eu-1&part_size=6291456"
    )
    assert location == S3Location("blobs", "cargo/bay/", "http://h:9000", "eu-1", 6 * 1024 * 1024)
    assert S3Location.parse("s3://blobs").prefix == ""
    assert S3Location.parse("s3://blobs").part_size == PART_SIZE


@pytest.mark.parametrize(
    "url", ["s3:///prefix", "s3://b?endpoint=x", "s3://b?part_size=1024", "file:///tmp/x"]
)
def test_a_bad_url_is_refused(url: str) -> None:
    with pytest.raises(ValueError):
        S3Location.parse(url)


@pytest.fixture
async def s3(s3_server: S3Server, monkeypatch: pytest.MonkeyPatch) -> AsyncIterator[S3Store]:
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    store = open_store(s3_server.url(s3_server.new_bucket(), "p", part_size=str(MIN_PART)))
    assert isinstance(store, S3Store)
    yield store
    await store.close()


@pytest.fixture
async def redirecting(
    s3_server: S3Server, monkeypatch: pytest.MonkeyPatch
) -> AsyncIterator[Callable[..., S3Store]]:
    """Opens S3 stores on a fresh bucket under the prefix ``p``, with ``redirect=true`` and the
    parameters given."""
    for name, value in s3_server.env.items():
        monkeypatch.setenv(name, value)
    opened: list[S3Store] = []

    def open_redirecting(**params: str) -> S3Store:
        url = s3_server.url(s3_server.new_bucket(), "p", part_size=str(MIN_PART), redirect="true", **params)
        store = open_store(url)
        assert isinstance(store, S3Store)
        opened.append(store)
        return store

    yield open_redirecting
    for store in opened:
        await store.close()


async def test_small_sessions_wait_in_pending_objects_and_large_ones_become_parts(s3: S3Store) -> None:
    state = await write_chunks(s3, KEY, DATA[:1000])
    assert state["upload"] is None and state["pending_size"] == 1000
    state = await write_chunks(s3, KEY, DATA[1000 : MIN_PART + 5000], chunk=300_000, state=state)
    assert state["upload"] is not None and [p[2] for p in state["parts"]] == [MIN_PART + 5000]
    assert state["pending"] is None and state["pending_size"] == 0
    state = await write_chunks(s3, KEY, DATA[MIN_PART + 5000 : MIN_PART + 6000], state=state)
    assert state["pending_size"] == 1000
    writer = await s3.writer(KEY, state)
    await writer.write(DATA[MIN_PART + 6000 :])
    assert await writer.commit() == len(DATA)
    assert await read_all(s3.reader(KEY)) == DATA
    assert await read_all(s3.reader(KEY, MIN_PART - 3, 10)) == DATA[MIN_PART - 3 : MIN_PART + 7]
    assert [key async for key in s3.list(f"{NS}/uploads")] == []


async def test_request_paths_neither_list_nor_copy(s3: S3Store) -> None:
    calls = Calls(s3)
    state = await write_chunks(s3, KEY, DATA[: MIN_PART + 10], chunk=1 << 20)
    state = await write_chunks(s3, KEY, DATA[MIN_PART + 10 : MIN_PART + 20], state=state)
    writer = await s3.writer(KEY, state)
    await writer.write(DATA[MIN_PART + 20 :])
    await writer.commit()
    await s3.stat(KEY)
    await read_all(s3.reader(KEY, 5, 100))
    await s3.delete(KEY)
    assert not [n for n in calls.names if n.startswith("list") or "copy" in n], calls.names
    assert calls.names.count("complete_multipart_upload") == 1


async def test_a_small_object_is_one_put(s3: S3Store) -> None:
    calls = Calls(s3)
    writer = await s3.writer(KEY)
    await writer.write(b"small")
    await writer.commit()
    assert calls.names == ["put_object"]


async def test_a_sealed_object_changed_in_the_bucket_fails_the_read(s3: S3Store) -> None:
    store = EncryptedStore(s3, StaticKeys(), segment_size=4000)
    await store.put(KEY, DATA[:10_000])
    sealed = bytearray(await read_all(s3.reader(KEY + SUFFIX)))
    sealed[5000] ^= 1
    await s3.put(KEY + SUFFIX, bytes(sealed))
    with pytest.raises(IntegrityError):
        await read_all(store.reader(KEY))
    assert await read_all(store.reader(KEY, 0, 100)) == DATA[:100]  # the first segment is intact


def test_redirects_are_off_unless_the_url_asks_and_expire_after_20_minutes() -> None:
    plain = S3Location.parse("s3://blobs/p?endpoint_url=http://h:9000")
    assert (plain.redirect, plain.redirect_expiry, plain.redirect_endpoint_url) == (False, 1200, None)
    asked = S3Location.parse(
        "s3://blobs/p?endpoint_url=http://s3:9000&redirect=true&redirect_expiry=300"
        "&redirect_endpoint_url=https://s3.example.com"
    )
    assert (asked.redirect, asked.redirect_expiry, asked.redirect_endpoint_url) == (
        True,
        300,
        "https://s3.example.com",
    )
    assert S3Location.parse("s3://blobs?redirect=false").redirect is False


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("redirect=maybe", "redirect must be true or false, not 'maybe'"),
        ("redirect=", "redirect must be true or false, not ''"),
        ("redirect=true&redirect_expiry=0", "redirect_expiry must be a whole number of seconds"),
        ("redirect=true&redirect_expiry=604801", "redirect_expiry must be a whole number of seconds"),
        ("redirect=true&redirect_expiry=20m", "redirect_expiry must be a whole number of seconds"),
        ("redirect=true&redirect_endpoint_url=s3.example.com", "redirect_endpoint_url must be an http"),
        ("redirect=true&redirect_endpoint_url=ftp://h", "redirect_endpoint_url must be an http"),
        ("redirect=true&redirect_url=http://h", "unknown S3 storage URL parameters: redirect_url"),
        ("part_size=lots", "part_size must be a whole number of bytes"),
    ],
)
def test_a_bad_parameter_value_is_refused_naming_the_parameter(query: str, message: str) -> None:
    with pytest.raises(StorageConfigError, match=re.escape(message)):
        S3Location.parse(f"s3://blobs/p?{query}")


async def test_a_presigned_url_reads_the_object_under_the_prefix_without_credentials(
    redirecting: Callable[..., S3Store],
) -> None:
    store = redirecting()
    await fill(store, KEY, DATA)
    url = await store.redirect_url(KEY)
    assert urlsplit(url).path == f"/{store.bucket}/p/{KEY}"
    async with httpx.AsyncClient(timeout=60) as anyone:  # no credentials but the URL's own
        whole = await anyone.get(url)
        assert whole.status_code == 200
        assert hashlib.sha256(whole.content).digest() == hashlib.sha256(DATA).digest()
        ranged = await anyone.get(url, headers={"Range": f"bytes={MIN_PART - 3}-{MIN_PART + 6}"})
        assert ranged.status_code == 206 and ranged.content == DATA[MIN_PART - 3 : MIN_PART + 7]
        other = await anyone.get(url.replace(f"/p/{KEY}?", f"/p/{NS}/blobs/ab/ab02?"))
        assert other.status_code == 403  # the signature covers the key


async def test_a_presigned_url_stops_working_after_its_expiry(redirecting: Callable[..., S3Store]) -> None:
    # A signature's time is whole seconds, so a URL of N seconds lives N-1 to N seconds: 4 leaves
    # a loaded machine three for the first GET.
    store = redirecting(redirect_expiry="4")
    await store.put(KEY, b"short-lived")
    url = await store.redirect_url(KEY)
    async with httpx.AsyncClient() as anyone:
        assert (await anyone.get(url)).content == b"short-lived"
        await asyncio.sleep(5)
        assert (await anyone.get(url)).status_code == 403


async def test_presigned_urls_name_the_endpoint_clients_reach(
    redirecting: Callable[..., S3Store], s3_server: S3Server
) -> None:
    """The driver talks to the bucket at one address; clients may reach it at another."""
    public = f"http://localhost:{s3_server.port}"
    store = redirecting(redirect_endpoint_url=public)
    await store.put(KEY, b"seen from outside")
    url = await store.redirect_url(KEY)
    assert url.startswith(f"{public}/{store.bucket}/p/{KEY}?")
    async with httpx.AsyncClient() as anyone:
        assert (await anyone.get(url)).content == b"seen from outside"


async def test_blobs_redirect_through_a_redirecting_driver_and_never_through_encryption(
    redirecting: Callable[..., S3Store], s3: S3Store, tmp_path: Path
) -> None:
    driver = redirecting()
    await driver.put(KEY, b"plain bytes")
    blob = BlobInfo(1, "sha256:" + hashlib.sha256(b"plain bytes").hexdigest(), 11, KEY)
    db = Database(f"sqlite:///{tmp_path / 'cargobay.db'}")
    try:
        url = await BlobService(db, driver).redirect(blob)
        assert url is not None
        async with httpx.AsyncClient() as anyone:
            assert (await anyone.get(url)).content == b"plain bytes"
        sealed = EncryptedStore(driver, StaticKeys())
        assert not isinstance(sealed, RedirectReads)
        assert await BlobService(db, sealed).redirect(blob) is None
        assert not s3.redirects and await BlobService(db, s3).redirect(blob) is None  # not asked to
    finally:
        db.dispose()


async def test_a_batch_delete_is_one_request_per_thousand_keys(s3: S3Store) -> None:
    stored = [f"{NS}/blobs/ab/ab0{i}" for i in range(3)]
    for key in stored:
        await s3.put(key, b"x")
    absent = [f"{NS}/blobs/cd/cd{i:04d}" for i in range(2000)]
    calls = Calls(s3)
    await s3.delete_many([*stored, *absent])
    assert sorted(calls.names) == ["delete_objects"] * 3
    assert [await s3.stat(key) for key in stored] == [None] * 3


async def test_a_key_a_batch_delete_could_not_delete_fails_it(s3: S3Store) -> None:
    """Absent keys are no error; any other a DeleteObjects answer lists is one (Quiet mode answers
    only those, so ignoring them would lose deletes silently). versitygw refuses none: the answer is
    amended."""
    await s3.put(KEY, b"x")
    real = s3.client

    class Refusing:
        def __getattr__(self, name: str) -> Any:
            return getattr(real, name)

        def delete_objects(self, **kwargs: Any) -> Any:
            answer = dict(real.delete_objects(**kwargs))
            answer["Errors"] = [
                {"Key": "p/absent", "Code": "NoSuchKey", "Message": "gone"},
                {"Key": s3.key(KEY), "Code": "AccessDenied", "Message": "Access Denied"},
            ]
            return answer

    s3.client = Refusing()
    with pytest.raises(ClientError, match="AccessDenied"):
        await s3.delete_many([KEY, f"{NS}/blobs/ab/absent"])
