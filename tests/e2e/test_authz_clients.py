"""Real clients with a registry token's username and password (issue #3): skopeo and crane push
and pull within the token's scope, a pull-only token cannot push, and a token scoped to ``team/*``
cannot read ``other/app``. Both clients take the Bearer flow through /auth/token."""

from __future__ import annotations

import json
import random
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from tests.support.authz import TokenCreds, make_registry, make_token, repository_scope
from tests.support.clients import ClientEnv
from tests.support.images import layout_blobs, make_image, sha256, tar_layer, write_oci_layout
from tests.support.mgmt import Login, api, new_contract, push_image, unique
from tests.support.server import Server

pytestmark = pytest.mark.slow
TLS = "--tls-verify=false"
REFUSED = ("unauthorized", "denied", "authentication required")


@dataclass(frozen=True)
class Scoped:
    server: Server
    owner: Login
    registry: str
    pusher: TokenCreds  # pull and push on team/*
    puller: TokenCreds  # pull on team/*

    def ref(self, repository: str, tag: str) -> str:
        return f"{self.server.host}/{self.registry}/{repository}:{tag}"

    def tags(self, repository: str) -> list[str]:
        url = f"{self.server.url}/v2/{self.registry}/{repository}/tags/list"
        r = httpx.get(url, auth=self.owner.auth)
        return list(r.json()["tags"]) if r.status_code == 200 else []


@pytest.fixture(scope="module")
def scoped(server: Server) -> Scoped:
    """A registry of its own contract holding team/app and other/app, and two tokens scoped to
    ``team/*``."""
    owner = new_contract(server, "authz-clients")
    name = unique("clients")
    with api(server, owner) as http:
        registry_id = make_registry(http, name)
        pusher = make_token(http, registry_id, "pusher", [repository_scope("team/*", ["pull", "push"])])
        puller = make_token(http, registry_id, "puller", [repository_scope("team/*", ["pull"])])
    for repository in ("team/app", "other/app"):
        push_image(server, owner.auth, name, repository, "v1")
    return Scoped(server, owner, name, pusher, puller)


def _creds(token: TokenCreds) -> str:
    return f"{token.username}:{token.password}"


def _skopeo(clients: ClientEnv, *args: str, check: bool = True) -> tuple[int, str]:
    result = clients.run("skopeo", "--insecure-policy", *args, check=check)
    return result.returncode, result.stdout + result.stderr


def _crane(clients: ClientEnv, *args: str, check: bool = True) -> tuple[int, str]:
    result = clients.run("crane", "--insecure", *args, check=check)
    return result.returncode, result.stdout + result.stderr


def _crane_login(clients: ClientEnv, scoped: Scoped, token: TokenCreds) -> None:
    host = scoped.server.host
    clients.run("crane", "auth", "login", host, "-u", token.username, "-p", token.password)


def _assert_refused(returncode: int, output: str) -> None:
    assert returncode != 0, output
    assert any(word in output.lower() for word in REFUSED), output[-2000:]


# -- skopeo ---------------------------------------------------------------------------------------


def _copy(clients: ClientEnv, token: TokenCreds, source: str, destination: str) -> tuple[int, str]:
    side = "--src" if source.startswith("docker://") else "--dest"
    args = ["copy", "--retry-times", "0", f"{side}-creds", _creds(token), f"{side}-tls-verify=false"]
    return _skopeo(clients, *args, source, destination, check=False)


def test_skopeo_pushes_and_pulls_with_a_scoped_token(
    scoped: Scoped, clients: ClientEnv, tmp_path: Path, rng: random.Random
) -> None:
    image = make_image(rng, layer_sizes=[1000, 300_000])
    source = write_oci_layout(tmp_path / "source", {"v1": image})
    target = f"docker://{scoped.ref('team/app', 'skopeo')}"
    code, output = _copy(clients, scoped.pusher, f"oci:{source}:v1", target)
    assert code == 0, output
    assert "skopeo" in scoped.tags("team/app")

    back = tmp_path / "back"
    code, output = _copy(clients, scoped.puller, target, f"oci:{back}:v1")
    assert code == 0, output
    assert layout_blobs(back) == layout_blobs(source)


def test_skopeo_with_a_pull_only_token_cannot_push(
    scoped: Scoped, clients: ClientEnv, tmp_path: Path, rng: random.Random
) -> None:
    source = write_oci_layout(tmp_path / "source", {"v1": make_image(rng, layers=1)})
    _assert_refused(
        *_copy(clients, scoped.puller, f"oci:{source}:v1", f"docker://{scoped.ref('team/app', 'pull-only')}")
    )
    assert "pull-only" not in scoped.tags("team/app")


def test_skopeo_with_a_team_glob_token_cannot_read_other_app(scoped: Scoped, clients: ClientEnv) -> None:
    other = f"docker://{scoped.server.host}/{scoped.registry}/other/app"
    for token in (scoped.pusher, scoped.puller):
        creds = ("--creds", _creds(token), TLS)
        _assert_refused(*_skopeo(clients, "inspect", "--raw", *creds, f"{other}:v1", check=False))
        _assert_refused(*_skopeo(clients, "list-tags", *creds, other, check=False))
        # The same token reads team/*.
        team = f"docker://{scoped.server.host}/{scoped.registry}/team/app"
        _, listed = _skopeo(clients, "list-tags", *creds, team)
        assert "v1" in json.loads(listed)["Tags"]
    assert scoped.tags("other/app") == ["v1"]  # the owner's image is there all the same


# -- crane ----------------------------------------------------------------------------------------


def test_crane_pushes_and_pulls_with_a_scoped_token(
    scoped: Scoped, clients: ClientEnv, tmp_path: Path, rng: random.Random
) -> None:
    layer = tmp_path / "layer.tar.gz"
    layer.write_bytes(tar_layer(rng, [2000, 400_000]))
    ref = scoped.ref("team/app", "crane")
    _crane_login(clients, scoped, scoped.pusher)
    pushed = clients.run("crane", "--insecure", "append", "-f", str(layer), "-t", ref).stdout
    digest = pushed.strip().splitlines()[-1].rsplit("@", 1)[1]
    assert "crane" in scoped.tags("team/app")

    _crane_login(clients, scoped, scoped.puller)
    _, manifest = _crane(clients, "manifest", ref)
    assert sha256(manifest.encode()) == digest
    layer_digest = json.loads(manifest)["layers"][0]["digest"]
    assert layer_digest == sha256(layer.read_bytes())
    pulled = clients.output(
        "crane", "--insecure", "blob", f"{scoped.server.host}/{scoped.registry}/team/app@{layer_digest}"
    )
    assert pulled == layer.read_bytes()
    out = tmp_path / "pulled"
    _crane(clients, "pull", "--format", "oci", ref, str(out))
    assert sha256(layer.read_bytes()) in layout_blobs(out)


def test_crane_with_a_pull_only_token_cannot_push(
    scoped: Scoped, clients: ClientEnv, tmp_path: Path, rng: random.Random
) -> None:
    layer = tmp_path / "layer.tar.gz"
    layer.write_bytes(tar_layer(rng, [1000]))
    _crane_login(clients, scoped, scoped.puller)
    code, output = _crane(
        clients, "append", "-f", str(layer), "-t", scoped.ref("team/app", "nope"), check=False
    )
    _assert_refused(code, output)
    assert "nope" not in scoped.tags("team/app")


def test_crane_with_a_team_glob_token_cannot_read_other_app(scoped: Scoped, clients: ClientEnv) -> None:
    for token in (scoped.pusher, scoped.puller):
        _crane_login(clients, scoped, token)
        _assert_refused(*_crane(clients, "manifest", scoped.ref("other/app", "v1"), check=False))
        _assert_refused(
            *_crane(clients, "ls", f"{scoped.server.host}/{scoped.registry}/other/app", check=False)
        )
        # The same login reads team/*.
        _, listed = _crane(clients, "ls", f"{scoped.server.host}/{scoped.registry}/team/app")
        assert "v1" in listed.split()
