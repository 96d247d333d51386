"""Which S3 client the S3 driver uses: boto3 in a thread pool, or aiobotocore, measured against versitygw.

Not part of ``make bench``: aiobotocore pins another botocore than boto3 does, so it runs from a venv
of its own (the numbers are in benchmarks/FINDINGS.md, "S3 client"):

    python3 -m venv /tmp/s3bench && /tmp/s3bench/bin/pip install aiobotocore==3.10.0 \\
        'boto3>=1.43.115,<1.43.118'
    /tmp/s3bench/bin/python benchmarks/s3_clients.py --size 1GiB --repeat 3

Each client puts the same object as a multipart upload (8 MiB parts, two in flight, as the driver
does), gets it back with one streamed GET (1 MiB reads), and times small requests: sequential HEADs
and 4 KiB PUTs (latency), and 16 HEADs at a time (requests per second). CPU is this process's.
"""

from __future__ import annotations

import argparse
import asyncio
import os
import shutil
import socket
import statistics
import subprocess
import tempfile
import time
from collections.abc import Awaitable, Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

PART = 8 * 1024 * 1024
READ = 1024 * 1024
KEY, SECRET = "bench", "bench-secret-key"


def parse_size(text: str) -> int:
    units = {"KiB": 1024, "MiB": 1024**2, "GiB": 1024**3}
    for unit, factor in units.items():
        if text.endswith(unit):
            return int(float(text[: -len(unit)]) * factor)
    return int(text)


def start_versitygw(root: Path) -> tuple[subprocess.Popen[bytes], str]:
    binary = os.environ.get("CARGOBAY_VERSITYGW") or str(
        Path(os.environ.get("CARGOBAY_CACHE_DIR", ".cache")) / "bin" / "versitygw"
    )
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    (root / "data" / "bench").mkdir(parents=True)
    env = {**os.environ, "ROOT_ACCESS_KEY": KEY, "ROOT_SECRET_KEY": SECRET}
    process = subprocess.Popen(
        [binary, "--port", f"127.0.0.1:{port}", "posix", str(root / "data")],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    for _ in range(300):
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=0.2):
                return process, f"http://127.0.0.1:{port}"
        except OSError:
            time.sleep(0.05)
    process.kill()
    raise RuntimeError("versitygw did not start")


def client_config() -> Any:
    from botocore.config import Config

    return Config(
        region_name="us-east-1",
        max_pool_connections=32,
        s3={"addressing_style": "path"},
        request_checksum_calculation="when_required",
        response_checksum_validation="when_required",
    )


def source(size: int) -> Callable[[int], bytes]:
    block = os.urandom(64 * 1024 * 1024)

    def part(number: int) -> bytes:
        start = (number * PART) % len(block)
        length = min(PART, size - number * PART)
        data = (
            (block + block)[start : start + length]
            if start + length > len(block)
            else block[start : start + length]
        )
        return data

    return part


# -- boto3 in a thread pool (what the driver does) ---------------------------------------------------
class Boto3Threads:
    name = "boto3 + threads"

    def __init__(self, endpoint: str) -> None:
        import boto3

        self.client = boto3.session.Session(aws_access_key_id=KEY, aws_secret_access_key=SECRET).client(
            "s3", endpoint_url=endpoint, config=client_config()
        )
        self.pool = ThreadPoolExecutor(16)

    def call(self, fn: Callable[..., Any], **kwargs: Any) -> Awaitable[Any]:
        return asyncio.get_running_loop().run_in_executor(self.pool, lambda: fn(**kwargs))

    async def put(self, key: str, size: int, part: Callable[[int], bytes]) -> None:
        created = await self.call(self.client.create_multipart_upload, Bucket="bench", Key=key)
        upload = created["UploadId"]
        parts: list[dict[str, Any]] = []
        pending: list[tuple[int, Awaitable[Any]]] = []
        for number in range(-(-size // PART)):
            body = part(number)
            call = self.call(
                self.client.upload_part,
                Bucket="bench",
                Key=key,
                UploadId=upload,
                PartNumber=number + 1,
                Body=body,
            )
            pending.append((number + 1, call))
            if len(pending) >= 2:
                n, done = pending.pop(0)
                parts.append({"PartNumber": n, "ETag": (await done)["ETag"]})
        for n, done in pending:
            parts.append({"PartNumber": n, "ETag": (await done)["ETag"]})
        await self.call(
            self.client.complete_multipart_upload,
            Bucket="bench",
            Key=key,
            UploadId=upload,
            MultipartUpload={"Parts": parts},
        )

    async def get(self, key: str) -> int:
        body = (await self.call(self.client.get_object, Bucket="bench", Key=key))["Body"]
        total = 0
        loop = asyncio.get_running_loop()
        while data := await loop.run_in_executor(self.pool, body.read, READ):
            total += len(data)
        return total

    async def head(self, key: str) -> None:
        await self.call(self.client.head_object, Bucket="bench", Key=key)

    async def put_small(self, key: str, data: bytes) -> None:
        await self.call(self.client.put_object, Bucket="bench", Key=key, Body=data)

    async def close(self) -> None:
        self.pool.shutdown()


# -- aiobotocore -----------------------------------------------------------------------------------
class Aiobotocore:
    name = "aiobotocore"

    def __init__(self, endpoint: str) -> None:
        self.endpoint = endpoint

    async def open(self) -> None:
        from aiobotocore.session import get_session

        self._context = get_session().create_client(
            "s3",
            endpoint_url=self.endpoint,
            aws_access_key_id=KEY,
            aws_secret_access_key=SECRET,
            config=client_config(),
        )
        self.client = await self._context.__aenter__()

    async def put(self, key: str, size: int, part: Callable[[int], bytes]) -> None:
        created = await self.client.create_multipart_upload(Bucket="bench", Key=key)
        upload = created["UploadId"]
        parts: list[dict[str, Any]] = []
        pending: list[tuple[int, asyncio.Task[Any]]] = []
        for number in range(-(-size // PART)):
            body = part(number)
            task = asyncio.ensure_future(
                self.client.upload_part(
                    Bucket="bench", Key=key, UploadId=upload, PartNumber=number + 1, Body=body
                )
            )
            pending.append((number + 1, task))
            if len(pending) >= 2:
                n, done = pending.pop(0)
                parts.append({"PartNumber": n, "ETag": (await done)["ETag"]})
        for n, done in pending:
            parts.append({"PartNumber": n, "ETag": (await done)["ETag"]})
        await self.client.complete_multipart_upload(
            Bucket="bench", Key=key, UploadId=upload, MultipartUpload={"Parts": parts}
        )

    async def get(self, key: str) -> int:
        answer = await self.client.get_object(Bucket="bench", Key=key)
        total = 0
        async with answer["Body"] as body:
            while data := await body.read(READ):
                total += len(data)
        return total

    async def head(self, key: str) -> None:
        await self.client.head_object(Bucket="bench", Key=key)

    async def put_small(self, key: str, data: bytes) -> None:
        await self.client.put_object(Bucket="bench", Key=key, Body=data)

    async def close(self) -> None:
        await self._context.__aexit__(None, None, None)


async def measure(client: Any, size: int, part: Callable[[int], bytes], small: int) -> dict[str, float]:
    if hasattr(client, "open"):
        await client.open()
    result: dict[str, float] = {}
    key = f"big-{time.monotonic_ns()}"
    cpu, wall = time.process_time(), time.perf_counter()
    await client.put(key, size, part)
    result["put MB/s"] = size / 1e6 / (time.perf_counter() - wall)
    result["put CPU-s/GiB"] = (time.process_time() - cpu) * 1024**3 / size
    cpu, wall = time.process_time(), time.perf_counter()
    assert await client.get(key) == size
    result["get MB/s"] = size / 1e6 / (time.perf_counter() - wall)
    result["get CPU-s/GiB"] = (time.process_time() - cpu) * 1024**3 / size
    latencies = []
    for i in range(small):
        start = time.perf_counter()
        await client.put_small(f"small-{i}", b"x" * 4096)
        latencies.append(time.perf_counter() - start)
    result["PUT 4 KiB p50 ms"] = statistics.median(latencies) * 1000
    result["PUT 4 KiB p99 ms"] = statistics.quantiles(latencies, n=100)[98] * 1000
    latencies = []
    for i in range(small):
        start = time.perf_counter()
        await client.head(f"small-{i}")
        latencies.append(time.perf_counter() - start)
    result["HEAD p50 ms"] = statistics.median(latencies) * 1000
    result["HEAD p99 ms"] = statistics.quantiles(latencies, n=100)[98] * 1000
    start = time.perf_counter()
    for batch in range(0, small, 16):
        await asyncio.gather(*(client.head(f"small-{i}") for i in range(batch, min(batch + 16, small))))
    result["HEAD x16 req/s"] = small / (time.perf_counter() - start)
    await client.close()
    return result


async def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--size", default="1GiB")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--small", type=int, default=300)
    args = parser.parse_args()
    size = parse_size(args.size)
    part = source(size)
    root = Path(tempfile.mkdtemp(prefix="s3-clients-"))
    process, endpoint = start_versitygw(root)
    rows: dict[str, list[dict[str, float]]] = {}
    try:
        for round_ in range(args.repeat):
            kinds = [Boto3Threads, Aiobotocore] if round_ % 2 == 0 else [Aiobotocore, Boto3Threads]
            for kind in kinds:
                result = await measure(kind(endpoint), size, part, args.small)
                rows.setdefault(kind.name, []).append(result)
                print(kind.name, {k: round(v, 2) for k, v in result.items()}, flush=True)
                for leftover in (root / "data" / "bench").glob("big-*"):
                    leftover.unlink()
    finally:
        process.terminate()
        process.wait()
        shutil.rmtree(root, ignore_errors=True)
    print("\nmedians of", args.repeat, "repeats,", args.size)
    for name, results in rows.items():
        medians = {k: round(statistics.median(r[k] for r in results), 2) for k in results[0]}
        print(f"  {name:16} {medians}")


if __name__ == "__main__":
    asyncio.run(main())
