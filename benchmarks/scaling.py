"""``python -m benchmarks.scaling [--sizes 100,1000,10000,50000] [--requests 30] [--only ...]``

How the cost of a request grows with the data it depends on. For each section and size a fresh
``cargobay serve`` (default settings: encryption on, ``--workers 1``, SQLite) gets a data dir made by
``cargobay migrate`` and then bulk-seeded (``benchmarks/seeding.py``). Each endpoint is then sent a
few warm-up requests and a fixed number of sequential requests on one keep-alive connection. The
table shows median and p95 latency, server CPU per request and the ratio largest size / smallest
size. Every sample goes to ``benchmarks/results/scaling-<UTC time>.json``.

Sections (``--only``), and what their rows are:

* ``login``: N registries each hold a token named ``ci`` (token names are unique per registry only).
  Path-style logins (``GET /v2/`` with Basic, ``GET /auth/token`` without scope) with the newest
  ``ci`` token's password, the oldest one's, a wrong password, and a token name used once.
* ``catalog``: the owner's contract holds one registry; another contract holds N registries.
  ``GET /v2/_catalog`` path-style with the Bearer JWT of ``scope=registry:catalog:*`` and with Basic,
  the size of that JWT, and the same for the contract holding the N registries.
* ``lists``: management lists (Basic owner): repositories of a registry with N repositories,
  artifacts of a registry with N manifests, artifacts of a repository with N manifests; first page,
  a deep page (offset N-100, limit 100), and that deep page by the ``next`` link of the page before it
  (a keyset cursor); the tokens of a registry with N tokens (first and deep page) and the owner's
  registries when the contract holds N more (first page, and the last by ``pagination.token``).
* ``tokens``: one registry with N tokens of distinct names; a login without scope with one of them.
* ``flat``: a repository with N manifests and tags, a registry with N tokens: manifest push, GET by
  tag, tag lists, a scoped token request. These are expected to stay flat.
"""

from __future__ import annotations

import argparse
import base64
import datetime
import hashlib
import http.client
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
import urllib.parse
from collections import Counter
from collections.abc import Callable, Iterator
from contextlib import contextmanager, suppress
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from benchmarks import seeding
from benchmarks.procstats import cpu_seconds
from benchmarks.servers import ADMIN_PASSWORD, ADMIN_USER, CargobayServer, basic

SECTIONS = ("login", "catalog", "lists", "tokens", "flat")
DEFAULT_SIZES = (100, 1000, 10_000, 50_000)
RESULTS_DIR = Path(__file__).resolve().parent / "results"
SHARED_MACHINE_NOTE = (
    "numbers come from a shared 2-vCPU machine (client, server and other work on the same cores): "
    "compare sizes within one run, and read the load average recorded in the JSON"
)
TOKEN_PASSWORD = "ci-token-password-0001"
OLDEST_PASSWORD = "ci-oldest-password-0001"
OTHER_PASSWORD = "another-tenants-secret-01"
WRONG_PASSWORD = "not-the-password-0001"
BIG_USER = "big@example.com"
OCI_MANIFEST = "application/vnd.oci.image.manifest.v1+json"
PAGE = 100


# -- options and results ---------------------------------------------------------------------------
@dataclass
class Options:
    sizes: list[int]
    requests: int = 30
    warmup: int = 3
    budget: float = 20.0  # seconds per endpoint; past it, stop once min_requests were timed
    min_requests: int = 5
    sections: tuple[str, ...] = SECTIONS
    workdir: Path | None = None
    keep: bool = False
    log: Callable[[str], None] = field(default=lambda line: print(line, flush=True))


@dataclass
class Measurement:
    section: str
    endpoint: str
    rows: int
    latencies_ms: list[float]
    statuses: dict[str, int]
    cpu_ms_per_request: float | None
    warmup: int
    expected: list[int]
    extra: dict[str, Any] = field(default_factory=dict)

    @property
    def p50(self) -> float:
        return statistics.median(self.latencies_ms)

    @property
    def p95(self) -> float:
        values = self.latencies_ms
        if len(values) < 2:
            return values[0]
        return statistics.quantiles(values, n=20, method="inclusive")[18]

    @property
    def ok(self) -> bool:
        return all(int(code) in self.expected for code in self.statuses)

    def status_text(self) -> str:
        if len(self.statuses) == 1:
            return next(iter(self.statuses))
        return ",".join(f"{code}x{count}" for code, count in sorted(self.statuses.items()))

    def to_json(self) -> dict[str, Any]:
        data = asdict(self)
        data["p50_ms"] = round(self.p50, 3)
        data["p95_ms"] = round(self.p95, 3)
        data["latencies_ms"] = [round(v, 3) for v in self.latencies_ms]
        return data


@dataclass
class Seeded:
    section: str
    rows: int
    seed_seconds: float
    start_seconds: float
    db_bytes: int


@dataclass
class Report:
    meta: dict[str, Any]
    measurements: list[Measurement] = field(default_factory=list)
    seeded: list[Seeded] = field(default_factory=list)

    def ratios(self) -> list[dict[str, Any]]:
        out = []
        for (section, endpoint), by_rows in _grouped(self.measurements).items():
            low, high = min(by_rows), max(by_rows)
            if low == high:
                continue
            a, b = by_rows[low], by_rows[high]
            out.append(
                {
                    "section": section,
                    "endpoint": endpoint,
                    "from_rows": low,
                    "to_rows": high,
                    "p50": _ratio(b.p50, a.p50),
                    "p95": _ratio(b.p95, a.p95),
                    "cpu": _ratio(b.cpu_ms_per_request, a.cpu_ms_per_request),
                }
            )
        return out

    def to_json(self) -> dict[str, Any]:
        return {
            "meta": self.meta,
            "seeded": [asdict(s) for s in self.seeded],
            "measurements": [m.to_json() for m in self.measurements],
            "ratios": self.ratios(),
        }

    def write(self, path: Path) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(), indent=1) + "\n")


def _ratio(high: float | None, low: float | None) -> float | None:
    if high is None or low is None or low <= 0:
        return None
    return round(high / low, 3)


def _grouped(measurements: list[Measurement]) -> dict[tuple[str, str], dict[int, Measurement]]:
    grouped: dict[tuple[str, str], dict[int, Measurement]] = {}
    for m in measurements:
        grouped.setdefault((m.section, m.endpoint), {})[m.rows] = m
    return grouped


# -- the table -------------------------------------------------------------------------------------
SECTION_TITLES = {
    "login": "login: N registries each hold a token named `ci` (path-style, no registry named)",
    "catalog": "catalog: the owner's contract has 1 registry; another contract holds N registries",
    "lists": "management lists (Basic owner, limit 100): N repositories / N manifests",
    "tokens": "token login without scope: one registry with N tokens of distinct names",
    "flat": "expected flat: a repository of N manifests and tags, a registry of N tokens",
}


def _fmt(value: float | None, digits: int = 1) -> str:
    if value is None:
        return "-"
    if abs(value) >= 100:
        return f"{value:.0f}"
    return f"{value:.{digits}f}"


def table(report: Report) -> str:
    sizes = sorted({m.rows for m in report.measurements})
    header = ["endpoint", "", *[f"N={n:,}" for n in sizes]]
    if len(sizes) > 1:
        header.append(f"{sizes[-1]:,}/{sizes[0]:,}")
    blocks: list[tuple[str, list[list[str]]]] = []
    grouped = _grouped(report.measurements)
    for section in SECTIONS:
        rows: list[list[str]] = []
        for (sec, endpoint), by_rows in grouped.items():
            if sec != section:
                continue
            cells = [by_rows.get(n) for n in sizes]
            lines: list[tuple[str, Callable[[Measurement], float | None], bool]] = [
                ("p50 ms", lambda m: m.p50, True),
                ("p95 ms", lambda m: m.p95, True),
                ("CPU ms/req", lambda m: m.cpu_ms_per_request, True),
            ]
            if any(c is not None and "jwt_bytes" in c.extra for c in cells):
                lines.append(("JWT bytes", lambda m: m.extra.get("jwt_bytes"), True))
            for i, (label, get, with_ratio) in enumerate(lines):
                values = [get(c) if c is not None else None for c in cells]
                row = [endpoint if i == 0 else "", label, *[_fmt(v) for v in values]]
                if len(sizes) > 1:
                    ratio = _ratio(values[-1], values[0]) if with_ratio else None
                    row.append(f"{ratio:.2f}x" if ratio is not None else "-")
                rows.append(row)
            if any(c is not None and not c.ok for c in cells) or any(
                c is not None and c.expected != [200] for c in cells
            ):
                statuses = [c.status_text() if c is not None else "-" for c in cells]
                rows.append(["", "HTTP status", *statuses, *([""] if len(sizes) > 1 else [])])
        if rows:
            blocks.append((SECTION_TITLES[section], rows))
    widths = [len(h) for h in header]
    for _title, rows in blocks:
        for row in rows:
            widths = [max(w, len(c)) for w, c in zip(widths, row, strict=True)]
    out = []
    for title, rows in blocks:
        out.append(f"\n== {title}")
        out.append("  ".join(h.ljust(w) for h, w in zip(header, widths, strict=True)).rstrip())
        out.append("  ".join("-" * w for w in widths))
        for row in rows:
            cells = [row[0].ljust(widths[0]), row[1].ljust(widths[1])]
            cells += [c.rjust(w) for c, w in zip(row[2:], widths[2:], strict=True)]
            out.append("  ".join(cells).rstrip())
    return "\n".join(out)


# -- HTTP --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class Req:
    method: str
    path: str
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes | None = None


@dataclass(frozen=True)
class Answer:
    status: int  # 0: the connection failed (reset, closed, refused)
    body: bytes
    headers: dict[str, str]


class Http:
    """One keep-alive connection; a failed request is answered with status 0 and reconnects."""

    def __init__(self, host: str, port: int) -> None:
        self.host = host
        self.port = port
        self.conn = http.client.HTTPConnection(host, port, timeout=300)

    def reconnect(self) -> None:
        self.conn.close()
        self.conn = http.client.HTTPConnection(self.host, self.port, timeout=300)
        self.conn.connect()

    def send(self, req: Req) -> Answer:
        try:
            self.conn.request(req.method, req.path, body=req.body, headers=req.headers)
            response = self.conn.getresponse()
            body = response.read()
        except (http.client.HTTPException, OSError) as exc:
            self.reconnect_quietly()
            return Answer(0, repr(exc).encode(), {})
        if response.will_close:
            self.reconnect_quietly()
        return Answer(response.status, body, {k.lower(): v for k, v in response.getheaders()})

    def reconnect_quietly(self) -> None:
        with suppress(OSError):
            self.reconnect()

    def close(self) -> None:
        self.conn.close()


class Target:
    """A running server, the connection to it, and the measuring loop."""

    def __init__(self, server: CargobayServer, options: Options, section: str, rows: int) -> None:
        self.server = server
        self.options = options
        self.section = section
        self.rows = rows
        self.http = Http("127.0.0.1", server.port)
        self.results: list[Measurement] = []

    def send(self, req: Req) -> Answer:
        return self.http.send(req)

    def token(self, authorization: str, scope: str | None = None) -> str:
        answer = self.send(Req("GET", token_path(self.server.host, scope), {"Authorization": authorization}))
        if answer.status != 200:
            raise RuntimeError(f"token request ({scope}) failed: {answer.status} {answer.body[:300]!r}")
        return str(json.loads(answer.body)["token"])

    def measure(
        self,
        endpoint: str,
        make: Callable[[int], Req],
        expect: tuple[int, ...] = (200,),
        inspect: Callable[[Answer], dict[str, Any]] | None = None,
    ) -> Measurement:
        """Warm-up requests, then up to ``requests`` timed ones (fewer once ``budget`` is spent)."""
        o = self.options
        self.http.reconnect()
        index = 0
        started = time.monotonic()
        warm = 0
        last: Answer | None = None
        while warm < o.warmup and not (warm and time.monotonic() - started > o.budget / 4):
            last = self.send(make(index))
            index += 1
            warm += 1
        latencies: list[float] = []
        statuses: Counter[str] = Counter()
        cpu0 = cpu_seconds(self.server.pid)
        started = time.monotonic()
        while len(latencies) < o.requests:
            if len(latencies) >= o.min_requests and time.monotonic() - started > o.budget:
                break
            req = make(index)
            index += 1
            t0 = time.perf_counter()
            last = self.send(req)
            latencies.append((time.perf_counter() - t0) * 1e3)
            statuses[str(last.status)] += 1
        cpu = cpu_seconds(self.server.pid) - cpu0
        extra = inspect(last) if inspect is not None and last is not None else {}
        if last is not None and last.status not in expect:
            extra["last_error"] = last.body[:300].decode("utf-8", "replace")
        m = Measurement(
            self.section,
            endpoint,
            self.rows,
            latencies,
            dict(statuses),
            cpu * 1e3 / len(latencies),
            warm,
            list(expect),
            extra,
        )
        self.results.append(m)
        flag = "" if m.ok else f"  status {m.status_text()}"
        shown = "".join(f"  {k} {v}" for k, v in extra.items() if k != "last_error")
        o.log(
            f"  N={self.rows:<6} {endpoint:<58} p50 {m.p50:9.2f} ms  p95 {m.p95:9.2f} ms"
            f"  CPU {m.cpu_ms_per_request:8.2f} ms/req  n={len(latencies)}{flag}{shown}"
        )
        return m


def token_path(service: str, scope: str | None = None) -> str:
    query = [("service", service)]
    if scope:
        query.append(("scope", scope))
    return "/auth/token?" + urllib.parse.urlencode(query)


def bearer(token: str) -> dict[str, str]:
    return {"Authorization": f"Bearer {token}"}


def _items(answer: Answer) -> dict[str, Any]:
    try:
        doc = json.loads(answer.body)
    except ValueError:
        return {}
    if isinstance(doc, dict):
        for key in ("items", "repositories", "tags"):
            if isinstance(doc.get(key), list):
                return {key: len(doc[key])}
    return {}


def _jwt_size(answer: Answer) -> dict[str, Any]:
    try:
        token = json.loads(answer.body)["token"]
    except (ValueError, KeyError, TypeError):
        return {}
    return {"jwt_bytes": len(token)}


# -- the sections ------------------------------------------------------------------------------------
def measure_login(t: Target, data: seeding.LoginData) -> None:
    host = t.server.host
    newest = {"Authorization": basic("ci", TOKEN_PASSWORD)}
    oldest = {"Authorization": basic("ci", OLDEST_PASSWORD)}
    wrong = {"Authorization": basic("ci", WRONG_PASSWORD)}
    solo = {"Authorization": basic(data.solo_token, TOKEN_PASSWORD)}
    login = token_path(host)
    t.measure("GET /v2/ as a token whose name is unique", lambda i: Req("GET", "/v2/", solo))
    t.measure("GET /v2/ as ci, the oldest ci token's password", lambda i: Req("GET", "/v2/", oldest))
    t.measure("GET /v2/ as ci, the newest ci token's password", lambda i: Req("GET", "/v2/", newest))
    t.measure("GET /auth/token as ci, the newest ci token's password", lambda i: Req("GET", login, newest))
    t.measure("GET /v2/ as ci, a wrong password", lambda i: Req("GET", "/v2/", wrong), expect=(401,))
    t.measure("GET /auth/token as ci, a wrong password", lambda i: Req("GET", login, wrong), expect=(401,))


def measure_catalog(t: Target, data: seeding.CatalogData) -> None:
    catalog_scope = "registry:catalog:*"
    small = {"Authorization": basic(ADMIN_USER, ADMIN_PASSWORD)}
    big = {"Authorization": basic(data.big_user, ADMIN_PASSWORD)}
    path = token_path(t.server.host, catalog_scope)
    t.measure(
        "GET /auth/token scope=registry:catalog:* (1 registry)",
        lambda i: Req("GET", path, small),
        inspect=_jwt_size,
    )
    jwt = t.token(small["Authorization"], catalog_scope)
    t.measure(
        "GET /v2/_catalog, Bearer (1 registry)",
        lambda i: Req("GET", "/v2/_catalog", bearer(jwt)),
        inspect=_items,
    )
    t.measure(
        "GET /v2/_catalog, Basic (1 registry)", lambda i: Req("GET", "/v2/_catalog", small), inspect=_items
    )
    t.measure(
        "GET /auth/token scope=registry:catalog:* (contract of N)",
        lambda i: Req("GET", path, big),
        inspect=_jwt_size,
    )
    big_jwt = t.token(big["Authorization"], catalog_scope)
    t.measure(
        "GET /v2/_catalog?n=100, Bearer (contract of N)",
        lambda i: Req("GET", "/v2/_catalog?n=100", bearer(big_jwt)),
        inspect=_items,
    )


def measure_lists(t: Target, data: seeding.ListsData) -> None:
    owner = {"Authorization": basic(ADMIN_USER, ADMIN_PASSWORD)}
    deep = max(0, t.rows - PAGE)
    repository = urllib.parse.quote(data.repository, safe="")
    lists = [
        ("repositories", f"registries/{data.registry_id}/repositories", "-lastPush"),
        ("registry artifacts", f"registries/{data.registry_id}/artifacts", "-pullCount"),
        ("registry artifacts", f"registries/{data.registry_id}/artifacts", "-lastPush"),
        (
            "repository artifacts",
            f"registries/{data.deep_registry_id}/repositories/{repository}/artifacts",
            "-lastPush",
        ),
    ]
    for label, resource, order in lists:
        for offset, where in ((0, "first page"), (deep, "deep page")):
            query = urllib.parse.urlencode({"orderBy": order, "offset": offset, "limit": PAGE})
            path = f"/containerregistries/{resource}?{query}"
            t.measure(
                f"{label} ?orderBy={order}, {where}",
                lambda i, path=path: Req("GET", path, owner),
                inspect=_items,
            )
        # The same deep page as a client that follows ``next`` links reaches it (a keyset cursor).
        path = _next_link(t, resource, order, max(0, deep - PAGE), owner)
        t.measure(
            f"{label} ?orderBy={order}, deep page by next link",
            lambda i, path=path: Req("GET", path, owner),
            inspect=_items,
        )

    tokens = f"/containerregistries/registries/{data.registry_id}/tokens"
    for offset, where in ((0, "first page"), (deep, "deep page")):
        path = f"{tokens}?{urllib.parse.urlencode({'offset': str(offset), 'limit': str(PAGE)})}"
        t.measure(f"tokens, {where}", lambda i, path=path: Req("GET", path, owner), inspect=_items)
    t.measure(
        "registries, first page",
        lambda i: Req("GET", f"/containerregistries/registries?limit={PAGE}", owner),
        inspect=_items,
    )
    # the last page: after the name that precedes it (the opaque token is "n:" + that name, base64url)
    before = data.registry_names[max(0, len(data.registry_names) - PAGE - 1)]
    token = base64.urlsafe_b64encode(f"n:{before}".encode()).decode().rstrip("=")
    query = urllib.parse.urlencode({"limit": PAGE, "pagination.token": token})
    last = f"/containerregistries/registries?{query}"
    t.measure("registries, deep page by pagination.token", lambda i: Req("GET", last, owner), inspect=_items)


def _next_link(t: Target, resource: str, order: str, offset: int, headers: dict[str, str]) -> str:
    """The path of the ``next`` link of the page at ``offset`` (that page itself when it is the last)."""
    query = urllib.parse.urlencode({"orderBy": order, "offset": offset, "limit": PAGE})
    path = f"/containerregistries/{resource}?{query}"
    answer = t.send(Req("GET", path, headers))
    if answer.status != 200:
        raise RuntimeError(f"{path}: {answer.status} {answer.body[:300]!r}")
    link = json.loads(answer.body)["_links"].get("next")
    if not link:
        return path
    parts = urllib.parse.urlsplit(link)
    return f"{parts.path}?{parts.query}"


def measure_tokens(t: Target, data: seeding.TokensData) -> None:
    auth = {"Authorization": basic(data.token, TOKEN_PASSWORD)}
    login = token_path(t.server.host)
    scoped = token_path(t.server.host, f"repository:{data.registry}/team/app:pull")
    t.measure("GET /auth/token without scope, newest of N tokens", lambda i: Req("GET", login, auth))
    t.measure("GET /v2/ Basic, newest of N tokens", lambda i: Req("GET", "/v2/", auth))
    t.measure("GET /auth/token scope=repository:...:pull (control)", lambda i: Req("GET", scoped, auth))


def measure_flat(t: Target, data: seeding.FlatData) -> None:
    owner = basic(ADMIN_USER, ADMIN_PASSWORD)
    repo = f"{data.registry}/{data.repository}"
    jwt = t.token(owner, f"repository:{repo}:pull,push")
    config, layer = _push_blobs(t, repo, jwt)
    real = _image_manifest(config, layer, "real")
    answer = t.send(
        Req("PUT", f"/v2/{repo}/manifests/real", {**bearer(jwt), "Content-Type": OCI_MANIFEST}, real)
    )
    if answer.status != 201:
        raise RuntimeError(f"manifest push failed: {answer.status} {answer.body[:300]!r}")

    def push(i: int) -> Req:
        body = _image_manifest(config, layer, f"push-{i}")
        headers = {**bearer(jwt), "Content-Type": OCI_MANIFEST}
        return Req("PUT", f"/v2/{repo}/manifests/push-{i:06d}", headers, body)

    t.measure("PUT manifest (new tag), repository of N tags", push, expect=(201,))
    jwt = t.token(owner, f"repository:{repo}:pull")
    get_headers = {**bearer(jwt), "Accept": OCI_MANIFEST}
    t.measure("GET manifest by tag", lambda i: Req("GET", f"/v2/{repo}/manifests/real", get_headers))
    middle = f"t-{t.rows // 2:06d}"
    for label, query in (
        ("GET tags/list?n=100", "?n=100"),
        ("GET tags/list?n=100&last=<middle tag>", f"?n=100&last={middle}"),
        ("GET tags/list, all N tags (grows by design)", ""),
    ):
        path = f"/v2/{repo}/tags/list{query}"
        t.measure(label, lambda i, path=path: Req("GET", path, bearer(jwt)), inspect=_items)
    auth = {"Authorization": basic(data.token, TOKEN_PASSWORD)}
    scoped = token_path(t.server.host, f"repository:{repo}:pull")
    t.measure("GET /auth/token scope=repository:...:pull, token of N", lambda i: Req("GET", scoped, auth))


def _push_blobs(t: Target, repo: str, jwt: str) -> tuple[tuple[str, int], tuple[str, int]]:
    """A config and a layer, pushed for real (POST, then PUT with the body), so manifests can
    reference them."""
    blobs = []
    for content in (b'{"architecture":"amd64","os":"linux","rootfs":{"type":"layers"}}', os.urandom(4096)):
        digest = "sha256:" + hashlib.sha256(content).hexdigest()
        started = t.send(Req("POST", f"/v2/{repo}/blobs/uploads/", bearer(jwt)))
        location = started.headers.get("location")
        if started.status != 202 or not location:
            raise RuntimeError(f"upload start failed: {started.status} {started.body[:300]!r}")
        parts = urllib.parse.urlsplit(location)
        query = f"{parts.query}&" if parts.query else ""
        done = t.send(
            Req(
                "PUT",
                f"{parts.path}?{query}{urllib.parse.urlencode({'digest': digest})}",
                {**bearer(jwt), "Content-Type": "application/octet-stream"},
                content,
            )
        )
        if done.status != 201:
            raise RuntimeError(f"blob push failed: {done.status} {done.body[:300]!r}")
        blobs.append((digest, len(content)))
    return blobs[0], blobs[1]


def _image_manifest(config: tuple[str, int], layer: tuple[str, int], note: str) -> bytes:
    return json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": OCI_MANIFEST,
            "config": {
                "mediaType": "application/vnd.oci.image.config.v1+json",
                "digest": config[0],
                "size": config[1],
            },
            "layers": [
                {
                    "mediaType": "application/vnd.oci.image.layer.v1.tar+gzip",
                    "digest": layer[0],
                    "size": layer[1],
                }
            ],
            "annotations": {"org.example.bench": note},
        },
        separators=(",", ":"),
    ).encode()


# -- the run -----------------------------------------------------------------------------------------
class ScalingServer(CargobayServer):
    """``cargobay serve`` with default settings (encryption on) on a data dir seeded beforehand."""

    def __init__(self, base: Path) -> None:
        super().__init__(base, workers=1, encryption=True)

    def prepare(self) -> None:
        """Nothing: the data dir is a copy of the template, seeded while no server runs."""


class Scaling:
    def __init__(self, options: Options, workdir: Path, report: Report) -> None:
        self.o = options
        self.workdir = workdir
        self.report = report
        self._template: Path | None = None
        self._hashes: seeding.Hashes | None = None

    def template(self) -> Path:
        """A data dir made by a real ``cargobay migrate``: schema, master key, bootstrap owner."""
        if self._template is None:
            maker = ScalingServer(self.workdir / "template")
            maker.data_dir.mkdir(parents=True, exist_ok=True)
            subprocess.run(
                [maker.cargobay, "migrate"],
                env=maker.environment(),
                check=True,
                capture_output=True,
                timeout=300,
            )
            self._template = maker.data_dir
        return self._template

    def hashes(self) -> seeding.Hashes:
        """Three argon2 hashes for the whole run (every seeded token reuses one of them)."""
        if self._hashes is None:
            from cargobay.auth.passwords import hash_password

            self._hashes = seeding.Hashes(
                hash_password(TOKEN_PASSWORD),
                hash_password(OLDEST_PASSWORD),
                hash_password(OTHER_PASSWORD),
                (TOKEN_PASSWORD, OLDEST_PASSWORD, OTHER_PASSWORD),
            )
        return self._hashes

    def seed(self, section: str, s: seeding.Seeder, n: int) -> Any:
        owner = s.owner()
        if section == "login":
            return seeding.seed_login(s, n, self.hashes())
        if section == "catalog":
            return seeding.seed_catalog(s, n, owner, BIG_USER)
        if section == "lists":
            return seeding.seed_lists(s, n, owner)
        if section == "tokens":
            return seeding.seed_tokens(s, n, owner, self.hashes())
        if section == "flat":
            return seeding.seed_flat(s, n, owner, self.hashes())
        raise ValueError(section)

    @contextmanager
    def server(self, section: str, n: int) -> Iterator[tuple[ScalingServer, Any]]:
        server = ScalingServer(self.workdir / f"{section}-{n}")
        shutil.copytree(self.template(), server.data_dir)
        started = time.monotonic()
        with seeding.Seeder(server.data_dir / "cargobay.db") as s:
            data = self.seed(section, s, n)
        seeded = time.monotonic()
        try:
            server.start(timeout=300)
            ready = time.monotonic()
            db_bytes = (server.data_dir / "cargobay.db").stat().st_size
            self.report.seeded.append(
                Seeded(section, n, round(seeded - started, 2), round(ready - seeded, 2), db_bytes)
            )
            self.o.log(
                f"  N={n:<6} seeded in {seeded - started:.1f} s, server ready in {ready - seeded:.1f} s"
                f" (database {db_bytes / 1e6:.1f} MB)"
            )
            yield server, data
        finally:
            if self.o.keep:
                server.stop()
            else:
                server.remove()

    def run(self) -> None:
        measure = {
            "login": measure_login,
            "catalog": measure_catalog,
            "lists": measure_lists,
            "tokens": measure_tokens,
            "flat": measure_flat,
        }
        for section in self.o.sections:
            self.o.log(f"\n== {SECTION_TITLES[section]}")
            for n in self.o.sizes:
                with self.server(section, n) as (server, data):
                    target = Target(server, self.o, section, n)
                    try:
                        measure[section](target, data)
                    finally:
                        target.http.close()
                        self.report.measurements.extend(target.results)


def _loadavg() -> str:
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "?"


def _git_head() -> str:
    root = Path(__file__).resolve().parents[1]
    try:
        done = subprocess.run(
            ["git", "-C", str(root), "rev-parse", "--short", "HEAD"],
            capture_output=True,
            text=True,
            timeout=30,
        )
        return done.stdout.strip() or "unknown"
    except (OSError, subprocess.SubprocessError):
        return "unknown"


def run(options: Options, output: Path | None = None) -> Report:
    """Measure every chosen section at every size; print the table; write the JSON."""
    started = datetime.datetime.now(datetime.UTC)
    meta: dict[str, Any] = {
        "started": started.isoformat(timespec="seconds"),
        "cargobay_commit": _git_head(),
        "sizes": options.sizes,
        "sections": list(options.sections),
        "requests": options.requests,
        "warmup": options.warmup,
        "budget_seconds": options.budget,
        "min_requests": options.min_requests,
        "server": "cargobay serve --workers 1, default settings (encryption on, SQLite)",
        "cpus": os.cpu_count(),
        "machine": platform.platform(),
        "python": platform.python_version(),
        "loadavg_start": _loadavg(),
        "note": SHARED_MACHINE_NOTE,
    }
    report = Report(meta)
    workdir = options.workdir or Path(tempfile.mkdtemp(prefix="cargobay-scaling-"))
    workdir.mkdir(parents=True, exist_ok=True)
    options.log(
        f"Cargobay scaling benchmark: sizes {', '.join(f'{n:,}' for n in options.sizes)}; "
        f"{options.requests} requests per endpoint after {options.warmup} warm-up "
        f"(at least {options.min_requests} once {options.budget:.0f} s are spent); work dir {workdir}; "
        f"load average {meta['loadavg_start']}\nnote: {SHARED_MACHINE_NOTE}"
    )
    try:
        Scaling(options, workdir, report).run()
    finally:
        if not options.keep and options.workdir is None:
            shutil.rmtree(workdir, ignore_errors=True)
        meta["loadavg_end"] = _loadavg()
        meta["seconds"] = round(time.time() - started.timestamp(), 1)
        path = output or RESULTS_DIR / f"scaling-{started.strftime('%Y%m%dT%H%M%SZ')}.json"
        report.write(path)
    options.log(
        "\n== results: median (p50) and p95 latency, server CPU per request; last column = "
        "largest size / smallest size"
    )
    options.log(table(report))
    options.log(
        "\nnote: server CPU is read from /proc/<pid>/stat in 10 ms ticks, summed over the timed "
        "requests: below ~1 ms per request it is coarse"
    )
    options.log(f"note: {SHARED_MACHINE_NOTE}")
    options.log(f"\nsamples written to {path}")
    return report


# -- command line ------------------------------------------------------------------------------------
def parse_sizes(text: str) -> list[int]:
    try:
        sizes = [int(s.strip().replace("_", "")) for s in text.split(",") if s.strip()]
    except ValueError:
        raise argparse.ArgumentTypeError(f"not a comma list of numbers: {text!r}") from None
    if not sizes or any(n < 2 for n in sizes):
        raise argparse.ArgumentTypeError("sizes must be numbers of at least 2")
    return sorted(set(sizes))


def parse_sections(text: str) -> tuple[str, ...]:
    chosen = {s.strip() for s in text.split(",") if s.strip()}
    unknown = chosen - set(SECTIONS)
    if unknown or not chosen:
        raise argparse.ArgumentTypeError(
            f"unknown section(s) {', '.join(sorted(unknown))}; pick from {SECTIONS}"
        )
    return tuple(s for s in SECTIONS if s in chosen)


def build_parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(
        prog="python -m benchmarks.scaling", description="How request cost grows as data grows."
    )
    p.add_argument(
        "--sizes", type=parse_sizes, default=list(DEFAULT_SIZES), help="rows (default %(default)s)"
    )
    p.add_argument("--requests", type=int, default=30, help="timed requests per endpoint (default 30)")
    p.add_argument("--warmup", type=int, default=3, help="warm-up requests per endpoint (default 3)")
    p.add_argument(
        "--budget",
        type=float,
        default=20.0,
        help="seconds per endpoint; past it an endpoint stops at --min-requests (default 20)",
    )
    p.add_argument("--min-requests", type=int, default=5, help="timed requests at least (default 5)")
    p.add_argument(
        "--only", type=parse_sections, default=SECTIONS, help=f"comma list of {','.join(SECTIONS)}"
    )
    p.add_argument("--workdir", type=Path, default=None, help="where data dirs live (default: a temp dir)")
    p.add_argument("--keep", action="store_true", help="keep the seeded data dirs")
    p.add_argument(
        "--output", type=Path, default=None, help="JSON file (default benchmarks/results/scaling-<time>.json)"
    )
    return p


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    options = Options(
        sizes=args.sizes,
        requests=max(1, args.requests),
        warmup=max(1, args.warmup),
        budget=args.budget,
        min_requests=max(1, min(args.min_requests, args.requests)),
        sections=args.only,
        workdir=args.workdir,
        keep=args.keep,
    )
    run(options, args.output)
    return 0


if __name__ == "__main__":
    sys.exit(main())
