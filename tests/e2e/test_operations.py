"""What an operator sees and relies on: Prometheus metrics across worker processes, one access-log
line per request without secrets, slow clients dropped, TLS probes logged once."""

from __future__ import annotations

import contextlib
import json
import random
import re
import socket
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.authz import make_registry, make_token, repository_scope
from tests.support.images import make_image
from tests.support.mgmt import api, new_contract, unique
from tests.support.server import Server, wait_for
from tests.support.v2 import V2

MANIFEST_ROUTE = "/v2/{name}/manifests/{reference}"


def _metrics(server: Server) -> dict[str, float]:
    """Every sample of /metrics as ``name{labels}`` -> value (labels in the order they are printed)."""
    text = httpx.get(f"{server.url}/metrics").text
    samples = {}
    for line in text.splitlines():
        if line and not line.startswith("#"):
            name, _, value = line.rpartition(" ")
            samples[name] = float(value)
    return samples


def _sample(samples: dict[str, float], name: str, **labels: str) -> float:
    """The value of the sample of ``name`` whose labels include ``labels`` (0 when absent)."""
    for key, value in samples.items():
        base, _, rest = key.partition("{")
        if base != name:
            continue
        found = dict(re.findall(r'(\w+)="([^"]*)"', rest))
        if all(found.get(k) == v for k, v in labels.items()):
            return value
    return 0.0


@pytest.fixture(scope="module")
def two_workers(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Server]:
    base: Path = tmp_path_factory.mktemp("operations")
    env = {
        "CARGOBAY_LOG_LEVEL": "info",
        "CARGOBAY_LOG_FORMAT": "json",
        "CARGOBAY_UPLOAD_EXPIRY_SECONDS": "4",  # uploads.expire runs every second: job metrics move
        "CARGOBAY_HEAD_TIMEOUT_SECONDS": "1",
    }
    with Server(data_dir=base / "data", workers=2, extra_env=env) as server:
        yield server


def test_metrics_add_up_the_traffic_of_every_worker_process(two_workers: Server) -> None:
    server = two_workers
    server.create_registry("metrics")
    image = make_image(random.Random(7))
    with V2(server) as client:
        client.push_image("metrics/team/app", image, "v1")
    before = _metrics(server)
    for _ in range(9):  # a fresh connection each: both processes answer some of them
        response = httpx.get(f"{server.url}/v2/metrics/team/app/manifests/v1", auth=server.auth)
        assert response.status_code == 200
    for auth in (server.auth, server.auth, (server.admin_user, "wrong")):
        httpx.get(f"{server.url}/auth/token", params={"scope": "repository:metrics/team/app:pull"}, auth=auth)
    wait_for(lambda: _sample(_metrics(server), "cargobay_job_runs_total", kind="uploads.expire") > 0, 30)
    # Each process writes its request counts at most a second after the request (FLUSH_SECONDS).
    wait_for(
        lambda: (
            _sample(_metrics(server), "cargobay_http_requests_total", route=MANIFEST_ROUTE, status="200")
            >= _sample(before, "cargobay_http_requests_total", route=MANIFEST_ROUTE, status="200") + 9
        ),
        10,
    )
    after = _metrics(server)

    def grew(name: str, **labels: str) -> float:
        return _sample(after, name, **labels) - _sample(before, name, **labels)

    assert grew("cargobay_http_requests_total", route=MANIFEST_ROUTE, method="GET", status="200") == 9
    assert grew("cargobay_http_sent_bytes_total", route=MANIFEST_ROUTE) == 9 * image.manifest.size
    assert grew("cargobay_http_request_duration_seconds_count", route=MANIFEST_ROUTE, method="GET") == 9
    assert grew("cargobay_token_requests_total", outcome="issued") == 2
    assert grew("cargobay_token_requests_total", outcome="refused") == 1
    assert grew("cargobay_token_scopes_total", outcome="granted") == 2
    assert _sample(after, "cargobay_job_runs_total", kind="uploads.expire", outcome="succeeded") > 0
    pushed = _sample(after, "cargobay_http_received_bytes_total", route="/v2/{name}/blobs/uploads/")
    assert pushed == sum(len(blob.data) for blob in image.blobs)
    assert _sample(after, "cargobay_db_pool_size") > 0
    assert "cargobay_db_connections_in_use" in after and "cargobay_upload_sessions" in after


def _log_lines(server: Server) -> list[dict[str, object]]:
    path = server.data_dir.parent / f"server-{server.port}.log"
    lines = []
    for line in path.read_text().splitlines():
        if line.startswith("{"):
            lines.append(json.loads(line))
    return lines


def test_the_access_log_has_a_line_per_push_and_pull_and_no_secret(two_workers: Server) -> None:
    server = two_workers
    owner = new_contract(server, "logs")
    registry = unique("logs")
    with api(server, owner) as http:
        registry_id = make_registry(http, registry)
        token = make_token(http, registry_id, "ci-logs", [repository_scope("*", ["pull", "push"])])
    image = make_image(random.Random(11))
    with V2(server, token.auth) as client:  # Basic with the token
        client.push_image(f"{registry}/team/app", image, "v1")
    issued = httpx.get(
        f"{server.url}/auth/token",
        params={"scope": f"repository:{registry}/team/app:pull"},
        auth=token.auth,
    ).json()["token"]
    bearer = {"Authorization": f"Bearer {issued}"}
    pulled = httpx.get(f"{server.url}/v2/{registry}/team/app/blobs/{image.blobs[0].digest}", headers=bearer)
    assert pulled.status_code == 200
    time.sleep(0.5)
    lines = [line for line in _log_lines(server) if line.get("event") == "request"]
    push = [
        line
        for line in lines
        if line["route"] == MANIFEST_ROUTE and line["method"] == "PUT" and line["registry"] == registry
    ]
    assert len(push) == 1 and push[0]["status"] == 201
    assert push[0]["principal"] == "token" and push[0]["name"] == "ci-logs"
    assert push[0]["bytes_in"] == image.manifest.size and push[0]["client"] == "127.0.0.1"
    pull = [
        line
        for line in lines
        if line["route"] == "/v2/{name}/blobs/{digest}" and line["registry"] == registry
    ]
    assert len(pull) == 1 and pull[0]["status"] == 200 and pull[0]["principal"] == "jwt"
    assert pull[0]["bytes_out"] == len(image.blobs[0].data) and float(str(pull[0]["ms"])) > 0
    text = (server.data_dir.parent / f"server-{server.port}.log").read_text()
    for secret in (token.password, issued, issued.split(".")[2], owner.password):
        assert secret not in text


def test_a_client_that_never_finishes_its_request_head_is_dropped(two_workers: Server) -> None:
    """Slowloris: connections sending a header line now and then are closed once the head deadline
    (1 s here) passes, while other clients are served all along."""
    server = two_workers
    slow = []
    for _ in range(40):
        sock = socket.create_connection(("127.0.0.1", server.port))
        sock.sendall(b"GET /v2/ HTTP/1.1\r\nHost: x\r\n")
        slow.append(sock)
    began = time.monotonic()
    closed = 0
    while time.monotonic() - began < 5 and closed < len(slow):
        assert httpx.get(f"{server.url}/healthz", timeout=2).status_code == 200
        closed = 0
        for sock in slow:
            try:
                sock.sendall(b"X-Slow: 1\r\n")
                sock.settimeout(0.01)
                closed += sock.recv(1) == b""
            except (TimeoutError, BlockingIOError):
                pass
            except OSError:
                closed += 1
        time.sleep(0.2)
    for sock in slow:
        sock.close()
    assert closed == len(slow), f"{closed} of {len(slow)} slow connections were dropped"
    wait_for(lambda: any(line.get("event") == "slow_clients_dropped" for line in _log_lines(server)), 15)


def test_tls_probes_on_the_plain_port_are_explained_once_per_process(tmp_path: Path) -> None:
    hello = bytes.fromhex("16030100b5010000b10303") + bytes(32) + b"\x00\x00\x02\x00\x2f\x01\x00"
    env = {"CARGOBAY_LOG_LEVEL": "info"}
    with Server(data_dir=tmp_path / "data", extra_env=env) as server:
        for _ in range(5):
            with socket.create_connection(("127.0.0.1", server.port)) as sock:
                sock.sendall(hello)
                sock.settimeout(2)
                with contextlib.suppress(TimeoutError):
                    sock.recv(1024)
        time.sleep(0.5)
        log = server.log_tail(200)
    assert log.count("invalid HTTP request received") == 1, log
    assert "try HTTPS first" in log and "Invalid HTTP request received." not in log


def test_connections_beyond_the_cap_are_answered_503_not_queued(tmp_path: Path) -> None:
    env = {"CARGOBAY_MAX_CONNECTIONS": "16", "CARGOBAY_HEAD_TIMEOUT_SECONDS": "30"}
    with Server(data_dir=tmp_path / "data", extra_env=env) as server:
        idle = [socket.create_connection(("127.0.0.1", server.port)) for _ in range(20)]
        try:
            time.sleep(0.3)
            with socket.create_connection(("127.0.0.1", server.port)) as sock:
                sock.sendall(b"GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
                sock.settimeout(10)
                assert sock.recv(64).startswith(b"HTTP/1.1 503")
        finally:
            for sock in idle:
                sock.close()
        wait_for(lambda: httpx.get(f"{server.url}/healthz").status_code == 200, 10, "the cap to free up")
