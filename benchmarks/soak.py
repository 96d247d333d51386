"""A soak: a mixed load for a long time, and the server's memory over that time.

``python -m benchmarks.soak [--minutes 30] [--clients 64]`` starts ``cargobay serve`` with default
settings (encryption on, one worker per CPU), then 64 clients loop over: chunked pushes of small
images, pulls by tag (Bearer JWTs, as docker does), uploads started and abandoned, token requests,
and management list calls. The RSS of the server's process tree is sampled every few seconds; the
table shows it minute by minute, and the summary gives the growth per hour over the second half of
the run (after warm-up), which stays near zero when nothing leaks. Samples go to
``benchmarks/results/soak-<UTC time>.json``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import json
import random
import tempfile
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

import httpx

from benchmarks.procstats import descendants, rss_kib
from benchmarks.servers import ADMIN_PASSWORD, ADMIN_USER, REGISTRY, CargobayServer

RESULTS = Path(__file__).resolve().parent / "results"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
REPOSITORIES = [f"{REGISTRY}/soak/app{i}" for i in range(8)]


def sha256(data: bytes) -> str:
    return "sha256:" + hashlib.sha256(data).hexdigest()


@dataclass
class Tally:
    ok: int = 0
    errors: dict[str, int] = field(default_factory=dict)

    def note(self, response: httpx.Response, *expected: int) -> None:
        if response.status_code in expected:
            self.ok += 1
        else:
            key = f"{response.request.method} {response.status_code}"
            self.errors[key] = self.errors.get(key, 0) + 1


class Load:
    """The mix of operations one client loops over."""

    def __init__(self, server: CargobayServer, rng: random.Random) -> None:
        self.server = server
        self.rng = rng
        self.layers = [rng.randbytes(128 * 1024) for _ in range(16)]
        self.config = json.dumps({"architecture": "amd64", "os": "linux"}).encode()
        self.tally = Tally()
        self.basic = (ADMIN_USER, ADMIN_PASSWORD)

    async def run(self, client: httpx.AsyncClient, deadline: float) -> None:
        bearer: dict[str, str] = {}
        while time.monotonic() < deadline:
            kind = self.rng.random()
            repo = self.rng.choice(REPOSITORIES)
            try:
                if kind < 0.35:
                    await self.push(client, repo)
                elif kind < 0.65:
                    bearer = bearer or await self.jwt(client)
                    await self.pull(client, repo, bearer)
                elif kind < 0.75:
                    await self.abandon(client, repo)
                elif kind < 0.85:
                    bearer = await self.jwt(client)
                else:
                    await self.manage(client)
            except httpx.HTTPError as exc:
                self.tally.errors[type(exc).__name__] = self.tally.errors.get(type(exc).__name__, 0) + 1

    async def jwt(self, client: httpx.AsyncClient) -> dict[str, str]:
        scope = " ".join(f"repository:{r}:pull,push" for r in REPOSITORIES)
        response = await client.get(
            "/auth/token", params={"service": self.server.host, "scope": scope}, auth=self.basic
        )
        self.tally.note(response, 200)
        return {"Authorization": f"Bearer {response.json()['token']}"} if response.status_code == 200 else {}

    async def push(self, client: httpx.AsyncClient, repo: str) -> None:
        layer = self.rng.choice(self.layers)
        started = await client.post(f"/v2/{repo}/blobs/uploads/", auth=self.basic)
        self.tally.note(started, 202)
        location = started.headers.get("location", "")
        half = len(layer) // 2
        for start, piece in ((0, layer[:half]), (half, layer[half:])):
            patched = await client.patch(
                location,
                content=piece,
                headers={"Content-Range": f"{start}-{start + len(piece) - 1}"},
                auth=self.basic,
            )
            self.tally.note(patched, 202)
            location = patched.headers.get("location", location)
        done = await client.put(location, params={"digest": sha256(layer)}, auth=self.basic)
        self.tally.note(done, 201)
        config = await client.post(
            f"/v2/{repo}/blobs/uploads/",
            params={"digest": sha256(self.config)},
            content=self.config,
            auth=self.basic,
        )
        self.tally.note(config, 201)
        manifest = json.dumps(
            {
                "schemaVersion": 2,
                "mediaType": OCI_MANIFEST,
                "config": {
                    "mediaType": "application/vnd.oci.image.config.v1+json",
                    "digest": sha256(self.config),
                    "size": len(self.config),
                },
                "layers": [
                    {
                        "mediaType": "application/vnd.oci.image.layer.v1.tar",
                        "digest": sha256(layer),
                        "size": len(layer),
                    }
                ],
            }
        ).encode()
        tag = f"t{self.rng.randrange(20)}"
        put = await client.put(
            f"/v2/{repo}/manifests/{tag}",
            content=manifest,
            headers={"Content-Type": OCI_MANIFEST},
            auth=self.basic,
        )
        self.tally.note(put, 201)

    async def pull(self, client: httpx.AsyncClient, repo: str, bearer: dict[str, str]) -> None:
        got = await client.get(
            f"/v2/{repo}/manifests/t{self.rng.randrange(20)}", headers={**bearer, "Accept": OCI_MANIFEST}
        )
        self.tally.note(got, 200, 404)
        if got.status_code == 200:
            digest = got.json()["layers"][0]["digest"]
            blob = await client.get(f"/v2/{repo}/blobs/{digest}", headers=bearer)
            self.tally.note(blob, 200)

    async def abandon(self, client: httpx.AsyncClient, repo: str) -> None:
        started = await client.post(f"/v2/{repo}/blobs/uploads/", auth=self.basic)
        self.tally.note(started, 202)
        piece = self.rng.choice(self.layers)[: 32 * 1024]
        patched = await client.patch(
            started.headers.get("location", ""),
            content=piece,
            headers={"Content-Range": f"0-{len(piece) - 1}"},
            auth=self.basic,
        )
        self.tally.note(patched, 202)

    async def manage(self, client: httpx.AsyncClient) -> None:
        listed = await client.get("/containerregistries/registries", auth=self.basic)
        self.tally.note(listed, 200)
        if listed.status_code == 200 and listed.json()["items"]:
            rid = listed.json()["items"][0]["id"]
            repos = await client.get(f"/containerregistries/registries/{rid}/repositories", auth=self.basic)
            self.tally.note(repos, 200)


def _rss_mib(pid: int) -> float:
    return sum(rss_kib(p) for p in descendants(pid)) / 1024


def _slope_mib_per_hour(samples: list[tuple[float, float]]) -> float:
    """Least-squares growth of RSS over the second half of the run."""
    half = samples[len(samples) // 2 :]
    if len(half) < 2:
        return 0.0
    n = len(half)
    mean_t = sum(t for t, _ in half) / n
    mean_r = sum(r for _, r in half) / n
    var = sum((t - mean_t) ** 2 for t, _ in half)
    if var == 0:
        return 0.0
    return sum((t - mean_t) * (r - mean_r) for t, r in half) / var * 3600


async def soak(
    server: CargobayServer, minutes: float, clients: int, sample_every: float
) -> dict[str, object]:
    deadline = time.monotonic() + minutes * 60
    loads = [Load(server, random.Random(i)) for i in range(clients)]
    samples: list[tuple[float, float]] = []
    began = time.monotonic()

    async def sampler() -> None:
        next_report = 0.0
        while time.monotonic() < deadline:
            elapsed = time.monotonic() - began
            rss = _rss_mib(server.pid)
            samples.append((elapsed, rss))
            if elapsed >= next_report:
                done = sum(load.tally.ok for load in loads)
                print(f"  {elapsed / 60:5.1f} min  RSS {rss:7.1f} MiB  requests {done}", flush=True)
                next_report += 60
            await asyncio.sleep(sample_every)

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    async with httpx.AsyncClient(base_url=server.url, timeout=120, limits=limits) as client:
        await asyncio.gather(sampler(), *(load.run(client, deadline) for load in loads))
    errors: dict[str, int] = {}
    for load in loads:
        for key, count in load.tally.errors.items():
            errors[key] = errors.get(key, 0) + count
    return {
        "minutes": minutes,
        "clients": clients,
        "requests": sum(load.tally.ok for load in loads),
        "errors": errors,
        "rss_mib": samples,
        "rss_start_mib": samples[0][1] if samples else None,
        "rss_max_mib": max((r for _, r in samples), default=None),
        "rss_end_mib": samples[-1][1] if samples else None,
        "growth_mib_per_hour": _slope_mib_per_hour(samples),
    }


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.soak", description=__doc__.splitlines()[0])
    parser.add_argument("--minutes", type=float, default=30)
    parser.add_argument("--clients", type=int, default=64)
    parser.add_argument("--sample-every", type=float, default=5)
    parser.add_argument("--workers", type=int, default=None, help="default: what serve picks (one per CPU)")
    args = parser.parse_args(argv)
    from cargobay.config import default_workers

    workers = args.workers or default_workers()
    with tempfile.TemporaryDirectory(prefix="cargobay-soak-") as work:
        server = CargobayServer(Path(work), workers=workers, encryption=True)
        with server:
            print(
                f"soak: {args.minutes} min, {args.clients} clients, {workers} worker(s), encryption on",
                flush=True,
            )
            result = asyncio.run(soak(server, args.minutes, args.clients, args.sample_every))
    result["workers"] = workers
    RESULTS.mkdir(exist_ok=True)
    stamp = datetime.now(UTC).strftime("%Y%m%dT%H%M%SZ")
    out = RESULTS / f"soak-{stamp}.json"
    out.write_text(json.dumps(result, indent=1))
    print(
        f"RSS start {result['rss_start_mib']:.1f} MiB, max {result['rss_max_mib']:.1f},"
        f" end {result['rss_end_mib']:.1f};"
        f" growth over the second half {result['growth_mib_per_hour']:+.1f} MiB/h;"
        f" {result['requests']} requests, errors {result['errors'] or 'none'}"
    )
    print(f"samples written to {out}")


if __name__ == "__main__":
    main()
