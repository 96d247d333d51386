"""Scale-out: three ``cargobay serve`` processes on one PostgreSQL database and one S3 bucket (as behind
a load balancer), plus ``cargobay worker``s. Requests of one push, pull or upload go to different
processes; what one process changes (a tag, a token, an allowlist) binds the others within the stated
bound; a process killed mid-push costs only a retry through another; the conformance suite and crane
pass on one node while the others serve traffic; jobs run in a worker whose death loses none."""

from __future__ import annotations

import hashlib
import itertools
import json
import random
import threading
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from sqlalchemy import select

from cargobay.auth.registry_access import SUBJECT_RECHECK_SECONDS
from cargobay.db.engine import Database
from cargobay.db.models import Job
from cargobay.db.queries.registries import INFO_SECONDS
from cargobay.jobs import queue
from tests.support.authz import make_registry, make_token, repository_scope
from tests.support.clients import ClientEnv
from tests.support.conformance import run_conformance
from tests.support.images import DOCKER_MANIFEST, layout_blobs, sha256, tar_layer
from tests.support.mgmt import api, new_contract, unique
from tests.support.postgres import PostgresServer, to_sqlalchemy
from tests.support.registry_client import OCI_MANIFEST, RegistryClient, digest_of
from tests.support.s3 import S3Server
from tests.support.scaleout import Deployment
from tests.support.server import Server, wait_for

pytestmark = [pytest.mark.slow, pytest.mark.postgres]

REGISTRY = "fleet"
BALANCER = "registry.example.test"  # the Host clients send through a load balancer: a JWT's audience
MIB = 1024 * 1024
_repos = itertools.count(1)


@pytest.fixture(scope="module")
def deployment(
    pg_server: PostgresServer, s3_server: S3Server, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[Deployment]:
    """Three API processes with no in-process jobs, on an empty database (the first one migrates it)."""
    fleet = Deployment(
        tmp_path_factory.mktemp("scaleout"),
        pg_server,
        s3_server,
        pg_server.create_database("scaleout"),
        s3_server.new_bucket("scaleout"),
    )
    try:
        fleet.node()
        fleet.nodes[0].create_registry(REGISTRY)
        fleet.node()
        fleet.node()
        yield fleet
    finally:
        fleet.close()


@pytest.fixture(scope="module")
def nodes(deployment: Deployment) -> list[Server]:
    return deployment.nodes[:3]


@pytest.fixture
def repo() -> str:
    return f"{REGISTRY}/r{next(_repos)}/app"


def _client(node: Server) -> httpx.Client:
    return httpx.Client(base_url=node.url, auth=node.auth, timeout=60)


def _patch(node: Server, location: str, data: bytes, start: int) -> httpx.Response:
    with _client(node) as c:
        return c.patch(
            location,
            content=data,
            headers={
                "Content-Range": f"{start}-{start + len(data) - 1}",
                "Content-Type": "application/octet-stream",
            },
        )


# -- one push, pull or upload across processes --------------------------------------------------


def test_a_chunked_upload_goes_chunk_by_chunk_through_all_three_processes(
    nodes: list[Server], repo: str
) -> None:
    data = random.Random(1).randbytes(2 * 5 * MIB + 123_457)
    cuts = [0, 300_000, 5 * MIB + 11, 5 * MIB + 900_000, 2 * 5 * MIB + 5, len(data)]
    with _client(nodes[0]) as c:
        started = c.post(f"/v2/{repo}/blobs/uploads/")
    assert started.status_code == 202, started.text
    location = started.headers["location"]
    for i, (start, end) in enumerate(itertools.pairwise(cuts)):
        node = nodes[(i + 1) % 3]
        response = _patch(node, location, data[start:end], start)
        assert response.status_code == 202, f"chunk {i} via node {(i + 1) % 3}: {response.text}"
        assert response.headers["range"] == f"0-{end - 1}"
        with _client(nodes[i % 3]) as c:  # any process tells where the upload stands
            assert c.get(location).headers["range"] == f"0-{end - 1}"
    digest = digest_of(data)
    with _client(nodes[2]) as c:
        done = c.put(location, params={"digest": digest})
    assert done.status_code == 201, done.text
    for node in nodes:
        with _client(node) as c:
            pulled = c.get(f"/v2/{repo}/blobs/{digest}")
        assert pulled.status_code == 200 and pulled.content == data


def test_pushed_via_one_pulled_via_another_deleted_via_a_third(nodes: list[Server], repo: str) -> None:
    pusher, puller, deleter = nodes
    layer = random.Random(2).randbytes(300_000)
    pushed = RegistryClient(pusher.url, pusher.auth).push_image(repo, "v1", [layer], {"node": "0"})
    pulling = RegistryClient(puller.url, puller.auth)
    manifest = pulling.get_manifest(repo, "v1")
    assert manifest.status_code == 200 and manifest.headers["docker-content-digest"] == pushed["manifest"]
    assert pulling.get_blob(repo, pushed["layer0"]).content == layer
    assert json.loads(manifest.content)["annotations"] == {"node": "0"}
    with _client(deleter) as c:
        assert c.get(f"/v2/{repo}/tags/list").json()["tags"] == ["v1"]
        assert c.delete(f"/v2/{repo}/manifests/{pushed['manifest']}").status_code == 202
    for node in (pusher, puller):  # no process serves what another deleted
        with _client(node) as c:
            assert c.get(f"/v2/{repo}/manifests/v1").status_code == 404
            assert c.get(f"/v2/{repo}/manifests/{pushed['manifest']}").status_code == 404


def test_a_tag_moved_on_one_process_is_seen_by_the_others_at_once(nodes: list[Server], repo: str) -> None:
    """Tags, manifests, registries and catalogs are read from the database on every request: there is
    no per-process cache of them to go stale."""
    first = RegistryClient(nodes[0].url, nodes[0].auth).push_image(repo, "stable", [b"one" * 1000], {})
    for node in nodes:
        assert (
            RegistryClient(node.url, node.auth).get_manifest(repo, "stable").headers["docker-content-digest"]
            == first["manifest"]
        )
    second = RegistryClient(nodes[1].url, nodes[1].auth).push_image(repo, "stable", [b"two" * 1000], {})
    assert second["manifest"] != first["manifest"]
    for node in (nodes[0], nodes[2]):
        answer = RegistryClient(node.url, node.auth).get_manifest(repo, "stable")
        assert answer.headers["docker-content-digest"] == second["manifest"]
        with _client(node) as c:
            assert f"{repo}" in c.get("/v2/_catalog", params={"n": 1000}).json()["repositories"]


# -- access changed on one process binds the others ----------------------------------------------


def _tags(node: Server, repo: str, **options: Any) -> httpx.Response:
    return httpx.get(f"{node.url}/v2/{repo}/tags/list", timeout=30, **options)


CHANGES = {  # a change to a registry token, and what its Basic login then gets at once
    "disabled": ({"status": "disabled"}, 401),
    "rescoped": ({"scopes": [repository_scope("other/*", ["pull"])]}, 403),
}


@pytest.mark.parametrize("change", sorted(CHANGES))
def test_a_token_changed_on_one_process_is_refused_by_the_others_within_a_second(
    nodes: list[Server], change: str
) -> None:
    """Disabled, or its scopes changed: Basic logins see it at once, a JWT issued before within
    SUBJECT_RECHECK_SECONDS (plus a request's time on a busy machine)."""
    body, basic_status = CHANGES[change]
    owner = new_contract(nodes[0], "scaleout")
    name = unique("tokens")
    with api(nodes[0], owner) as http:
        registry_id = make_registry(http, name)
        token = make_token(http, registry_id, unique("tok"), [repository_scope("team/*", ["pull", "push"])])
    repo = f"{name}/team/app"
    RegistryClient(nodes[0].url, owner.auth).push_image(repo, "v1", [b"layer" * 100], {})
    scope = f"repository:{repo}:pull"
    issued = httpx.get(
        f"{nodes[1].url}/auth/token",
        params={"service": BALANCER, "scope": scope},
        headers={"Host": BALANCER},
        auth=token.auth,
    )
    assert issued.status_code == 200, issued.text
    bearer = {"Authorization": f"Bearer {issued.json()['token']}", "Host": BALANCER}
    for node in nodes:  # every process takes the JWT another signed, and the token's Basic login
        assert _tags(node, repo, headers=bearer).status_code == 200
        assert _tags(node, repo, auth=token.auth).status_code == 200

    with api(nodes[0], owner) as http:
        r = http.patch(f"/registries/{registry_id}/tokens/{token.id}", json=body)
    assert r.status_code == 200, r.text
    changed = time.monotonic()
    for node in nodes[1:]:
        assert _tags(node, repo, auth=token.auth).status_code == basic_status  # Basic: at once
    late: dict[int, float] = {}
    pending = {1, 2}
    while pending:
        for i in sorted(pending):
            if _tags(nodes[i], repo, headers=bearer).status_code == 401:
                late[i] = time.monotonic() - changed
                pending.discard(i)
        assert time.monotonic() - changed < SUBJECT_RECHECK_SECONDS + 0.5, f"still served after {late}"
        time.sleep(0.02)
    assert max(late.values()) < SUBJECT_RECHECK_SECONDS + 0.5
    again = httpx.get(
        f"{nodes[2].url}/auth/token",
        params={"service": BALANCER, "scope": scope},
        headers={"Host": BALANCER},
        auth=token.auth,
    )
    if change == "disabled":
        assert again.status_code == 401
    else:  # a new JWT grants what the token's scopes allow now: nothing in team/
        assert again.status_code == 200 and again.json()["token"] != issued.json()["token"]
        renewed = {"Authorization": f"Bearer {again.json()['token']}", "Host": BALANCER}
        assert _tags(nodes[0], repo, headers=renewed).status_code == 401


def test_an_allowlist_set_on_one_process_binds_the_others_within_a_second(nodes: list[Server]) -> None:
    """Each process remembers a registry's allowlist for at most INFO_SECONDS (plus a request's time
    on a busy machine); the process that made the change applies it at once."""
    owner = new_contract(nodes[0], "allow")
    name = unique("allow")
    with api(nodes[0], owner) as http:
        registry_id = make_registry(http, name)
    repo = f"{name}/team/app"
    RegistryClient(nodes[1].url, owner.auth).push_image(repo, "v1", [b"x" * 100], {})
    assert _tags(nodes[2], repo, auth=owner.auth).status_code == 200
    with api(nodes[0], owner) as http:
        r = http.patch(f"/registries/{registry_id}", json={"apiSubnetAllowList": ["203.0.113.0/24"]})
    assert r.status_code == 200, r.text
    changed = time.monotonic()
    assert _tags(nodes[0], repo, auth=owner.auth).status_code == 403
    pending = {1, 2}
    while pending:
        pending = {i for i in pending if _tags(nodes[i], repo, auth=owner.auth).status_code != 403}
        assert time.monotonic() - changed < INFO_SECONDS + 0.5, f"nodes {pending} still served"
        time.sleep(0.02)
    for node in nodes[1:]:
        assert _tags(node, repo, auth=owner.auth).status_code == 403
        # a load balancer's X-Forwarded-For is believed (CARGOBAY_TRUSTED_PROXIES)
        forwarded = _tags(node, repo, auth=owner.auth, headers={"X-Forwarded-For": "203.0.113.9"})
        assert forwarded.status_code == 200


# -- a process killed mid-push ------------------------------------------------------------------


def test_a_push_cut_by_a_killed_process_is_resumed_through_another(
    deployment: Deployment, nodes: list[Server], repo: str
) -> None:
    victim = deployment.node()
    data = random.Random(3).randbytes(19 * MIB + 777)
    first_end, cut_end = 6 * MIB, 13 * MIB
    with _client(victim) as c:
        started = c.post(f"/v2/{repo}/blobs/uploads/")
    assert started.status_code == 202, started.text
    location = started.headers["location"]
    assert _patch(victim, location, data[:first_end], 0).status_code == 202

    sent, release = threading.Event(), threading.Event()
    outcome: list[object] = []

    def body() -> Iterator[bytes]:
        yield data[first_end : first_end + 6 * MIB]  # more than a part: the victim may upload one
        sent.set()
        release.wait(30)
        yield data[first_end + 6 * MIB : cut_end]

    def cut_patch() -> None:
        try:
            with _client(victim) as c:
                outcome.append(
                    c.patch(location, content=body(), headers={"Content-Type": "application/octet-stream"})
                )
        except httpx.HTTPError as exc:
            outcome.append(exc)

    pushing = threading.Thread(target=cut_patch)
    pushing.start()
    assert sent.wait(30)
    time.sleep(0.5)  # let the victim take the bytes in
    victim.kill()
    release.set()
    pushing.join(30)
    assert outcome and isinstance(outcome[0], httpx.HTTPError), outcome

    # The client retries through another process: it learns where the upload stands and goes on.
    with _client(nodes[1]) as c:
        status = c.get(location)
    assert status.status_code == 204, status.text
    recorded = int(status.headers["range"].split("-")[1]) + 1
    assert recorded == first_end  # the cut request never happened
    assert _patch(nodes[1], location, data[recorded:cut_end], recorded).status_code == 202
    digest = digest_of(data)
    with _client(nodes[2]) as c:
        done = c.put(
            location,
            params={"digest": digest},
            content=data[cut_end:],
            headers={
                "Content-Range": f"{cut_end}-{len(data) - 1}",
                "Content-Type": "application/octet-stream",
            },
        )
    assert done.status_code == 201, done.text
    config = json.dumps({"architecture": "amd64", "os": "linux", "rootfs": {"type": "layers"}}).encode()
    pushing_client = RegistryClient(nodes[0].url, nodes[0].auth)
    manifest = {
        "schemaVersion": 2,
        "mediaType": "application/vnd.oci.image.manifest.v1+json",
        "config": {
            "mediaType": "application/vnd.oci.image.config.v1+json",
            "digest": pushing_client.push_blob(repo, config),
            "size": len(config),
        },
        "layers": [
            {"mediaType": "application/vnd.oci.image.layer.v1.tar", "digest": digest, "size": len(data)}
        ],
    }
    pushing_client.push_manifest(repo, "v1", manifest)
    pulled = RegistryClient(nodes[2].url, nodes[2].auth).get_blob(repo, digest)
    assert pulled.status_code == 200 and hashlib.sha256(pulled.content).hexdigest() == digest.split(":")[1]


# -- real clients on one node while the others serve traffic -------------------------------------


class Traffic:
    """Pushes through one process and pulls through another, in a loop, until stopped."""

    def __init__(self, pusher: Server, puller: Server) -> None:
        self.pusher, self.puller = (
            RegistryClient(pusher.url, pusher.auth),
            RegistryClient(puller.url, puller.auth),
        )
        self.rounds = 0
        self.errors: list[str] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def __enter__(self) -> Traffic:
        self._thread.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self._stop.set()
        self._thread.join(60)

    def _run(self) -> None:
        rng = random.Random(4)
        while not self._stop.is_set():
            repo = f"{REGISTRY}/traffic/app"
            layer = rng.randbytes(200_000)
            try:
                pushed = self.pusher.push_image(repo, f"t{self.rounds}", [layer], {})
                got = self.puller.get_manifest(repo, f"t{self.rounds}")
                if got.headers.get("docker-content-digest") != pushed["manifest"]:
                    self.errors.append(f"round {self.rounds}: manifest {got.status_code}")
                if self.puller.get_blob(repo, pushed["layer0"]).content != layer:
                    self.errors.append(f"round {self.rounds}: layer differs")
            except (AssertionError, httpx.HTTPError) as exc:
                self.errors.append(f"round {self.rounds}: {exc!r}"[:300])
            self.rounds += 1
            self._stop.wait(0.2)


def test_the_conformance_suite_passes_on_one_node_while_the_others_serve_traffic(
    nodes: list[Server], tmp_path: Path
) -> None:
    with Traffic(nodes[1], nodes[2]) as traffic:
        run_conformance(nodes[0], f"{REGISTRY}/conformance", "dev", tmp_path)
    assert traffic.rounds > 0 and traffic.errors == []


def test_crane_pushes_and_pulls_on_one_node_while_the_others_serve_traffic(
    nodes: list[Server], clients: ClientEnv, tmp_path: Path
) -> None:
    node = nodes[2]
    clients.run("crane", "auth", "login", node.host, "-u", node.admin_user, "-p", node.admin_password)
    ref = f"{node.host}/{REGISTRY}/crane/app"
    rng = random.Random(5)
    small, large = tmp_path / "small.tar.gz", tmp_path / "large.tar.gz"
    small.write_bytes(tar_layer(rng, [1000, 30_000]))
    large.write_bytes(tar_layer(rng, [11 * MIB]))  # parts of 5 MiB
    with Traffic(nodes[0], nodes[1]) as traffic:
        clients.run("crane", "--insecure", "append", "-f", str(small), "-t", f"{ref}:v1")
        clients.run("crane", "--insecure", "append", "-b", f"{ref}:v1", "-f", str(large), "-t", f"{ref}:v2")
        layout = tmp_path / "layout"
        clients.run("crane", "--insecure", "pull", "--format", "oci", f"{ref}:v2", str(layout))
        assert clients.run("crane", "--insecure", "ls", ref).stdout.split() == ["v1", "v2"]
        clients.run("crane", "--insecure", "copy", f"{ref}:v2", f"{ref}-copy:v2")
        digest = clients.run("crane", "--insecure", "digest", f"{ref}:v1").stdout.strip()
        clients.run("crane", "--insecure", "delete", f"{ref}@{digest}")
    blobs = layout_blobs(layout)
    assert blobs[sha256(large.read_bytes())] == large.read_bytes()
    assert blobs[sha256(small.read_bytes())] == small.read_bytes()
    # what crane pushed via one node is there on the others
    v2_digest = clients.run("crane", "--insecure", "digest", f"{ref}:v2").stdout.strip()
    with _client(nodes[0]) as c:
        accept = {"Accept": f"{DOCKER_MANIFEST}, {OCI_MANIFEST}"}
        copied = c.get(f"/v2/{REGISTRY}/crane/app-copy/manifests/v2", headers=accept)
        assert copied.status_code == 200 and copied.headers["docker-content-digest"] == v2_digest
        assert c.get(f"/v2/{REGISTRY}/crane/app/manifests/v1", headers=accept).status_code == 404
    assert traffic.rounds > 0 and traffic.errors == []


# -- jobs: in a worker, or in-process ------------------------------------------------------------


def _open_upload(node: Server, repo: str) -> str:
    with _client(node) as c:
        started = c.post(f"/v2/{repo}/blobs/uploads/")
        assert started.status_code == 202, started.text
        location = started.headers["location"]
        assert _patch(node, location, b"x" * 1000, 0).status_code == 202
    return location


def _upload_status(node: Server, location: str) -> int:
    with _client(node) as c:
        return c.get(location).status_code


def test_serve_without_jobs_leaves_them_to_workers_whose_death_loses_none(
    deployment: Deployment, nodes: list[Server], repo: str, tmp_path: Path
) -> None:
    location = _open_upload(nodes[0], repo)
    time.sleep(2.5)  # far past a second: the API processes run no jobs, so nothing expires it
    assert _upload_status(nodes[1], location) == 204

    expiring = deployment.worker(upload_expiry_seconds="1", job_poll_seconds="0.2")
    wait_for(
        lambda: _upload_status(nodes[2], location) == 404, timeout=30, what="upload expiry by the worker"
    )
    expiring.stop()
    assert "uploads_expired" in expiring.output()

    # A job whose worker is killed mid-run is taken over by another once its lease ends.
    db = Database(to_sqlalchemy(deployment.database_url))
    try:
        marker = tmp_path / "marker"
        job_id = db.write_sync(
            lambda s: queue.enqueue(s, "test.sleep", {"seconds": 2, "marker": str(marker)})
        ).id
        lines = lambda: marker.read_text().splitlines() if marker.exists() else []  # noqa: E731
        doomed = deployment.worker("tests.support.job_worker", job_lease_seconds="2", job_poll_seconds="0.2")
        wait_for(lambda: bool(lines()), what="job start")
        doomed.kill()
        survivor = deployment.worker(
            "tests.support.job_worker", job_lease_seconds="2", job_poll_seconds="0.2"
        )

        def job() -> Job:
            found = db.read_sync(lambda s: s.execute(select(Job).where(Job.id == job_id)).scalar_one())
            assert isinstance(found, Job)
            return found

        wait_for(lambda: job().status == "succeeded", timeout=60, what="job taken over")
        row = job()
        assert row.attempts == 2 and row.result == {"pid": survivor.pid}
        assert lines() == [f"start {doomed.pid}", f"start {survivor.pid}", f"done {survivor.pid}"]
        survivor.stop()
    finally:
        db.dispose()


def test_serve_with_in_process_jobs_runs_them_itself(
    deployment: Deployment, nodes: list[Server], repo: str
) -> None:
    assert all(w.process.poll() is not None for w in deployment.workers)  # no worker runs now
    jobs_node = deployment.node(in_process_jobs="true", upload_expiry_seconds="1", job_poll_seconds="0.2")
    try:
        location = _open_upload(nodes[1], repo)
        wait_for(
            lambda: _upload_status(nodes[0], location) == 404, timeout=30, what="in-process upload expiry"
        )
    finally:
        jobs_node.stop()
