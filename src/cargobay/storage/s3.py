"""S3 driver (AWS S3, IONOS S3, MinIO, Ceph, versitygw): boto3, its blocking calls in a thread pool.

The client was chosen by measuring it against aiobotocore (``benchmarks/FINDINGS.md``, "S3 client").

A writer is a multipart upload created at the object's own key, so ``commit`` is one
CompleteMultipartUpload: no copy, and the object appears whole or not at all. Parts are cut at
``part_size`` bytes as data arrives; one uploads in the background while the next one fills. S3 wants every
part but the last to hold at least 5 MiB, and clients send chunks of any size: what a request leaves
under 5 MiB when it is suspended goes into a small *pending* object of its own (distribution does the
same), ``{namespace}/uploads/{object id}.{size}-{random}.pending``, read back by the next request.
Each suspend writes a new one, so the pending object of the state the caller recorded is never
overwritten; the one it replaced is deleted when the new state is continued, committed or cancelled.
A writer with nothing but pending data commits with one PUT. Nothing on a request path lists keys.

Uploads abandoned without a state (a crash before the first chunk was recorded) leave multipart
uploads the driver cannot find without listing: give the bucket a lifecycle rule
``AbortIncompleteMultipartUpload`` (e.g. after the upload expiry plus a day).

With ``redirect=true`` the driver offers ``RedirectReads`` (distribution's S3 redirects): the registry
answers a blob GET with a 307 to a presigned GET of the object, and the client reads the bucket itself.
Only with encryption at rest off, since the bucket then holds the blobs' bytes as they are; the
composition root refuses the combination otherwise.
"""

from __future__ import annotations

import asyncio
import contextlib
import io
import re
import secrets
from collections import deque
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from typing import Any, TypeVar
from urllib.parse import parse_qs, urlsplit

import boto3
from botocore.config import Config
from botocore.exceptions import ClientError

from cargobay.storage.base import (
    Chunk,
    ObjectNotFound,
    StorageConfigError,
    WriterLost,
    WriterState,
    upload_key,
)
from cargobay.storage.streams import CHUNK, iterate_in_thread

MIN_PART = 5 * 1024 * 1024  # S3's smallest part but the last
PART_SIZE = 8 * 1024 * 1024
IN_FLIGHT = 2  # parts of a writer in memory at once: one uploading, one filling
DELETE_KEYS = 1000  # S3's limit of keys in one DeleteObjects request
PENDING_SUFFIX = ".pending"
REDIRECT_EXPIRY = 20 * 60  # distribution's default for its S3 driver's redirects
MAX_REDIRECT_EXPIRY = 7 * 24 * 3600  # the longest a SigV4 presigned URL may live
_NOT_FOUND = {"404", "NoSuchKey", "NotFound"}
# What an s3:// storage URL's query may hold (the README explains each).
S3_PARAMETERS = frozenset(
    {"endpoint_url", "region", "part_size", "redirect", "redirect_expiry", "redirect_endpoint_url"}
)

T = TypeVar("T")


@dataclass(frozen=True, slots=True)
class S3Location:
    bucket: str
    prefix: str
    endpoint_url: str | None
    region: str | None
    part_size: int
    redirect: bool = False
    redirect_expiry: int = REDIRECT_EXPIRY
    redirect_endpoint_url: str | None = None

    @classmethod
    def parse(cls, url: str) -> S3Location:
        """``s3://bucket/prefix?endpoint_url=…&region=…[&part_size=BYTES][&redirect=true
        [&redirect_expiry=SECONDS][&redirect_endpoint_url=…]]``."""
        parts = urlsplit(url)
        if parts.scheme != "s3" or not parts.netloc:
            raise StorageConfigError(
                f"not an S3 storage URL: {url!r} (s3://bucket/prefix?endpoint_url=…&region=…)"
            )
        query = {k: v[-1] for k, v in parse_qs(parts.query, keep_blank_values=True).items()}
        unknown = set(query) - S3_PARAMETERS
        if unknown:
            raise StorageConfigError(f"unknown S3 storage URL parameters: {', '.join(sorted(unknown))}")
        prefix = parts.path.strip("/")
        part_size = _integer(query, "part_size", PART_SIZE, MIN_PART, 5 * 1024**3, "bytes (5 MiB to 5 GiB)")
        expiry = _integer(
            query, "redirect_expiry", REDIRECT_EXPIRY, 1, MAX_REDIRECT_EXPIRY, "seconds (1 to 604800)"
        )
        return cls(
            parts.netloc,
            prefix + "/" if prefix else "",
            query.get("endpoint_url") or None,
            query.get("region") or None,
            part_size,
            _flag(query, "redirect"),
            expiry,
            _endpoint(query, "redirect_endpoint_url"),
        )


_TRUE, _FALSE = {"true", "1", "yes", "on"}, {"false", "0", "no", "off"}


def _flag(query: dict[str, str], name: str) -> bool:
    value = query.get(name, "false").strip().lower()
    if value not in _TRUE | _FALSE:
        raise StorageConfigError(f"{name} must be true or false, not {query[name]!r}")
    return value in _TRUE


def _integer(query: dict[str, str], name: str, default: int, low: int, high: int, unit: str) -> int:
    raw = query.get(name)
    if raw is None:
        return default
    if not re.fullmatch(r"[0-9]{1,12}", raw) or not low <= int(raw) <= high:
        raise StorageConfigError(f"{name} must be a whole number of {unit}, not {raw!r}")
    return int(raw)


def _endpoint(query: dict[str, str], name: str) -> str | None:
    raw = query.get(name)
    if raw is None:
        return None
    parts = urlsplit(raw)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.query or parts.fragment:
        raise StorageConfigError(f"{name} must be an http:// or https:// URL of the S3 endpoint, not {raw!r}")
    return raw


class S3Store:
    """See the module docstring; credentials come from boto3's usual chain (``AWS_ACCESS_KEY_ID`` …)."""

    files = False  # raw reads are HTTP bodies, not files whose page cache could be asked

    def __init__(self, location: S3Location, *, threads: int = 16) -> None:
        self.location = location
        self.bucket = location.bucket
        self.part_size = location.part_size
        config = Config(
            region_name=location.region,
            max_pool_connections=threads * 2,
            retries={"max_attempts": 4, "mode": "standard"},
            s3={"addressing_style": "path"},
            # No CRC trailers that S3-compatible servers may not know; SigV4 covers the payload.
            request_checksum_calculation="when_required",
            response_checksum_validation="when_required",
            tcp_keepalive=True,
        )
        session = boto3.session.Session()
        self.client: Any = session.client("s3", endpoint_url=location.endpoint_url, config=config)
        self.redirects = location.redirect
        # Presigned URLs name the endpoint clients reach, and are SigV4 (boto3 presigns SigV2 unless
        # told otherwise, which versitygw refuses and AWS deprecates): a client of their own, which
        # sends nothing.
        self._presigner: Any = (
            session.client(
                "s3",
                endpoint_url=location.redirect_endpoint_url or location.endpoint_url,
                config=config.merge(Config(signature_version="s3v4")),
            )
            if location.redirect
            else None
        )
        self._pool = ThreadPoolExecutor(max_workers=threads, thread_name_prefix="s3")

    @classmethod
    def from_url(cls, url: str) -> S3Store:
        return cls(S3Location.parse(url))

    def key(self, key: str) -> str:
        parts = key.split("/")
        if not key or any(p in ("", ".", "..") for p in parts):
            raise ValueError(f"invalid storage key {key!r}")
        return self.location.prefix + key

    def call(self, fn: Callable[..., T], /, *args: Any, **kwargs: Any) -> asyncio.Future[T]:
        """Run a blocking client call in the driver's pool."""
        return asyncio.get_running_loop().run_in_executor(self._pool, lambda: fn(*args, **kwargs))

    # -- reading ---------------------------------------------------------------------------
    async def stat(self, key: str) -> int | None:
        try:
            head = await self.call(self.client.head_object, Bucket=self.bucket, Key=self.key(key))
        except ClientError as exc:
            if _code(exc) in _NOT_FOUND:
                return None
            raise
        return int(head["ContentLength"])

    def reader(self, key: str, offset: int = 0, length: int | None = None) -> AsyncIterator[bytes]:
        return self._read(key, offset, length)

    async def _read(self, key: str, offset: int, length: int | None) -> AsyncIterator[bytes]:
        if offset < 0 or (length is not None and length < 0):
            raise ValueError("negative offset or length")
        if length == 0:
            if await self.stat(key) is None:
                raise ObjectNotFound(key)
            return
        chunks = iterate_in_thread(lambda: self._chunks(key, offset, length))
        try:
            first = await anext(chunks)
        except StopAsyncIteration:
            return
        yield first
        async for chunk in chunks:
            yield chunk

    def _chunks(self, key: str, offset: int, length: int | None) -> Iterator[bytes]:
        body = self._get(key, offset, length)
        if body is None:
            return
        try:
            while data := body.read(CHUNK):
                yield data
        finally:
            body.close()

    def _get(self, key: str, offset: int, length: int | None) -> Any:
        """The streaming body of a ranged GET (blocking); None for a range past the end."""
        kwargs: dict[str, Any] = {"Bucket": self.bucket, "Key": self.key(key)}
        if offset or length is not None:
            end = "" if length is None else str(offset + length - 1)
            kwargs["Range"] = f"bytes={offset}-{end}"
        try:
            return self.client.get_object(**kwargs)["Body"]
        except ClientError as exc:
            code = _code(exc)
            if code in _NOT_FOUND:
                raise ObjectNotFound(key) from None
            if code == "InvalidRange":  # the offset is at or past the end (or the object is empty)
                try:
                    self.client.head_object(Bucket=self.bucket, Key=self.key(key))
                except ClientError as missing:
                    if _code(missing) in _NOT_FOUND:
                        raise ObjectNotFound(key) from None
                    raise
                return None
            raise

    def open_raw(self, key: str, offset: int = 0) -> io.RawIOBase:
        """A blocking reader from ``offset`` (one ranged GET): the encryption wrapper reads and opens
        segments in one thread through it."""
        return _BodyReader(self._get(key, offset, None))

    async def redirect_url(self, key: str) -> str:
        """A presigned GET of the object, valid for ``redirect_expiry`` seconds (or until the
        credentials that signed it expire, if sooner). Signing is CPU work (about 1.5 ms in boto3 on
        the test machine), and refreshing credentials may be I/O: both run in the pool."""
        if self._presigner is None:
            raise RuntimeError("this S3 store was not configured with redirect=true")
        return str(
            await self.call(
                self._presigner.generate_presigned_url,
                "get_object",
                Params={"Bucket": self.bucket, "Key": self.key(key)},
                ExpiresIn=self.location.redirect_expiry,
            )
        )

    # -- writing ---------------------------------------------------------------------------
    async def put(self, key: str, data: bytes) -> None:
        await self.call(self.client.put_object, Bucket=self.bucket, Key=self.key(key), Body=data)

    async def writer(self, key: str, state: WriterState | None = None) -> S3Writer:
        return await S3Writer.open(self, key, state)

    async def discard(self, key: str, state: WriterState | None) -> None:
        if state is None or state.get("s3") != 1:
            return  # nothing to find without listing; see the lifecycle rule in the module docstring
        await self._abort(key, state.get("upload"))
        await self.delete_many([k for k in [state.get("pending"), *(state.get("garbage") or [])] if k])

    async def _abort(self, key: str, upload_id: str | None) -> None:
        if upload_id is None:
            return
        try:
            await self.call(
                self.client.abort_multipart_upload, Bucket=self.bucket, Key=self.key(key), UploadId=upload_id
            )
        except ClientError as exc:
            if _code(exc) not in ("NoSuchUpload", *_NOT_FOUND):
                raise

    async def delete(self, key: str) -> None:
        await self.call(self.client.delete_object, Bucket=self.bucket, Key=self.key(key))

    async def delete_many(self, keys: Sequence[str]) -> None:
        """One DeleteObjects request per 1,000 keys, sent at once (the pool bounds them). A key the
        server could not delete (anything but absent) fails the call, as a DeleteObject would."""
        await asyncio.gather(
            *(
                self.call(self._delete_objects, keys[start : start + DELETE_KEYS])
                for start in range(0, len(keys), DELETE_KEYS)
            )
        )

    def _delete_objects(self, keys: Sequence[str]) -> None:
        answer = self.client.delete_objects(
            Bucket=self.bucket, Delete={"Objects": [{"Key": self.key(k)} for k in keys], "Quiet": True}
        )
        failed = [e for e in answer.get("Errors") or [] if str(e.get("Code")) not in _NOT_FOUND]
        if failed:
            first = failed[0]
            message = f"{len(failed)} of {len(keys)} keys not deleted, first {first.get('Key')}: "
            error = {"Code": str(first.get("Code")), "Message": message + str(first.get("Message"))}
            raise ClientError({"Error": error}, "DeleteObjects")

    async def list(self, prefix: str) -> AsyncIterator[str]:
        full = self.location.prefix + prefix.lstrip("/")
        token: str | None = None
        while True:
            kwargs: dict[str, Any] = {"Bucket": self.bucket, "Prefix": full}
            if token:
                kwargs["ContinuationToken"] = token
            page = await self.call(self.client.list_objects_v2, **kwargs)
            for item in page.get("Contents", []):
                yield item["Key"][len(self.location.prefix) :]
            token = page.get("NextContinuationToken")
            if not page.get("IsTruncated") or not token:
                return

    async def close(self) -> None:
        self._pool.shutdown(wait=False)


class S3Writer:
    """A multipart upload at the object's key, with a pending object for what is under 5 MiB.

    State: ``{"s3": 1, "upload": id or null, "parts": [[number, etag, size], …], "pending": key or
    null, "pending_size": n, "size": total, "garbage": [keys]}``.
    """

    def __init__(
        self, store: S3Store, key: str, size: int, upload: str | None, parts: list[list[Any]]
    ) -> None:
        self._store = store
        self._key = key
        self._size = size
        self._upload = upload
        self._parts = parts
        self._buffer: list[Chunk] = []
        self._buffered = 0
        self._pending_key: str | None = None
        self._uploading: deque[asyncio.Future[list[Any]]] = deque()
        self._closed = False

    @classmethod
    async def open(cls, store: S3Store, key: str, state: WriterState | None) -> S3Writer:
        if state is None:
            return cls(store, key, 0, None, [])
        if state.get("s3") != 1:
            raise WriterLost(f"{key}: not a state of this driver")
        parts = [list(p) for p in state.get("parts") or []]
        pending, pending_size = state.get("pending"), int(state.get("pending_size") or 0)
        if sum(int(p[2]) for p in parts) + pending_size != int(state["size"]):
            raise WriterLost(f"{key}: the upload's parts do not add up to its size")
        writer = cls(store, key, int(state["size"]), state.get("upload"), parts)
        if pending_size:
            try:
                data = await store.call(_read_whole, store, pending)
            except ObjectNotFound:
                raise WriterLost(f"{key}: the upload's pending data is gone") from None
            if len(data) != pending_size:
                raise WriterLost(f"{key}: the upload's pending data is not what was recorded")
            writer._buffer, writer._buffered = [data], len(data)
        writer._pending_key = pending
        garbage = [k for k in state.get("garbage") or [] if k]
        if garbage:  # the state being continued was recorded: what it superseded can go
            with contextlib.suppress(Exception):  # a pending object left over is garbage, never data
                await store.delete_many(garbage)
        return writer

    @property
    def size(self) -> int:
        return self._size

    async def write(self, data: Chunk) -> None:
        if not data:
            return
        self._buffer.append(data)
        self._buffered += len(data)
        self._size += len(data)
        if self._buffered >= self._store.part_size:
            await self._upload_buffer()

    async def _upload_buffer(self) -> None:
        """Send what is buffered as the next part, in the background; wait for the one before it."""
        body = b"".join(self._buffer)
        self._buffer, self._buffered = [], 0
        if self._upload is None:
            created = await self._store.call(
                self._store.client.create_multipart_upload,
                Bucket=self._store.bucket,
                Key=self._store.key(self._key),
            )
            self._upload = str(created["UploadId"])
        number = len(self._parts) + len(self._uploading) + 1
        self._uploading.append(self._store.call(self._upload_part, self._upload, number, body))
        while len(self._uploading) > IN_FLIGHT - 1:
            self._parts.append(await self._next_part())

    async def _next_part(self) -> list[Any]:
        try:
            return await self._uploading.popleft()
        except ClientError as exc:
            if _code(exc) == "NoSuchUpload":
                raise WriterLost(f"{self._key}: the multipart upload is gone") from None
            raise

    def _upload_part(self, upload: str, number: int, body: bytes) -> list[Any]:
        store = self._store
        answer = store.client.upload_part(
            Bucket=store.bucket, Key=store.key(self._key), UploadId=upload, PartNumber=number, Body=body
        )
        return [number, answer["ETag"], len(body)]

    async def _settle(self) -> None:
        while self._uploading:
            self._parts.append(await self._next_part())

    async def suspend(self) -> WriterState:
        await self._settle()
        if self._buffered >= MIN_PART:
            await self._upload_buffer()
            await self._settle()
        old, new = self._pending_key, None
        pending_size = self._buffered
        if self._buffer:
            new = f"{upload_key(self._key)}.{self._size}-{secrets.token_hex(6)}{PENDING_SUFFIX}"
            self._buffer = [b"".join(self._buffer)]
            await self._store.put(new, bytes(self._buffer[0]))
        self._pending_key = new
        return {
            "s3": 1,
            "upload": self._upload,
            "parts": self._parts,
            "pending": new,
            "pending_size": pending_size,
            "size": self._size,
            "garbage": [old] if old is not None and old != new else [],
        }

    async def commit(self) -> int:
        await self._settle()
        store = self._store
        if self._upload is None:  # small: one PUT
            await store.put(self._key, b"".join(self._buffer))
        else:
            if self._buffer:
                await self._upload_buffer()
                await self._settle()
            parts = [{"PartNumber": n, "ETag": etag} for n, etag, _size in self._parts]
            try:
                await store.call(
                    store.client.complete_multipart_upload,
                    Bucket=store.bucket,
                    Key=store.key(self._key),
                    UploadId=self._upload,
                    MultipartUpload={"Parts": parts},
                )
            except ClientError as exc:
                if _code(exc) == "NoSuchUpload":
                    raise WriterLost(f"{self._key}: the multipart upload is gone") from None
                raise
        self._closed = True
        await self._forget_pending()
        return self._size

    async def cancel(self) -> None:
        self._stop()
        self._closed = True
        await self._store._abort(self._key, self._upload)
        await self._forget_pending()

    async def close(self) -> None:
        self._stop()
        self._closed = True

    async def _forget_pending(self) -> None:
        if self._pending_key is not None:
            with contextlib.suppress(Exception):  # a leftover pending object is garbage, never data
                await self._store.delete(self._pending_key)

    def _stop(self) -> None:
        for future in self._uploading:
            future.add_done_callback(_ignore)
        self._uploading.clear()


class _BodyReader(io.RawIOBase):
    """A ``RawIOBase`` over a streaming HTTP body (empty for a range past the end)."""

    def __init__(self, body: Any) -> None:
        self._body = body

    def readable(self) -> bool:
        return True

    def readinto(self, buffer: Any) -> int:
        if self._body is None:
            return 0
        view = memoryview(buffer).cast("B")
        data = self._body.read(len(view))
        view[: len(data)] = data
        return len(data)

    def close(self) -> None:
        if self._body is not None:
            self._body.close()
            self._body = None
        super().close()


def _read_whole(store: S3Store, key: object) -> bytes:
    if not isinstance(key, str):
        raise ObjectNotFound("no pending object")
    body = store._get(key, 0, None)
    if body is None:
        return b""
    try:
        return bytes(body.read())
    finally:
        body.close()


def _code(exc: ClientError) -> str:
    return str(exc.response.get("Error", {}).get("Code", ""))


def _ignore(future: asyncio.Future[Any]) -> None:
    if not future.cancelled():
        future.exception()
