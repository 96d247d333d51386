"""The Go client (``benchmarks/go/blobbench``): built on demand with the machine's Go, run per step.

One client for every server, so a ratio compares servers. It streams from and to files with 256 KiB
socket buffers, verifies the sha256 of everything it pulls, and prints a JSON line per run.
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from dataclasses import dataclass, field
from pathlib import Path

from benchmarks.servers import REPO_ROOT

SOURCE = Path(__file__).resolve().parent / "go" / "blobbench"
BUILD_DIR = REPO_ROOT / ".cache" / "bench"


@dataclass(frozen=True)
class Transfer:
    seconds: float
    bytes: int
    requests: int
    phases: dict[str, float] = field(default_factory=dict)  # seconds per method of a blob push

    @property
    def mb_per_s(self) -> float:
        return self.bytes / self.seconds / 1e6


def build() -> Path:
    """Build (or reuse, when newer than its sources) the client binary; return its path."""
    go = shutil.which("go")
    binary = BUILD_DIR / "blobbench"
    sources = [*SOURCE.glob("*.go"), SOURCE / "go.mod"]
    if binary.exists() and all(binary.stat().st_mtime >= s.stat().st_mtime for s in sources):
        return binary
    if go is None:
        raise RuntimeError("the benchmark client needs Go (`go` not in PATH)")
    BUILD_DIR.mkdir(parents=True, exist_ok=True)
    env = dict(os.environ)
    env.setdefault("GOCACHE", str(REPO_ROOT / ".cache" / "go" / "build"))
    env.setdefault("GOTOOLCHAIN", "local")
    env["GOFLAGS"] = (env.get("GOFLAGS", "") + " -buildvcs=false").strip()
    subprocess.run(
        [go, "build", "-trimpath", "-o", str(binary), "."], cwd=SOURCE, env=env, check=True, timeout=600
    )
    return binary


class BlobClient:
    def __init__(self, binary: Path) -> None:
        self.binary = binary

    def run(
        self, command: str, authorization: str | None, timeout: float = 1800, **flags: object
    ) -> Transfer:
        args = [str(self.binary), command]
        for key, value in flags.items():
            if isinstance(value, bool):
                args.append(f"-{key}={'true' if value else 'false'}")
            else:
                args += [f"-{key}", str(value)]
        env = dict(os.environ)
        env.pop("BLOBBENCH_AUTH", None)
        if authorization:
            env["BLOBBENCH_AUTH"] = authorization
        done = subprocess.run(args, env=env, capture_output=True, text=True, timeout=timeout)
        if done.returncode != 0:
            raise RuntimeError(f"blobbench {command} failed: {done.stderr.strip()[-2000:]}")
        data = json.loads(done.stdout.strip().splitlines()[-1])
        phases = {str(k): float(v) for k, v in (data.get("phases") or {}).items()}
        return Transfer(float(data["seconds"]), int(data["bytes"]), int(data["requests"]), phases)

    def push(
        self, url: str, repo: str, file: Path, digest: str, mode: str, authorization: str | None
    ) -> Transfer:
        return self.run("push", authorization, url=url, repo=repo, file=file, digest=digest, mode=mode)

    def pull(self, url: str, repo: str, digest: str, size: int, authorization: str | None) -> Transfer:
        return self.run("pull", authorization, url=url, repo=repo, digest=digest, size=size)

    def push_image(
        self, url: str, repo: str, image_dir: Path, tag: str, jobs: int, authorization: str | None
    ) -> Transfer:
        return self.run("layers-push", authorization, url=url, repo=repo, dir=image_dir, tag=tag, jobs=jobs)

    def pull_image(self, url: str, repo: str, tag: str, jobs: int, authorization: str | None) -> Transfer:
        return self.run("layers-pull", authorization, url=url, repo=repo, tag=tag, jobs=jobs)
