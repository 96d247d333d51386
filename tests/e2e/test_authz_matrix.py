"""The authorisation matrix of the registry API (issue #3).

Every /v2/ operation x who asks (registry tokens of each kind of scope, contract users of each role,
credentials that are expired, disabled, deleted or wrong, or valid only for another registry or
contract) x how they ask (Basic on /v2/ itself, or the Docker Bearer flow: challenge, /auth/token,
retry with the JWT) x where from (inside or outside the registry's ``apiSubnetAllowList``).

Each cell is one test, ``<mode>.<who>.<repository>.<operation>``. An allowed cell must do what the
operation does; a denied cell must answer 401/403 with the OCI error body, carry nothing of the
content, and answer exactly alike whether its target exists or not (the existence leak check).

The expected answers (see ``Outcome``):

=================  ===========================================  ==========================================
outcome            Basic on /v2/                                Bearer flow
=================  ===========================================  ==========================================
allowed            the operation's own answer                   the same, with the JWT
unauthenticated    401 UNAUTHORIZED + Bearer challenge          /auth/token: 401 UNAUTHORIZED (Basic realm)
not here           401 UNAUTHORIZED + Bearer challenge          JWT granting nothing; 401 insufficient_scope
insufficient       403 DENIED                                   JWT granting less; 401 insufficient_scope
outside allowlist  403 DENIED (before credentials are read)     403 DENIED; /auth/token 403; a JWT 403
=================  ===========================================  ==========================================

All cells share one server and one set of registries, users and tokens, made once per module: about
1,400 cells in a minute and a half, so the module is marked slow.
"""

from __future__ import annotations

import fnmatch
import itertools
import random
import uuid
from collections.abc import Callable, Iterator, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import Enum
from pathlib import Path
from typing import Any

import httpx
import pytest

from cargobay.auth.jwt_tokens import TokenSigner
from cargobay.domain.scopes import ResourceScope
from tests.support.authz import (
    ALL_ACTIONS,
    assert_denial_carries_no_content,
    denial_shape,
    make_registry,
    make_token,
    parse_challenge,
    registry_scope,
    repository_scope,
    request_token,
    set_token_expiry,
)
from tests.support.images import (
    OCI_EMPTY,
    OCI_INDEX,
    OCI_MANIFEST,
    Content,
    Image,
    canonical,
    make_image,
    sha256,
)
from tests.support.mgmt import Login, add_user, api, new_contract
from tests.support.server import Server
from tests.support.v2 import V2, database

pytestmark = pytest.mark.slow
DOMAIN = "registry.test"
INSIDE, OUTSIDE, SIBLING = "inside", "outside", "sibling"
REPOSITORIES = ("team/app", "other/app")  # targets: inside and outside the token globs `team/*`
KNOWN = ("team/app", "team/base", "other/app", "other/base")  # every repository of `inside`
EVERYTHING = frozenset(ALL_ACTIONS)
PULL = frozenset({"pull"})


# -- who asks ---------------------------------------------------------------------------------------


class State(Enum):
    VALID = "valid"  # credentials of the addressed registry (a token) or of its contract (a user)
    INVALID = "invalid"  # expired, disabled, deleted or a wrong password: refused everywhere
    ELSEWHERE = "elsewhere"  # good credentials, but of another registry or another contract


@dataclass(frozen=True)
class Who:
    id: str
    state: State = State.VALID
    grants: Mapping[str, frozenset[str]] = field(default_factory=dict)  # "team"/"other" -> actions
    catalog: str | None = None  # glob of the repository names it may list, if any
    registry: str = INSIDE  # the registry its requests address
    user: bool = False  # a contract user (no single registry of its own)

    def actions(self, repository: str) -> frozenset[str]:
        return self.grants.get(repository.split("/", 1)[0], frozenset())


TEAM = {"team": EVERYTHING}
WHO = (
    # registry tokens of `inside`, one per kind of scope
    Who("token-no-scope"),
    Who("token-pull-team-glob", grants={"team": PULL}),
    Who("token-push-team-glob", grants={"team": frozenset({"pull", "push"})}),
    Who("token-delete-team-glob", grants={"team": frozenset({"delete"})}),
    Who("token-registry-all", catalog="*"),
    Who("token-registry-team-glob", catalog="team/*"),
    # contract users
    Who("owner", grants={"team": EVERYTHING, "other": EVERYTHING}, catalog="*", user=True),
    Who("admin", grants={"team": EVERYTHING, "other": EVERYTHING}, catalog="*", user=True),
    Who("manage-registry-user", grants={"team": EVERYTHING, "other": EVERYTHING}, catalog="*", user=True),
    Who("plain-user", grants={"team": PULL, "other": PULL}, catalog="*", user=True),
    # credentials that are no good (each would be allowed everything on team/* if it were)
    Who("token-expired", State.INVALID, TEAM),
    Who("token-disabled", State.INVALID, TEAM),
    Who("token-deleted", State.INVALID, TEAM),
    Who("token-wrong-password", State.INVALID, TEAM),
    Who("user-wrong-password", State.INVALID, TEAM, user=True),
    Who("token-of-another-registry", State.ELSEWHERE, TEAM),
    Who("user-of-another-contract", State.ELSEWHERE, TEAM, user=True),
    # asking from outside the allowlist of the registry they address
    Who("outside-owner", grants=TEAM, catalog="*", registry=OUTSIDE, user=True),
    Who("outside-token", grants=TEAM, catalog="*", registry=OUTSIDE),
    Who("outside-wrong-password", State.INVALID, TEAM, registry=OUTSIDE),
)


# -- the shared world -------------------------------------------------------------------------------


@dataclass
class World:
    server: Server
    http: httpx.Client  # no credentials of its own; every request names its own
    owner: V2  # the contract owner's Basic client, for preparing targets
    creds: dict[str, tuple[str, str]]
    registry_ids: dict[str, str]
    images: dict[str, Image]  # by "registry/repository"
    referrers: dict[str, str]  # digest of the referrer of each image, by "registry/repository"
    note: Content  # a blob in every repository (layer of referrers and throw-away manifests)
    bases: dict[str, str]  # digest of the blob of team/base and other/base (mount sources)
    outside_sessions: dict[str, str]  # upload session path per operation, made before the allowlist
    signer: TokenSigner
    counter: Iterator[int] = field(default_factory=itertools.count)

    def host(self, registry: str) -> str:
        return f"{registry}.{DOMAIN}:{self.server.port}"

    def unique(self) -> int:
        return next(self.counter)


def _push_repository(owner: V2, name: str, image: Image, note: Content) -> str:
    """The image tagged v1 plus a referrer of it; returns the referrer's digest."""
    owner.push_image(name, image, "v1")
    owner.push_blob(name, note.data)
    owner.push_blob(name, b"{}")
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.sbom",
        "config": Content(OCI_EMPTY, b"{}").descriptor(),
        "layers": [note.descriptor()],
        "subject": image.manifest.descriptor(),
    }
    referrer = Content(OCI_MANIFEST, canonical(doc))
    owner.push_manifest(name, referrer.digest, referrer.data, OCI_MANIFEST)
    return referrer.digest


def _make_world(server: Server, stack: list[Callable[[], None]]) -> World:
    rng = random.Random("authz-matrix")
    owner = new_contract(server, "authz-owner")
    admin = add_user(server, owner.contract, role="admin")
    manager = add_user(server, owner.contract, role="user", manage_registry=True)
    plain = add_user(server, owner.contract, role="user")
    stranger = Login(server.admin_user, server.admin_password, 0)  # the bootstrap contract's owner
    team_all = [repository_scope("team/*", ALL_ACTIONS)]
    everything = [repository_scope("*", ALL_ACTIONS), registry_scope("*")]
    with api(server, owner) as http:
        ids = {
            INSIDE: make_registry(http, INSIDE, apiSubnetAllowList=["127.0.0.1/32"]),
            OUTSIDE: make_registry(http, OUTSIDE),  # its allowlist is set once it holds content
            SIBLING: make_registry(http, SIBLING),
        }
        inside = ids[INSIDE]
        tokens = {
            "token-no-scope": make_token(http, inside, "no-scope", []),
            "token-pull-team-glob": make_token(
                http, inside, "pull-team", [repository_scope("team/*", ["pull"])]
            ),
            "token-push-team-glob": make_token(
                http, inside, "push-team", [repository_scope("team/*", ["pull", "push"])]
            ),
            "token-delete-team-glob": make_token(
                http, inside, "delete-team", [repository_scope("team/*", ["delete"])]
            ),
            "token-registry-all": make_token(http, inside, "registry-all", [registry_scope("*")]),
            "token-registry-team-glob": make_token(http, inside, "registry-team", [registry_scope("team/*")]),
            "token-expired": make_token(
                http,
                inside,
                "expired",
                team_all,
                expiryDate=(datetime.now(UTC) + timedelta(days=1)).isoformat(),
            ),
            "token-disabled": make_token(http, inside, "disabled", team_all),
            "token-deleted": make_token(http, inside, "deleted", team_all),
            "token-of-another-registry": make_token(http, ids[SIBLING], "sibling-all", everything),
            "outside-token": make_token(http, ids[OUTSIDE], "outside-all", everything),
        }
    creds = {who: token.auth for who, token in tokens.items()}
    creds.update(
        {
            "owner": owner.auth,
            "admin": admin.auth,
            "manage-registry-user": manager.auth,
            "plain-user": plain.auth,
            "token-wrong-password": (tokens["token-push-team-glob"].username, "not-the-password"),
            "user-wrong-password": (owner.email, "not-the-password"),
            "user-of-another-contract": stranger.auth,
            "outside-owner": owner.auth,
            "outside-wrong-password": (tokens["outside-token"].username, "not-the-password"),
        }
    )

    client = V2(server, owner.auth)
    stack.append(client.close)
    note = Content("text/plain", b"a note shared by referrers and throw-away manifests")
    images: dict[str, Image] = {}
    referrers: dict[str, str] = {}
    for registry in (INSIDE, OUTSIDE):
        for repository in REPOSITORIES:
            name = f"{registry}/{repository}"
            images[name] = make_image(rng, layers=1, max_file_size=512)
            referrers[name] = _push_repository(client, name, images[name], note)
    bases = {
        prefix: client.push_blob(f"{INSIDE}/{prefix}/base", f"mount source of {prefix}".encode())
        for prefix in ("team", "other")
    }
    outside_sessions = {
        op: client.start_upload(f"{OUTSIDE}/team/app")
        for op in ("upload-patch", "upload-put", "upload-status", "upload-cancel")
    }

    with api(server, owner) as http:
        r = http.patch(f"/registries/{ids[OUTSIDE]}", json={"apiSubnetAllowList": ["203.0.113.0/24"]})
        assert r.status_code == 200, r.text
        r = http.patch(
            f"/registries/{inside}/tokens/{tokens['token-disabled'].id}", json={"status": "disabled"}
        )
        assert r.status_code == 200, r.text
        r = http.delete(f"/registries/{inside}/tokens/{tokens['token-deleted'].id}")
        assert r.status_code == 204, r.text
    # An expiry date must be at least an hour ahead over the API: move this one into the past in
    # the database, as if its hour had passed.
    set_token_expiry(server, tokens["token-expired"].id, datetime.now(UTC) - timedelta(seconds=1))

    http_client = httpx.Client(base_url=server.url, timeout=30)
    stack.append(http_client.close)
    signer = TokenSigner(server.signing_key())
    return World(
        server, http_client, client, creds, ids, images, referrers, note, bases, outside_sessions, signer
    )


@pytest.fixture(scope="module")
def world(tmp_path_factory: pytest.TempPathFactory) -> Iterator[World]:
    base: Path = tmp_path_factory.mktemp("authz")
    # No background jobs: the tokens.expire job would delete the expired token's row, and the
    # expired cells would then test a deleted token instead of the expiry check on every request.
    env = {"CARGOBAY_REGISTRY_DOMAIN": DOMAIN, "CARGOBAY_IN_PROCESS_JOBS": "false"}
    closers: list[Callable[[], None]] = []
    with Server(data_dir=base / "data", extra_env=env) as server:
        try:
            yield _make_world(server, closers)
        finally:
            for close in reversed(closers):
                close()


# -- operations -------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Target:
    registry: str
    repository: str | None  # None: base and catalog

    @property
    def name(self) -> str:
        """The repository as the client names it (path-style: registry/repository)."""
        assert self.repository is not None
        return f"{self.registry}/{self.repository}"

    @property
    def ghost(self) -> str:
        """A repository that does not exist, under the same scope glob as the target."""
        assert self.repository is not None
        return f"{self.registry}/{self.repository.split('/')[0]}/ghost"


@dataclass(frozen=True)
class Req:
    method: str
    path: str
    params: dict[str, str] = field(default_factory=dict)
    content: bytes | None = None
    headers: dict[str, str] = field(default_factory=dict)


REAL, ABSENT, GHOST = "real", "absent", "ghost"  # the target; a missing object in it; a missing repo
Build = Callable[[World, Target, str], Req]
Probe = Callable[[str], httpx.Response]  # the same operation on another variant of the target
Check = Callable[["Cell", World, httpx.Response, Probe], None]


@dataclass(frozen=True)
class Op:
    id: str
    needs: str  # login | catalog | pull | push | delete
    build: Build
    check: Check
    variants: tuple[str, ...] = (REAL, ABSENT, GHOST)  # what a denial is compared across
    per_repository: bool = True
    host_style: bool = False  # addressed by Host {registry}.{DOMAIN} instead of the path


def _missing_digest() -> str:
    return sha256(uuid.uuid4().bytes)


def _repo_of(target: Target, variant: str) -> str:
    return target.ghost if variant == GHOST else target.name


def _image(world: World, target: Target) -> Image:
    return world.images[target.name]


def _prepared(target: Target) -> bool:
    """Throw-away targets are made only where the owner can reach (outside uses fixed ones)."""
    return target.registry == INSIDE


def _session(world: World, target: Target, variant: str, op: str) -> str:
    if variant != REAL:
        return f"/v2/{_repo_of(target, variant)}/blobs/uploads/{uuid.uuid4()}"
    if not _prepared(target):
        return world.outside_sessions[op]
    return world.owner.start_upload(target.name).split("?", 1)[0]


def _throwaway_manifest(world: World, target: Target) -> Content:
    doc = {
        "schemaVersion": 2,
        "mediaType": OCI_MANIFEST,
        "artifactType": "application/vnd.example.throwaway",
        "config": Content(OCI_EMPTY, b"{}").descriptor(),
        "layers": [world.note.descriptor()],
        "annotations": {"n": str(world.unique())},
    }
    manifest = Content(OCI_MANIFEST, canonical(doc))
    world.owner.push_manifest(target.name, manifest.digest, manifest.data, OCI_MANIFEST)
    return manifest


# builds


def build_base(world: World, target: Target, variant: str) -> Req:
    return Req("GET", "/v2/")


def build_catalog(world: World, target: Target, variant: str) -> Req:
    return Req("GET", "/v2/_catalog")


def build_tags(world: World, target: Target, variant: str) -> Req:
    return Req("GET", f"/v2/{_repo_of(target, variant)}/tags/list")


def build_manifest_read(method: str, by: str) -> Build:
    def build(world: World, target: Target, variant: str) -> Req:
        image = _image(world, target)
        if variant == ABSENT:
            reference = "absent" if by == "tag" else _missing_digest()
        else:
            reference = "v1" if by == "tag" else image.digest
        path = f"/v2/{_repo_of(target, variant)}/manifests/{reference}"
        return Req(method, path, headers={"Accept": OCI_MANIFEST})

    return build


def build_manifest_put(by: str) -> Build:
    def build(world: World, target: Target, variant: str) -> Req:
        image = _image(world, target)
        reference = f"put-{world.unique()}" if by == "tag" else image.digest
        path = f"/v2/{_repo_of(target, variant)}/manifests/{reference}"
        return Req("PUT", path, content=image.manifest.data, headers={"Content-Type": OCI_MANIFEST})

    return build


def build_manifest_delete(by: str) -> Build:
    def build(world: World, target: Target, variant: str) -> Req:
        image = _image(world, target)
        if variant == ABSENT:
            reference = f"absent-{world.unique()}" if by == "tag" else _missing_digest()
        elif not _prepared(target):
            reference = "v1" if by == "tag" else image.digest
        elif by == "tag":
            reference = f"doomed-{world.unique()}"
            world.owner.push_manifest(target.name, reference, image.manifest.data, OCI_MANIFEST)
        else:
            reference = _throwaway_manifest(world, target).digest
        return Req("DELETE", f"/v2/{_repo_of(target, variant)}/manifests/{reference}")

    return build


def build_blob_read(method: str) -> Build:
    def build(world: World, target: Target, variant: str) -> Req:
        digest = _missing_digest() if variant == ABSENT else _image(world, target).layers[0].digest
        return Req(method, f"/v2/{_repo_of(target, variant)}/blobs/{digest}")

    return build


def build_blob_delete(world: World, target: Target, variant: str) -> Req:
    if variant == ABSENT:
        digest = _missing_digest()
    elif not _prepared(target):
        digest = _image(world, target).layers[0].digest
    else:
        digest = world.owner.push_blob(target.name, f"doomed blob {world.unique()}".encode())
    return Req("DELETE", f"/v2/{_repo_of(target, variant)}/blobs/{digest}")


def build_upload_start(world: World, target: Target, variant: str) -> Req:
    return Req("POST", f"/v2/{_repo_of(target, variant)}/blobs/uploads/")


def build_upload_monolithic(world: World, target: Target, variant: str) -> Req:
    data = f"monolithic {world.unique()}".encode()
    return Req(
        "POST",
        f"/v2/{_repo_of(target, variant)}/blobs/uploads/",
        params={"digest": sha256(data)},
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )


CHUNK = b"0123456789"


def build_upload_patch(world: World, target: Target, variant: str) -> Req:
    path = _session(world, target, variant, "upload-patch")
    return Req(
        "PATCH",
        path,
        content=CHUNK,
        headers={"Content-Type": "application/octet-stream", "Content-Range": f"0-{len(CHUNK) - 1}"},
    )


def build_upload_put(world: World, target: Target, variant: str) -> Req:
    path = _session(world, target, variant, "upload-put")
    data = f"finished upload {world.unique()}".encode()
    return Req(
        "PUT",
        path,
        params={"digest": sha256(data)},
        content=data,
        headers={"Content-Type": "application/octet-stream"},
    )


def build_upload_status(world: World, target: Target, variant: str) -> Req:
    return Req("GET", _session(world, target, variant, "upload-status"))


def build_upload_cancel(world: World, target: Target, variant: str) -> Req:
    return Req("DELETE", _session(world, target, variant, "upload-cancel"))


def build_mount(source_prefix: str) -> Build:
    def build(world: World, target: Target, variant: str) -> Req:
        digest = _missing_digest() if variant == ABSENT else world.bases[source_prefix]
        params = {"mount": digest, "from": f"{INSIDE}/{source_prefix}/base"}
        return Req("POST", f"/v2/{_repo_of(target, variant)}/blobs/uploads/", params=params)

    return build


def build_referrers(world: World, target: Target, variant: str) -> Req:
    subject = _missing_digest() if variant == ABSENT else _image(world, target).digest
    return Req("GET", f"/v2/{_repo_of(target, variant)}/referrers/{subject}")


# checks of allowed cells


def _status(response: httpx.Response, status: int) -> None:
    assert response.status_code == status, (response.request.method, response.request.url, response.text)


def check_base(cell: Cell, world: World, r: httpx.Response, probe: Probe) -> None:
    _status(r, 200)
    assert r.json() == {}
    assert r.headers["docker-distribution-api-version"] == "registry/2.0"


def _visible(glob: str | None) -> set[str]:
    return {name for name in KNOWN if glob is not None and fnmatch.fnmatchcase(name, glob)}


def check_catalog_host(cell: Cell, world: World, r: httpx.Response, probe: Probe) -> None:
    _status(r, 200)
    listed = set(r.json()["repositories"])
    assert listed & set(KNOWN) == _visible(cell.who.catalog)
    assert all(fnmatch.fnmatchcase(name, cell.who.catalog or "") for name in listed), listed


def check_catalog_all(cell: Cell, world: World, r: httpx.Response, probe: Probe) -> None:
    """Path-style catalog lists every registry the caller may list, and none outside its allowlist."""
    _status(r, 200)
    listed = set(r.json()["repositories"])
    assert not {name for name in listed if name.startswith(f"{OUTSIDE}/")}, listed
    who = cell.who
    sees_inside = who.state is State.VALID and (who.user or who.registry == INSIDE)
    expected = _visible(who.catalog) if sees_inside else set()
    assert {name.split("/", 1)[1] for name in listed if name.startswith(f"{INSIDE}/")} == expected


def check_tags(cell: Cell, world: World, r: httpx.Response, probe: Probe) -> None:
    _status(r, 200)
    assert r.json()["name"] == cell.target.name
    assert "v1" in r.json()["tags"]


def check_manifest_read(cell: Cell, world: World, r: httpx.Response, probe: Probe) -> None:
    _status(r, 200)
    image = _image(world, cell.target)
    assert r.headers["docker-content-digest"] == image.digest
    assert r.headers["content-length"] == str(image.manifest.size)
    assert r.content == (b"" if r.request.method == "HEAD" else image.manifest.data)


def check_manifest_put(cell: Cell, world: World, r: httpx.Response, probe: Probe) -> None:
    _status(r, 201)
    assert r.headers["docker-content-digest"] == _image(world, cell.target).digest


def check_deleted(kind: str) -> Check:
    def check(cell: Cell, world: World, r: httpx.Response, probe: Probe) -> None:
        _status(r, 202)
        path = r.request.url.path
        gone = world.owner.head(path, headers={"Accept": OCI_MANIFEST} if kind == "manifest" else {})
        assert gone.status_code == 404, (path, gone.status_code)

    return check


def check_blob_read(cell: Cell, world: World, r: httpx.Response, probe: Probe) -> None:
    _status(r, 200)
    layer = _image(world, cell.target).layers[0]
    assert r.headers["docker-content-digest"] == layer.digest
    assert r.headers["content-length"] == str(layer.size)
    assert r.content == (b"" if r.request.method == "HEAD" else layer.data)


def check_session(status: int) -> Check:
    def check(cell: Cell, world: World, r: httpx.Response, probe: Probe) -> None:
        _status(r, status)
        assert "/blobs/uploads/" in r.headers["location"]
        assert r.headers["docker-upload-uuid"] in r.headers["location"]

    return check


def check_patched(cell: Cell, world: World, r: httpx.Response, probe: Probe) -> None:
    check_session(202)(cell, world, r, probe)
    assert r.headers["range"] == f"0-{len(CHUNK) - 1}"


def check_created(cell: Cell, world: World, r: httpx.Response, probe: Probe) -> None:
    _status(r, 201)
    assert r.headers["docker-content-digest"] == r.request.url.params["digest"]


def check_cancelled(cell: Cell, world: World, r: httpx.Response, probe: Probe) -> None:
    _status(r, 204)
    assert world.owner.get(r.request.url.path).status_code == 404


def _session_shape(r: httpx.Response) -> tuple[Any, ...]:
    upload = r.headers.get("docker-upload-uuid", "")
    return denial_shape(r, {upload: "<upload>"} if upload else {})


def check_mount(source_prefix: str) -> Check:
    def check(cell: Cell, world: World, r: httpx.Response, probe: Probe) -> None:
        if "pull" in cell.who.actions(f"{source_prefix}/base"):
            _status(r, 201)
            assert r.headers["docker-content-digest"] == world.bases[source_prefix]
            return
        # Not allowed to read the source: an ordinary upload session, exactly as if the blob were
        # nowhere, so the answer reveals nothing about the source repository.
        check_session(202)(cell, world, r, probe)
        assert _session_shape(r) == _session_shape(probe(ABSENT))

    return check


def check_referrers(cell: Cell, world: World, r: httpx.Response, probe: Probe) -> None:
    _status(r, 200)
    assert r.headers["content-type"].startswith(OCI_INDEX)
    digests = [m["digest"] for m in r.json()["manifests"]]
    assert digests == [world.referrers[cell.target.name]]


OPS = (
    Op("base", "login", build_base, check_base, (REAL,), per_repository=False),
    Op("base-by-host", "login", build_base, check_base, (REAL,), per_repository=False, host_style=True),
    Op("catalog", "login", build_catalog, check_catalog_all, (REAL,), per_repository=False),
    Op(
        "catalog-by-host",
        "catalog",
        build_catalog,
        check_catalog_host,
        (REAL,),
        per_repository=False,
        host_style=True,
    ),
    Op("tags-list", "pull", build_tags, check_tags, (REAL, GHOST)),
    Op("manifest-head-tag", "pull", build_manifest_read("HEAD", "tag"), check_manifest_read),
    Op("manifest-get-tag", "pull", build_manifest_read("GET", "tag"), check_manifest_read),
    Op("manifest-head-digest", "pull", build_manifest_read("HEAD", "digest"), check_manifest_read),
    Op("manifest-get-digest", "pull", build_manifest_read("GET", "digest"), check_manifest_read),
    Op("manifest-put-tag", "push", build_manifest_put("tag"), check_manifest_put, (REAL, GHOST)),
    Op("manifest-put-digest", "push", build_manifest_put("digest"), check_manifest_put, (REAL, GHOST)),
    Op("manifest-delete-tag", "delete", build_manifest_delete("tag"), check_deleted("manifest")),
    Op("manifest-delete-digest", "delete", build_manifest_delete("digest"), check_deleted("manifest")),
    Op("blob-head", "pull", build_blob_read("HEAD"), check_blob_read),
    Op("blob-get", "pull", build_blob_read("GET"), check_blob_read),
    Op("blob-delete", "delete", build_blob_delete, check_deleted("blob")),
    Op("upload-start", "push", build_upload_start, check_session(202), (REAL, GHOST)),
    Op("upload-monolithic", "push", build_upload_monolithic, check_created, (REAL, GHOST)),
    Op("upload-patch", "push", build_upload_patch, check_patched),
    Op("upload-put", "push", build_upload_put, check_created),
    Op("upload-status", "push", build_upload_status, check_session(204)),
    Op("upload-cancel", "push", build_upload_cancel, check_cancelled),
    Op("mount-from-team-base", "push", build_mount("team"), check_mount("team")),
    Op("mount-from-other-base", "push", build_mount("other"), check_mount("other")),
    Op("referrers", "pull", build_referrers, check_referrers),
)


# -- the cells --------------------------------------------------------------------------------------


class Outcome(Enum):
    ALLOWED = "allowed"
    UNAUTHENTICATED = "unauthenticated"  # credentials refused
    NOT_HERE = "not-here"  # good credentials, but not for this registry
    INSUFFICIENT = "insufficient"  # authenticated, but the scope does not cover the operation
    ADDRESS = "address"  # the caller's address is outside the allowlist


@dataclass(frozen=True)
class Cell:
    mode: str  # basic | bearer
    who: Who
    op: Op
    repository: str | None

    @property
    def id(self) -> str:
        where = (self.repository or "-").replace("/", "-")
        return f"{self.mode}.{self.who.id}.{where}.{self.op.id}"

    @property
    def target(self) -> Target:
        return Target(self.who.registry, self.repository)

    @property
    def scope(self) -> str | None:
        """The scope the server's challenge must name for this operation."""
        if self.op.build is build_catalog:
            return "registry:catalog:*"
        if self.op.needs == "login":
            return None
        actions = {"pull": "pull", "push": "pull,push", "delete": "delete"}[self.op.needs]
        return f"repository:{self.target.name}:{actions}"

    @property
    def expected(self) -> Outcome:
        who, op = self.who, self.op
        if op.needs == "login" and not op.host_style:
            # No registry is addressed: the credentials decide, and a token the allowlist of its
            # own registry.
            if who.state is State.INVALID:
                return Outcome.UNAUTHENTICATED
            if who.registry == OUTSIDE and not who.user:
                return Outcome.ADDRESS
            lists_somewhere = who.user or who.catalog or who.state is State.ELSEWHERE  # sibling-all may
            if op.build is build_catalog and self.mode == "bearer" and not lists_somewhere:
                # A JWT without the catalog scope is challenged for it (as distribution does), so
                # clients such as `podman search` ask for the scope and retry.
                return Outcome.INSUFFICIENT
            return Outcome.ALLOWED
        if who.registry == OUTSIDE:
            return Outcome.ADDRESS  # checked before credentials: wrong ones learn nothing either
        if who.state is State.INVALID:
            return Outcome.UNAUTHENTICATED
        if who.state is State.ELSEWHERE and op.host_style:
            return Outcome.UNAUTHENTICATED  # a registry's own host takes only its own credentials
        if op.needs == "login":
            return Outcome.ALLOWED
        if who.state is State.ELSEWHERE:
            return Outcome.NOT_HERE
        if op.needs == "catalog":
            return Outcome.ALLOWED if who.catalog else Outcome.INSUFFICIENT
        assert self.repository is not None
        return Outcome.ALLOWED if op.needs in who.actions(self.repository) else Outcome.INSUFFICIENT


def _cells() -> list[Cell]:
    cells = []
    for mode, who, op in itertools.product(("basic", "bearer"), WHO, OPS):
        if not op.per_repository:
            cells.append(Cell(mode, who, op, None))
            continue
        # The scope glob matters only for valid credentials inside; elsewhere one target will do.
        scoped = who.state is State.VALID and who.registry == INSIDE
        for repository in REPOSITORIES if scoped else REPOSITORIES[:1]:
            cells.append(Cell(mode, who, op, repository))
    return cells


CELLS = _cells()


# -- asking -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Answer:
    stage: str  # "request": the operation answered; "token": /auth/token answered (and refused)
    response: httpx.Response


def _send(
    world: World, cell: Cell, req: Req, auth: tuple[str, str] | None = None, token: str | None = None
) -> httpx.Response:
    headers = dict(req.headers)
    if cell.op.host_style:
        headers["Host"] = world.host(cell.who.registry)
    if token is not None:
        headers["Authorization"] = f"Bearer {token}"
    return world.http.request(
        req.method, req.path, params=req.params, content=req.content, headers=headers, auth=auth
    )


def ask(world: World, cell: Cell, variant: str) -> Answer:
    """Send the cell's operation on ``variant`` of its target as the cell's client would."""
    req = cell.op.build(world, cell.target, variant)
    creds = world.creds[cell.who.id]
    if cell.mode == "basic":
        return Answer("request", _send(world, cell, req, auth=creds))
    anonymous = _send(world, cell, req)
    if anonymous.status_code == 403:
        return Answer("request", anonymous)  # the allowlist answered before any credentials
    assert anonymous.status_code == 401, (anonymous.status_code, anonymous.text)
    challenge = parse_challenge(anonymous.headers["www-authenticate"])
    issued = request_token(world.http, challenge, creds)
    if issued.status_code != 200:
        return Answer("token", issued)
    return Answer("request", _send(world, cell, req, token=issued.json()["token"]))


def _assert_challenge(cell: Cell, response: httpx.Response, error: str | None) -> None:
    challenge = parse_challenge(response.headers["www-authenticate"])
    assert challenge.get("scope") == cell.scope, challenge
    assert challenge.get("error") == error, challenge


def assert_denied(world: World, cell: Cell, answer: Answer) -> None:
    """The denial the cell's outcome calls for, in the cell's mode."""
    r = answer.response
    expected = cell.expected
    if expected is Outcome.ADDRESS:
        # From the operation itself, or (a path-style login of an outside token) from /auth/token.
        assert_denial_carries_no_content(r, 403, "DENIED")
        assert "www-authenticate" not in r.headers
        return
    if cell.mode == "basic":
        assert answer.stage == "request"
        if expected is Outcome.INSUFFICIENT:
            assert_denial_carries_no_content(r, 403, "DENIED")
            assert "www-authenticate" not in r.headers
        else:
            assert_denial_carries_no_content(r, 401, "UNAUTHORIZED")
            _assert_challenge(cell, r, None)
        return
    if expected is Outcome.UNAUTHENTICATED:
        assert answer.stage == "token", "/auth/token must refuse credentials that are no good"
        assert_denial_carries_no_content(r, 401, "UNAUTHORIZED")
        assert r.headers["www-authenticate"].startswith("Basic ")
        return
    # NOT_HERE and INSUFFICIENT: a token is issued, holding nothing that covers the operation.
    assert answer.stage == "request", (r.status_code, r.text)
    assert_denial_carries_no_content(r, 401, "UNAUTHORIZED")
    _assert_challenge(cell, r, "insufficient_scope")


def _names(cell: Cell, variant: str) -> dict[str, str]:
    """Map a variant's target name onto the real target's, for comparing their denials."""
    if variant == GHOST:
        return {cell.target.ghost: cell.target.name}
    return {}


def assert_no_existence_leak(world: World, cell: Cell, real: Answer) -> None:
    """Every variant of the target (missing object, missing repository) is denied identically."""
    for variant in cell.op.variants[1:]:
        other = ask(world, cell, variant)
        assert other.stage == real.stage
        assert denial_shape(other.response, _names(cell, variant)) == denial_shape(real.response, {}), (
            variant,
            other.response.status_code,
            other.response.text,
        )


def _addresses_registry(cell: Cell) -> bool:
    return cell.op.needs != "login" or cell.op.host_style


def assert_outside_is_refused_at_the_token_endpoint(world: World, cell: Cell) -> None:
    """Asking /auth/token for the operation's scope from outside the allowlist is refused."""
    service = world.host(cell.who.registry) if cell.op.host_style else world.server.host
    params = {"service": service, **({"scope": cell.scope} if cell.scope else {})}
    r = world.http.get("/auth/token", params=params, auth=world.creds[cell.who.id])
    assert_denial_carries_no_content(r, 403, "DENIED")


def assert_minted_jwt_is_refused_outside(world: World, cell: Cell) -> None:
    """Even a JWT granting everything (as if issued while the caller was inside) is refused."""
    req = cell.op.build(world, cell.target, REAL)
    grants = [ResourceScope("registry", "catalog", frozenset({"*"}))]
    if cell.repository is not None:
        grants.append(ResourceScope("repository", cell.target.name, EVERYTHING))
    audience = world.host(cell.who.registry) if cell.op.host_style else world.server.host
    token = world.signer.issue("user:minted", audience, [world.registry_ids[OUTSIDE]], grants).token
    r = _send(world, cell, req, token=token)
    assert_denial_carries_no_content(r, 403, "DENIED")


@pytest.mark.parametrize("cell", CELLS, ids=[c.id for c in CELLS])
def test_cell(world: World, cell: Cell) -> None:
    real = ask(world, cell, REAL)
    if cell.expected is Outcome.ALLOWED:
        assert real.stage == "request", (real.response.status_code, real.response.text)
        cell.op.check(cell, world, real.response, lambda variant: ask(world, cell, variant).response)
        return
    assert_denied(world, cell, real)
    assert_no_existence_leak(world, cell, real)
    if cell.expected is Outcome.ADDRESS and cell.mode == "bearer" and _addresses_registry(cell):
        assert_outside_is_refused_at_the_token_endpoint(world, cell)
        assert_minted_jwt_is_refused_outside(world, cell)


def test_the_matrix_covers_every_operation_scope_state_and_place() -> None:
    """The shape of the matrix itself, so a shrunken table cannot pass unnoticed."""
    assert {c.op.id for c in CELLS} == {op.id for op in OPS}
    assert {c.expected for c in CELLS} == set(Outcome)
    assert {c.mode for c in CELLS} == {"basic", "bearer"}
    assert {c.who.id for c in CELLS} == {who.id for who in WHO}
    assert len({c.id for c in CELLS}) == len(CELLS)
    allowed = {(c.who.id, c.repository, c.op.id) for c in CELLS if c.expected is Outcome.ALLOWED}
    assert ("token-push-team-glob", "team/app", "upload-put") in allowed
    assert ("token-push-team-glob", "other/app", "upload-put") not in allowed
    assert ("plain-user", "team/app", "manifest-put-tag") not in allowed


def test_the_expired_token_is_expired_not_gone(world: World) -> None:
    """The expired cells test the expiry check itself: the row is still there, dated in the past."""
    with database(world.server) as db:
        rows = db.execute("SELECT expiry_date FROM tokens WHERE name = 'expired'").fetchall()
    assert len(rows) == 1
    assert datetime.fromisoformat(str(rows[0][0])).replace(tzinfo=UTC) < datetime.now(UTC)
