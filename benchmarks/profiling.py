"""Where a Cargobay server spends its time under benchmark load, sampled with py-spy.

    .venv/bin/pip install py-spy
    .venv/bin/python -m benchmarks.profiling get  [--seconds 15] [--workers 1]
    .venv/bin/python -m benchmarks.profiling push [--size 1GiB] [--mode stream|put|post]
    .venv/bin/python -m benchmarks.profiling pull [--size 1GiB] [--encryption]
    .venv/bin/python -m benchmarks.profiling layers [--layers 200]   (image pushed again and again)

Starts Cargobay fresh, drives the load with the benchmark's own client (wrk for GET), records
the server with ``py-spy record --format raw --gil`` (the thread holding the GIL; ``--all-threads``
for every non-idle thread), and prints the
hottest functions by self and by inclusive samples, and the share of each thread. The raw
collapsed stacks are kept next to the report (``--out``) for flame graphs
(``flamegraph.pl`` / speedscope).
"""

from __future__ import annotations

import argparse
import collections
import re
import shutil
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

from benchmarks import blobclient, loadgen
from benchmarks.cli import parse_size
from benchmarks.data import OCI_MANIFEST, make_blob, make_image
from benchmarks.servers import REGISTRY, CargobayServer

_FRAME = re.compile(r"^(?P<func>.*?) \((?P<file>[^()]*?)(?::\d+)?\)$")


def _short(frame: str) -> str:
    m = _FRAME.match(frame)
    if m is None:
        return frame
    file = m["file"]
    for marker in ("site-packages/", "src/", "lib/python3"):
        if marker in file:
            file = file.split(marker, 1)[1]
            break
    return f"{m['func']} ({file})"


def _package(frame: str) -> str:
    """``sqlalchemy/orm``, ``uvicorn``, ``cargobay/db``, ``asyncio`` … of a frame's (py-spy short) file."""
    m = _FRAME.match(frame)
    file = m["file"] if m else frame
    for marker in ("site-packages/", "/src/", "lib/python3."):
        if marker in file:
            file = file.split(marker, 1)[1]
            if marker == "lib/python3.":
                file = file.split("/", 1)[-1]
    parts = file.split("/")
    if len(parts) > 2 and parts[0] in ("sqlalchemy", "cargobay", "anyio"):
        return "/".join(parts[:2])
    return parts[0].removesuffix(".py") if parts[0] else "?"


def summarize(raw: str, top: int = 25) -> str:
    self_counts: collections.Counter[str] = collections.Counter()
    packages: collections.Counter[str] = collections.Counter()
    inclusive: collections.Counter[str] = collections.Counter()
    threads: collections.Counter[str] = collections.Counter()
    total = 0
    for line in raw.splitlines():
        stack, _, count_text = line.rpartition(" ")
        if not stack or not count_text.isdigit():
            continue
        count = int(count_text)
        frames = stack.split(";")
        thread, frames = (
            (frames[0], frames[1:]) if frames[0].startswith(("thread ", "process ")) else ("?", frames)
        )
        threads[re.sub(r"\s*\(0x[0-9a-f]+\)", "", thread)] += count
        if not frames:
            continue
        total += count
        self_counts[_short(frames[-1])] += count
        packages[_package(frames[-1])] += count
        for name in {_short(f) for f in frames}:
            inclusive[name] += count
    out = [f"{total} samples"]
    out.append("\nby thread:")
    out += [f"  {100 * c / max(1, total):5.1f}%  {name}" for name, c in threads.most_common(10)]
    out.append("\nself time by package:")
    out += [f"  {100 * c / max(1, total):5.1f}%  {name}" for name, c in packages.most_common(15)]
    out.append("\nself time (top):")
    out += [f"  {100 * c / max(1, total):5.1f}%  {name}" for name, c in self_counts.most_common(top)]
    out.append("\ninclusive time (top):")
    out += [f"  {100 * c / max(1, total):5.1f}%  {name}" for name, c in inclusive.most_common(top + 15)]
    return "\n".join(out)


def record(pid: int, seconds: float, out: Path, gil: bool, rate: int = 200) -> subprocess.Popen[bytes]:
    """py-spy on the server tree; ``gil``: only the thread holding the GIL (= Python CPU time)."""
    spy = shutil.which("py-spy") or str(Path(sys.executable).parent / "py-spy")
    args = [spy, "record", "--pid", str(pid), "--duration", str(int(seconds)), "--rate", str(rate)]
    args += ["--format", "raw", "--threads", "--subprocesses", "--output", str(out)]
    if gil:
        args.append("--gil")
    return subprocess.Popen(
        args,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
    )


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(prog="python -m benchmarks.profiling")
    p.add_argument("load", choices=["get", "push", "pull", "layers"])
    p.add_argument("--seconds", type=float, default=15)
    p.add_argument("--workers", type=int, default=1)
    p.add_argument("--size", type=parse_size, default=1024**3)
    p.add_argument("--mode", choices=["stream", "put", "post"], default="stream")
    p.add_argument("--layers", type=int, default=200)
    p.add_argument("--encryption", action="store_true", help="run the server with encryption at rest on")
    p.add_argument("--out", type=Path, default=Path("benchmarks/results"))
    p.add_argument(
        "--all-threads",
        action="store_true",
        help="sample every non-idle thread (default: only the GIL holder, i.e. where Python CPU goes)",
    )
    args = p.parse_args(argv)
    work = Path(tempfile.mkdtemp(prefix="cargobay-profile-"))
    client = blobclient.BlobClient(blobclient.build())
    args.out.mkdir(parents=True, exist_ok=True)
    raw_path = args.out / f"profile-{args.load}-{time.strftime('%Y%m%dT%H%M%S')}.txt"
    server = CargobayServer(work / "server", workers=args.workers, encryption=args.encryption)
    try:
        with server:
            repo = f"{REGISTRY}/profile"
            if args.load == "get":
                image = make_image(work / "small", 1, 4096, 4096, seed=3)
                auth = server.authorization(repo)
                client.push_image(server.url, repo, image.directory, "latest", 1, auth)
                headers = {"Accept": OCI_MANIFEST, "Host": server.host, "Authorization": auth}
                url = f"{server.url}/v2/{repo}/manifests/latest"
                loadgen.run(url, headers, 2)
                spy = record(server.pid, args.seconds, raw_path, not args.all_threads)
                load = loadgen.run(url, headers, args.seconds + 2)
                print(
                    f"wrk: {load.requests_per_s:.0f} req/s, p50 {load.p50_ms:.1f} ms, non-2xx {load.non_2xx}"
                )
            elif args.load == "layers":
                image = make_image(work / "image", args.layers, 64 * 1024, 1024 * 1024)
                spy = record(server.pid, args.seconds, raw_path, not args.all_threads)
                round_ = 0
                while spy.poll() is None:
                    round_ += 1
                    target = f"{REGISTRY}/profile{round_}"
                    t = client.push_image(
                        server.url, target, image.directory, "v1", 4, server.authorization(target)
                    )
                    print(f"layers push: {t.seconds:.2f} s, {t.requests} requests", flush=True)
            else:
                blob = make_blob(work / "blob.bin", args.size)
                if args.load == "pull":
                    client.push(server.url, repo, blob.path, blob.digest, "put", server.authorization(repo))
                spy = record(server.pid, args.seconds, raw_path, not args.all_threads)
                done = threading.Event()

                def drive() -> None:
                    while not done.is_set():
                        auth = server.authorization(repo)
                        if args.load == "push":
                            t = client.push(server.url, repo, blob.path, blob.digest, args.mode, auth)
                        else:
                            t = client.pull(server.url, repo, blob.digest, blob.size, auth)
                        print(f"{args.load}: {t.mb_per_s:.1f} MB/s", flush=True)

                driver = threading.Thread(target=drive, daemon=True)
                driver.start()
                spy.wait()
                done.set()
                driver.join(timeout=600)
            _, err = spy.communicate(timeout=120)
            if spy.returncode != 0:
                print(err.decode(errors="replace"), file=sys.stderr)
                return 1
    finally:
        shutil.rmtree(work, ignore_errors=True)
    print(summarize(raw_path.read_text()))
    print(f"\ncollapsed stacks: {raw_path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
