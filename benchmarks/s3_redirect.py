"""Pulling one large blob from S3 (versitygw) through Cargobay, and redirected to a presigned URL.

    .venv/bin/python -m benchmarks.s3_redirect [--size 256MiB] [--repeat 3] [--rounds 2]

Not part of ``make bench`` (the numbers are in benchmarks/FINDINGS.md, "Blob GET redirected"). One
installation (encryption off, SQLite, a bucket of the test suite's versitygw under the prefix
``registry``) holds a blob of ``--size`` random bytes, pushed in one monolithic POST. Then, alternating
``--rounds`` times, a server on it with ``redirect=false`` and one with ``redirect=true`` is started and
``curl -L`` pulls the blob ``--repeat`` times (Basic auth, which curl does not send to the bucket's
port); each copy is checked against the digest. Reported: each pull's wall time, MiB/s of the median,
and the CPU seconds per pull of the server's process tree.
"""

from __future__ import annotations

import argparse
import hashlib
import os
import statistics
import subprocess
import tempfile
from pathlib import Path

from tests.support.s3 import S3Server, start_s3_server
from tests.support.server import Server

from benchmarks.cli import parse_size
from benchmarks.procstats import cpu_seconds


def curl(server: Server, *args: str) -> str:
    return subprocess.run(
        ["curl", "-sf", "-u", f"{server.admin_user}:{server.admin_password}", *args],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def pulls(server: Server, digest: str, repeat: int, target: Path) -> tuple[list[float], float, int]:
    """Wall seconds of each pull, the server's CPU seconds per pull, and redirects followed."""
    assert server.process is not None
    before = cpu_seconds(server.process.pid)
    times, redirects = [], 0
    for _ in range(repeat):
        out = curl(
            server,
            "-L",
            "-o",
            str(target),
            "-w",
            "%{time_total} %{num_redirects}",
            f"{server.url}/v2/bench/big/blobs/{digest}",
        )
        seconds, followed = out.split()
        times.append(float(seconds))
        redirects = int(followed)
        with target.open("rb") as pulled:
            assert "sha256:" + hashlib.file_digest(pulled, "sha256").hexdigest() == digest
    return times, (cpu_seconds(server.process.pid) - before) / repeat, redirects


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--size", default="256MiB")
    parser.add_argument("--repeat", type=int, default=3)
    parser.add_argument("--rounds", type=int, default=2)
    args = parser.parse_args()
    size = parse_size(args.size)
    root = Path(tempfile.mkdtemp(prefix="cargobay-s3-redirect-"))
    blob = root / "blob"
    with blob.open("wb") as out:
        for start in range(0, size, 1 << 24):
            out.write(os.urandom(min(1 << 24, size - start)))
    with blob.open("rb") as data:
        digest = "sha256:" + hashlib.file_digest(data, "sha256").hexdigest()
    s3: S3Server = start_s3_server()
    try:
        bucket = s3.new_bucket("bench")

        def server(redirect: bool) -> Server:
            storage = s3.url(bucket, "registry", redirect=str(redirect).lower())
            env = {"CARGOBAY_STORAGE_URL": storage, "CARGOBAY_ENCRYPTION": "false", **s3.env}
            return Server(data_dir=root / "data", extra_env={**env, "CARGOBAY_ACCESS_LOG": "false"})

        with server(False) as first:
            first.create_registry("bench")
            url = f"{first.url}/v2/bench/big/blobs/uploads/?digest={digest}"
            curl(first, "-X", "POST", "--data-binary", f"@{blob}", "-o", "/dev/null", url)
        print(f"blob of {size / 2**20:.0f} MiB, {args.repeat} pulls per server, {args.rounds} rounds")
        for _ in range(args.rounds):
            for redirect in (False, True):
                with server(redirect) as running:
                    times, cpu, redirects = pulls(running, digest, args.repeat, root / "pulled")
                label = "redirected" if redirect else "served"
                rate = size / 2**20 / statistics.median(times)
                shown = ", ".join(f"{t:.2f}" for t in times)
                print(f"{label:10}  s: {shown}  median {rate:.0f} MiB/s  server CPU {cpu:.3f} s/pull", end="")
                print(f"  ({redirects} redirect)")
    finally:
        s3.stop()
        subprocess.run(["rm", "-rf", str(root)], check=False)


if __name__ == "__main__":
    main()
