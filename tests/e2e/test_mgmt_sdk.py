"""All 22 operations of the IONOS Container Registry API through the official Python SDK 2.0.0,
against a live server, authenticated with Basic and with a Bearer token from /auth/v1."""

from __future__ import annotations

import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import jwt
import pytest
from ionoscloud_container_registry import (
    ApiClient,
    ArtifactsApi,
    LocationsApi,
    NamesApi,
    PatchRegistryInput,
    PatchTokenInput,
    PostRegistryInput,
    PostRegistryProperties,
    PostTokenInput,
    PostTokenProperties,
    PutRegistryInput,
    PutTokenInput,
    RegistriesApi,
    RegistryFeatures,
    RepositoriesApi,
    Scope,
    TokensApi,
    VulnerabilitiesApi,
    WeeklySchedule,
)
from ionoscloud_container_registry.exceptions import (
    BadRequestException,
    ConflictException,
    ForbiddenException,
    NotFoundException,
    UnauthorizedException,
)
from ionoscloud_container_registry.models.feature_vulnerability_scanning import FeatureVulnerabilityScanning

from tests.support.mgmt import (
    Login,
    add_user,
    bearer_token,
    new_contract,
    pull_manifest,
    push_image,
    sdk,
    unique,
)
from tests.support.server import Server


@pytest.fixture(scope="module")
def owner(server: Server) -> Login:
    return new_contract(server, "sdk-owner")


@pytest.fixture(scope="module")
def token(server: Server, owner: Login) -> str:
    return bearer_token(server, owner)


class Client:
    """An SDK client and how to call the bearer-only operations with it."""

    def __init__(self, api: ApiClient, mode: str, login: Login) -> None:
        self.api = api
        self.mode = mode
        self.login = login

    @property
    def bearer_only(self) -> dict[str, Any]:
        """Per-call auth for the 7 bearer-only operations: the stock SDK sends nothing there with Basic
        credentials, so a Basic user passes ``_request_auth`` (the SDK's documented override)."""
        if self.mode == "bearer":
            return {}
        value = self.api.configuration.get_basic_auth_token()
        return {"_request_auth": {"in": "header", "type": "basic", "key": "Authorization", "value": value}}


@pytest.fixture(params=["basic", "bearer"])
def client(request: pytest.FixtureRequest, server: Server, owner: Login, token: str) -> Iterator[Client]:
    api = sdk(server, owner) if request.param == "basic" else sdk(server, token=token)
    with api:
        yield Client(api, request.param, owner)


def location(response: Any) -> str:
    """The Location header (the SDK keeps headers in a plain dict, as sent: lower-case here)."""
    headers = {k.lower(): v for k, v in (response.headers or {}).items()}
    return str(headers["location"])


def create_registry(client: Client, name: str | None = None, **properties: Any) -> Any:
    body = PostRegistryInput(
        properties=PostRegistryProperties(name=name or unique("sdk"), location="de/fra", **properties)
    )
    return RegistriesApi(client.api).registries_post(body)


# -- 1. locations, 2. names -------------------------------------------------------------------------
def test_locations_lists_location_ids(client: Client) -> None:
    result = LocationsApi(client.api).locations_get()
    assert result.id == "locations" and result.type == "collection"
    assert "de/fra" in [item.id for item in result.items or []]


def test_name_check_is_404_when_free_200_when_taken_400_when_invalid(client: Client) -> None:
    names = NamesApi(client.api)
    name = unique("names")
    with pytest.raises(NotFoundException):  # 404 = available
        names.names_check_usage(name)
    create_registry(client, name)
    assert names.names_check_usage_with_http_info(name).status_code == 200  # taken
    with pytest.raises(BadRequestException):
        names.names_check_usage("Not_Valid")


# -- 3-8. registries --------------------------------------------------------------------------------
def test_create_answers_new_then_the_registry_is_running_with_a_hostname(
    client: Client, server: Server
) -> None:
    registries = RegistriesApi(client.api)
    name = unique("create")
    body = PostRegistryInput(
        properties=PostRegistryProperties(
            name=name,
            location="de/fra",
            garbage_collection_schedule=WeeklySchedule(days=["Monday", "Friday"], time="01:23:00+00:00"),
            api_subnet_allow_list=["203.0.113.0/24", "2001:db8::1"],
        )
    )
    response = registries.registries_post_with_http_info(body)
    assert response.status_code == 201
    created = response.data
    assert location(response).endswith(f"/registries/{created.id}")
    assert created.metadata.state == "New"
    assert created.properties.hostname == ""
    assert created.metadata.created_by == client.login.email
    assert created.properties.features.vulnerability_scanning.enabled is True  # the default
    assert created.properties.storage_usage.bytes == 0

    found = registries.registries_find_by_id(created.id)
    assert found.metadata.state == "Running"
    assert found.properties.hostname == f"{server.host}/{name}"
    assert found.properties.garbage_collection_schedule.days == ["Monday", "Friday"]
    assert found.properties.garbage_collection_schedule.time == "01:23:00+00:00"
    assert found.properties.api_subnet_allow_list == ["203.0.113.0/24", "2001:db8::1"]


def test_list_filters_by_name_and_pages_with_the_cursor(client: Client) -> None:
    registries = RegistriesApi(client.api)
    stem = unique("page")
    made = sorted(create_registry(client, f"{stem}-{i}").properties.name for i in range(3))
    seen: list[str] = []
    token: str | None = None
    for _ in range(5):
        page = registries.registries_get(filter_name=stem, limit="2", pagination_token=token)
        assert page.pagination.limit == 2
        seen += [item.properties.name for item in page.items or []]
        token = page.pagination.token
        if not token:
            break
    assert seen == made


def test_patch_changes_only_what_is_sent(client: Client) -> None:
    registries = RegistriesApi(client.api)
    created = create_registry(
        client,
        api_subnet_allow_list=["198.51.100.0/24"],
        garbage_collection_schedule=WeeklySchedule(days=["Sunday"], time="02:00:00Z"),
    )
    patched = registries.registries_patch(
        created.id,
        PatchRegistryInput(garbage_collection_schedule=WeeklySchedule(days=["Tuesday"], time="03:00:00Z")),
    )
    assert patched.properties.garbage_collection_schedule.days == ["Tuesday"]
    assert patched.properties.api_subnet_allow_list == ["198.51.100.0/24"]  # absent: unchanged
    assert patched.metadata.last_modified_by == client.login.email
    cleared = registries.registries_patch(created.id, PatchRegistryInput(api_subnet_allow_list=[]))
    assert cleared.properties.api_subnet_allow_list == []
    assert cleared.properties.garbage_collection_schedule.days == ["Tuesday"]


def test_vulnerability_scanning_cannot_be_switched_off(client: Client) -> None:
    registries = RegistriesApi(client.api)
    created = create_registry(client)
    off = RegistryFeatures(vulnerability_scanning=FeatureVulnerabilityScanning(enabled=False))
    with pytest.raises(BadRequestException) as err:
        registries.registries_patch(created.id, PatchRegistryInput(features=off))
    assert "vulnerabilityScanning.enabled" in str(err.value.body)
    assert registries.registries_find_by_id(created.id).properties.features.vulnerability_scanning.enabled


def test_put_creates_with_the_client_id_then_replaces(client: Client) -> None:
    registries = RegistriesApi(client.api)
    registry_id = str(uuid.uuid4())
    name = unique("put")
    schedule = WeeklySchedule(days=["Wednesday"], time="04:00:00Z")
    body = PutRegistryInput(
        properties=PostRegistryProperties(name=name, location="de/txl", garbage_collection_schedule=schedule)
    )
    response = registries.registries_put_with_http_info(registry_id, body)
    assert response.status_code == 201
    assert response.data.id == registry_id and response.data.metadata.state == "New"
    assert location(response).endswith(f"/registries/{registry_id}")

    body.properties.garbage_collection_schedule = WeeklySchedule(days=["Thursday"], time="05:00:00Z")
    replaced = registries.registries_put(registry_id, body)
    assert replaced.properties.garbage_collection_schedule.days == ["Thursday"]
    assert replaced.metadata.state == "Running"

    renamed = PutRegistryInput(properties=PostRegistryProperties(name=unique("other"), location="de/txl"))
    with pytest.raises(BadRequestException):
        registries.registries_put(registry_id, renamed)
    moved = PutRegistryInput(properties=PostRegistryProperties(name=name, location="de/fra"))
    with pytest.raises(BadRequestException):
        registries.registries_put(registry_id, moved)


def test_duplicate_name_conflicts(client: Client) -> None:
    created = create_registry(client)
    with pytest.raises(ConflictException):
        create_registry(client, created.properties.name)


def test_delete_removes_the_registry_and_put_brings_the_same_id_back(client: Client) -> None:
    registries = RegistriesApi(client.api)
    created = create_registry(client)
    registries.registries_delete(created.id)
    with pytest.raises(NotFoundException):
        registries.registries_find_by_id(created.id)
    with pytest.raises(NotFoundException):
        registries.registries_delete(created.id)
    body = PutRegistryInput(
        properties=PostRegistryProperties(name=created.properties.name, location="de/fra")
    )
    assert registries.registries_put(created.id, body).id == created.id


# -- 9-14. tokens -----------------------------------------------------------------------------------
def test_token_lifecycle(client: Client) -> None:
    registry = create_registry(client)
    tokens = TokensApi(client.api)
    name = unique("ci")
    expiry = (datetime.now(UTC) + timedelta(days=30)).replace(microsecond=0)
    body = PostTokenInput(
        properties=PostTokenProperties(
            name=name,
            expiry_date=expiry,
            scopes=[Scope(name="team/*", type="repository", actions=["pull", "push"])],
            status="enabled",
        )
    )
    response = tokens.registries_tokens_post_with_http_info(registry.id, body)
    assert response.status_code == 201
    created = response.data
    assert location(response).endswith(f"/registries/{registry.id}/tokens/{created.id}")
    assert created.properties.credentials.username == name
    assert len(created.properties.credentials.password) >= 20
    assert created.properties.expiry_date == expiry

    found = tokens.registries_tokens_find_by_id(registry.id, created.id)
    assert found.properties.credentials.password == ""  # only the create response carries it
    assert found.properties.scopes[0].actions == ["pull", "push"]

    listed = tokens.registries_tokens_get(registry.id, offset="0", limit="10")
    assert (listed.count, listed.total, listed.offset, listed.limit) == (1, 1, 0, 10)
    assert listed.items[0].properties.credentials.password == ""

    patched = tokens.registries_tokens_patch(
        registry.id,
        created.id,
        PatchTokenInput(scopes=[Scope(name="*", type="registry", actions=["pull"])], status="disabled"),
    )
    assert [s.type for s in patched.properties.scopes] == ["registry"]
    assert patched.properties.status == "disabled"
    assert patched.properties.expiry_date == expiry  # absent: unchanged
    cleared = tokens.registries_tokens_patch(registry.id, created.id, PatchTokenInput(expiry_date=None))
    assert cleared.properties.expiry_date is None  # explicit null: no expiry

    replaced = tokens.registries_tokens_put(
        registry.id, created.id, PutTokenInput(properties=PostTokenProperties(name=name, status="enabled"))
    )
    assert replaced.properties.credentials.password == ""  # replacing issues no new secret
    assert replaced.properties.scopes == [] and replaced.properties.status == "enabled"

    tokens.registries_tokens_delete(registry.id, created.id)
    with pytest.raises(NotFoundException):
        tokens.registries_tokens_find_by_id(registry.id, created.id)
    # ionosctl's "scope delete": DELETE, then PUT with the same id and name.
    again = tokens.registries_tokens_put_with_http_info(
        registry.id, created.id, PutTokenInput(properties=PostTokenProperties(name=name))
    )
    assert again.status_code == 201
    assert again.data.id == created.id and again.data.properties.credentials.password != ""


def test_token_rules(client: Client) -> None:
    registry = create_registry(client)
    tokens = TokensApi(client.api)
    name = unique("dup")
    tokens.registries_tokens_post(registry.id, PostTokenInput(properties=PostTokenProperties(name=name)))
    with pytest.raises(ConflictException):
        tokens.registries_tokens_post(registry.id, PostTokenInput(properties=PostTokenProperties(name=name)))
    soon = datetime.now(UTC) + timedelta(minutes=20)
    with pytest.raises(BadRequestException) as err:
        tokens.registries_tokens_post(
            registry.id, PostTokenInput(properties=PostTokenProperties(name=unique("soon"), expiry_date=soon))
        )
    assert "at least one hour" in str(err.value.body)


def test_naive_expiry_dates_are_utc(client: Client) -> None:
    registry = create_registry(client)
    naive = (datetime.now(UTC) + timedelta(days=2)).replace(tzinfo=None, microsecond=0)
    body = PostTokenInput(properties=PostTokenProperties(name=unique("naive"), expiry_date=naive))
    created = TokensApi(client.api).registries_tokens_post(registry.id, body)
    assert created.properties.expiry_date == naive.replace(tzinfo=UTC)


# -- 15-22. repositories, artifacts, vulnerabilities ------------------------------------------------
def test_repositories_artifacts_and_vulnerabilities(client: Client, server: Server) -> None:
    registry = create_registry(client)
    name = registry.properties.name
    first = push_image(server, client.login.auth, name, "team/app", "v1")
    second = push_image(server, client.login.auth, name, "team/app", "v2")
    push_image(server, client.login.auth, name, "solo", "latest")
    repositories, artifacts = RepositoriesApi(client.api), ArtifactsApi(client.api)

    listing = repositories.registries_repositories_get(registry.id, offset=0, limit=10, **client.bearer_only)
    assert listing.id == "repositories" and listing.type == "collection"
    assert sorted(r.id for r in listing.items) == ["solo", "team/app"]

    repo = repositories.registries_repositories_find_by_name(registry.id, "team/app", **client.bearer_only)
    assert repo.type == "repository" and repo.properties.name == "team/app"
    assert repo.metadata.artifact_count == 2 and repo.metadata.push_count == 2

    everything = artifacts.registries_artifacts_get(registry.id, order_by="-pushCount", **client.bearer_only)
    assert everything.id == "artifacts" and len(everything.items) == 3
    in_repo = artifacts.registries_repositories_artifacts_get(
        registry.id, "team/app", order_by="lastPush", **client.bearer_only
    )
    assert [a.id for a in in_repo.items] == [first.digest, second.digest]

    one = artifacts.registries_repositories_artifacts_find_by_digest(
        registry.id, "team/app", second.digest, **client.bearer_only
    )
    assert one.type == "artifact" and one.properties.digest == second.digest
    assert one.properties.tags == ["v2"] and one.properties.repository_name == "team/app"
    assert one.metadata.last_scanned_at is None and one.metadata.vuln_total_count == 0

    vulnerabilities = artifacts.registries_repositories_artifacts_vulnerabilities_get(
        registry.id, "team/app", second.digest, filter_fixable=True, **client.bearer_only
    )
    assert vulnerabilities.id == "vulnerabilities" and vulnerabilities.items == []
    with pytest.raises(NotFoundException):
        VulnerabilitiesApi(client.api).vulnerabilities_find_by_id("CVE-2021-44228", **client.bearer_only)

    repositories.registries_repositories_delete(registry.id, "team/app")
    with pytest.raises(NotFoundException):
        repositories.registries_repositories_find_by_name(registry.id, "team/app", **client.bearer_only)
    with pytest.raises(NotFoundException):
        artifacts.registries_repositories_artifacts_find_by_digest(
            registry.id, "team/app", first.digest, **client.bearer_only
        )


def test_pull_counts_reach_the_management_api(client: Client, server: Server) -> None:
    registry = create_registry(client)
    name = registry.properties.name
    pushed = push_image(server, client.login.auth, name, "pulled", "v1")
    for _ in range(3):
        pull_manifest(server, client.login.auth, name, "pulled", "v1")
    repositories, artifacts = RepositoriesApi(client.api), ArtifactsApi(client.api)
    deadline = time.monotonic() + 15
    while True:  # pulls are counted in memory and flushed about every second
        repo = repositories.registries_repositories_find_by_name(registry.id, "pulled", **client.bearer_only)
        if repo.metadata.pull_count == 3 or time.monotonic() > deadline:
            break
        time.sleep(0.3)
    assert repo.metadata.pull_count == 3 and repo.metadata.last_pulled_at is not None
    artifact = artifacts.registries_repositories_artifacts_find_by_digest(
        registry.id, "pulled", pushed.digest, **client.bearer_only
    )
    assert artifact.metadata.pull_count == 3


def test_stock_sdk_with_basic_credentials_gets_401_on_bearer_only_operations(
    server: Server, owner: Login
) -> None:
    """As against the real API: the SDK sends no Authorization on these 7 operations with user/password."""
    with sdk(server, owner) as api:
        registry = RegistriesApi(api).registries_post(
            PostRegistryInput(properties=PostRegistryProperties(name=unique("stock"), location="de/fra"))
        )
        with pytest.raises(UnauthorizedException):
            RepositoriesApi(api).registries_repositories_get(registry.id)
        with pytest.raises(UnauthorizedException):
            ArtifactsApi(api).registries_artifacts_get(registry.id)
        with pytest.raises(UnauthorizedException):
            VulnerabilitiesApi(api).vulnerabilities_find_by_id("CVE-2021-44228")
        with pytest.raises(NotFoundException):  # repository DELETE does send Basic: a real 404
            RepositoriesApi(api).registries_repositories_delete(registry.id, "absent")


# -- tenancy and roles ------------------------------------------------------------------------------
def test_a_plain_user_reads_but_cannot_change(server: Server, owner: Login) -> None:
    reader = add_user(server, owner.contract, role="user")
    with sdk(server, owner) as owner_api, sdk(server, reader) as api:
        registry = RegistriesApi(owner_api).registries_post(
            PostRegistryInput(properties=PostRegistryProperties(name=unique("roles"), location="de/fra"))
        )
        made = TokensApi(owner_api).registries_tokens_post(
            registry.id, PostTokenInput(properties=PostTokenProperties(name=unique("t")))
        )
        registries, tokens = RegistriesApi(api), TokensApi(api)
        assert registries.registries_find_by_id(registry.id).id == registry.id
        assert tokens.registries_tokens_get(registry.id).total == 1
        forbidden = [
            lambda: registries.registries_post(
                PostRegistryInput(properties=PostRegistryProperties(name=unique("no"), location="de/fra"))
            ),
            lambda: registries.registries_patch(registry.id, PatchRegistryInput(api_subnet_allow_list=[])),
            lambda: registries.registries_put(
                registry.id,
                PutRegistryInput(
                    properties=PostRegistryProperties(name=registry.properties.name, location="de/fra")
                ),
            ),
            lambda: registries.registries_delete(registry.id),
            lambda: tokens.registries_tokens_post(
                registry.id, PostTokenInput(properties=PostTokenProperties(name=unique("t")))
            ),
            lambda: tokens.registries_tokens_patch(registry.id, made.id, PatchTokenInput(status="disabled")),
            lambda: tokens.registries_tokens_delete(registry.id, made.id),
        ]
        for call in forbidden:
            with pytest.raises(ForbiddenException) as err:
                call()
            assert '"httpStatus": 403' in str(err.value.body)
        assert tokens.registries_tokens_find_by_id(registry.id, made.id).properties.status == "enabled"


def test_manage_registry_permission_allows_changes(server: Server, owner: Login) -> None:
    manager = add_user(server, owner.contract, role="user", manage_registry=True)
    with sdk(server, manager) as api:
        registry = RegistriesApi(api).registries_post(
            PostRegistryInput(properties=PostRegistryProperties(name=unique("mgr"), location="de/fra"))
        )
        assert registry.metadata.created_by == manager.email
        RegistriesApi(api).registries_delete(registry.id)


def test_another_contracts_registry_is_not_found(server: Server, owner: Login) -> None:
    stranger = new_contract(server, "stranger")
    with sdk(server, owner) as owner_api, sdk(server, stranger) as api:
        registry = RegistriesApi(owner_api).registries_post(
            PostRegistryInput(properties=PostRegistryProperties(name=unique("mine"), location="de/fra"))
        )
        registries, tokens = RegistriesApi(api), TokensApi(api)
        assert registry.id not in [r.id for r in registries.registries_get().items or []]
        calls = [
            lambda: registries.registries_find_by_id(registry.id),
            lambda: registries.registries_patch(registry.id, PatchRegistryInput(api_subnet_allow_list=[])),
            lambda: registries.registries_put(
                registry.id,
                PutRegistryInput(
                    properties=PostRegistryProperties(name=registry.properties.name, location="de/fra")
                ),
            ),
            lambda: registries.registries_delete(registry.id),
            lambda: tokens.registries_tokens_get(registry.id),
            lambda: tokens.registries_tokens_post(
                registry.id, PostTokenInput(properties=PostTokenProperties(name=unique("t")))
            ),
            lambda: RepositoriesApi(api).registries_repositories_delete(registry.id, "anything"),
        ]
        for call in calls:
            with pytest.raises(NotFoundException):
                call()
        assert RegistriesApi(owner_api).registries_find_by_id(registry.id).id == registry.id


def test_x_contract_number_selects_among_a_users_contracts(server: Server, owner: Login) -> None:
    other = new_contract(server, "second")
    add_user(server, other.contract, role="admin", login=owner)  # the owner is now admin there too
    with sdk(server, other) as other_api:
        theirs = RegistriesApi(other_api).registries_post(
            PostRegistryInput(properties=PostRegistryProperties(name=unique("theirs"), location="de/fra"))
        )
    first = min(owner.contract, other.contract)
    with sdk(server, owner) as api:
        api.set_default_header("X-Contract-Number", str(other.contract))
        assert RegistriesApi(api).registries_find_by_id(theirs.id).id == theirs.id
        api.set_default_header("X-Contract-Number", str(owner.contract))
        with pytest.raises(NotFoundException):
            RegistriesApi(api).registries_find_by_id(theirs.id)
        api.set_default_header("X-Contract-Number", "1")
        with pytest.raises(ForbiddenException):
            RegistriesApi(api).registries_get()
    with sdk(server, owner) as api:  # no header: the user's first contract
        visible = [r.id for r in RegistriesApi(api).registries_get().items or []]
        assert (theirs.id in visible) == (first == other.contract)
    token = bearer_token(server, owner, contract=other.contract)
    with sdk(server, token=token) as api:  # a bearer token keeps the contract it was made for
        assert RegistriesApi(api).registries_find_by_id(theirs.id).id == theirs.id


def test_a_generated_token_carries_the_identity_ionosctl_reads_and_works_with_the_sdk(
    server: Server, owner: Login
) -> None:
    admin = add_user(server, owner.contract, role="user", manage_registry=True)
    token = bearer_token(server, admin)
    claims = jwt.decode(token, options={"verify_signature": False})
    identity = claims["identity"]
    assert claims["contract"] == identity["contractNumber"] == owner.contract
    assert claims["sub"] == identity["uuid"] == identity["userId"]
    assert identity["email"] == admin.email and identity["role"] == "user"
    assert identity["privileges"] == ["manageRegistry"] and identity["isParent"] is False
    with sdk(server, token=token) as api:
        made = RegistriesApi(api).registries_post(
            PostRegistryInput(properties=PostRegistryProperties(name=unique("jwt"), location="de/fra"))
        )
        assert made.metadata.created_by_user_id == claims["sub"]
        assert made.id in [r.id for r in RegistriesApi(api).registries_get().items or []]
