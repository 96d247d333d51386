"""The tenancy commands that feed the management API: contracts, users, roles."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support.mgmt import Login, new_contract, push_image, unique
from tests.support.postgres import PostgresServer
from tests.support.server import CARGOBAY, Server


def test_user_create_reports_role_and_permission_and_refuses_bad_input(server: Server) -> None:
    owner = new_contract(server, "cli")
    email = f"{unique('cli')}@example.com"
    done = server.cli("user", "create", email, "--contract", str(owner.contract), "--manage-registry")
    assert f"is user with manageRegistry of contract {owner.contract}" in done.stdout
    password = done.stdout.split("password (shown once):", 1)[1].strip()
    login = Login(email, password, owner.contract)
    r = httpx.get(f"{server.url}/containerregistries/registries", auth=login.auth)
    assert r.status_code == 200

    again = server.cli(
        "user", "create", email, "--contract", str(owner.contract), "--password", "another-pass-1"
    )
    assert "password was left unchanged" in again.stderr
    assert httpx.get(f"{server.url}/containerregistries/registries", auth=login.auth).status_code == 200

    bad_role = server.cli(
        "user",
        "create",
        f"{unique('x')}@example.com",
        "--contract",
        str(owner.contract),
        "--role",
        "boss",
        check=False,
    )
    assert bad_role.returncode == 1 and "role must be one of owner, admin, user" in bad_role.stderr
    no_contract = server.cli("user", "create", f"{unique('x')}@example.com", "--contract", "1", check=False)
    assert no_contract.returncode == 1 and "contract 1 does not exist" in no_contract.stderr
    bad_login = server.cli("user", "create", "not-an-email", "--contract", str(owner.contract), check=False)
    assert bad_login.returncode == 1 and "user@domain" in bad_login.stderr


# -- admin commands never make a new installation ----------------------------------------------

ADMIN_COMMANDS = [
    ["registry", "create", "otherreg"],
    ["contract", "create", "--name", "x"],
    ["user", "create", "someone@example.com", "--contract", "1"],
    ["keys", "rotate-master", "--new-key-file", "new.key"],
]


@pytest.mark.parametrize("command", ADMIN_COMMANDS, ids=lambda c: " ".join(c[:2]))
def test_an_admin_command_without_an_installation_names_where_it_looked(
    tmp_path: Path, command: list[str]
) -> None:
    """Run from a directory that holds no installation (the default ./data), it changes nothing."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARGOBAY_")}
    done = subprocess.run(
        [CARGOBAY, *command], cwd=tmp_path, env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1, done.stdout + done.stderr
    assert f"no Cargobay installation in {tmp_path / 'data'}" in done.stderr
    assert "CARGOBAY_DATA_DIR" in done.stderr and "--data-dir" in done.stderr
    assert list(tmp_path.iterdir()) == []  # no data dir, no key, no database


@pytest.mark.postgres
def test_an_admin_command_on_an_empty_database_says_so(pg_server: PostgresServer, tmp_path: Path) -> None:
    url = pg_server.url(pg_server.create_database("empty_install"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("CARGOBAY_")}
    env.update(CARGOBAY_DATABASE_URL=url, CARGOBAY_DATA_DIR=str(tmp_path / "data"))
    done = subprocess.run(
        [CARGOBAY, "registry", "create", "pgreg"], env=env, capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 1 and "holds no Cargobay installation" in done.stderr
    assert "cargobay migrate" in done.stderr


# -- cargobay token create | list | delete -------------------------------------------------------


def test_token_commands_make_a_working_credential_list_it_and_delete_it(server: Server) -> None:
    owner = new_contract(server, "tokcli")
    registry = unique("tokcli")
    server.cli("registry", "create", registry, "--contract", str(owner.contract))
    made = server.cli(
        "token", "create", registry, "ci", "--scope", "repository:team/*:pull,push", "--expires", "30d"
    ).stdout
    password = made.split("password (shown once): ", 1)[1].split("\n", 1)[0]
    assert "scopes: repository:team/*:pull,push" in made
    host = server.url.split("://", 1)[1]  # path-style: docker logs in to the host
    assert f"| docker login {host} --username ci --password-stdin" in made
    assert f"echo '{password}'" in made
    creds = ("ci", password)

    push_image(server, creds, registry, "team/app", "v1")  # push and pull within the scope
    tags = httpx.get(f"{server.url}/v2/{registry}/team/app/tags/list", auth=creds)
    assert tags.status_code == 200 and tags.json()["tags"] == ["v1"]
    push_image(server, owner.auth, registry, "other/app", "v1")
    assert httpx.get(f"{server.url}/v2/{registry}/other/app/tags/list", auth=creds).status_code == 403

    listed = server.cli("token", "list", registry).stdout
    assert listed.splitlines()[0].split() == ["NAME", "ID", "STATUS", "EXPIRES", "SCOPES"]
    assert "ci" in listed and "enabled" in listed and "repository:team/*:pull,push" in listed
    assert password not in listed
    # the management API sees the same token, made by the operator
    tokens = httpx.get(
        f"{server.url}/containerregistries/registries", auth=owner.auth, params={"filter.name": registry}
    ).json()["items"][0]["id"]
    api_view = httpx.get(f"{server.url}/containerregistries/registries/{tokens}/tokens", auth=owner.auth)
    assert [t["properties"]["name"] for t in api_view.json()["items"]] == ["ci"]

    taken = server.cli("token", "create", registry, "ci", check=False)
    assert taken.returncode == 1 and "'ci' is already used by another token" in taken.stderr

    assert "deleted token ci" in server.cli("token", "delete", registry, "ci").stdout
    assert httpx.get(f"{server.url}/v2/{registry}/team/app/tags/list", auth=creds).status_code == 401
    assert "has no tokens" in server.cli("token", "list", registry).stdout


def test_token_create_disabled_makes_a_credential_the_registry_refuses(server: Server) -> None:
    owner = new_contract(server, "tokoff")
    registry = unique("tokoff")
    server.cli("registry", "create", registry, "--contract", str(owner.contract))
    made = server.cli("token", "create", registry, "off", "--scope", "repository:*:pull", "--disabled").stdout
    password = made.split("password (shown once): ", 1)[1].split("\n", 1)[0]
    assert "expires: never" in made and ", disabled" in made
    assert httpx.get(f"{server.url}/v2/{registry}/x/tags/list", auth=("off", password)).status_code == 401


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--scope", "repository:team"], "is not TYPE:NAME:ACTIONS"),
        (["--scope", "repository:team/*:pull,fly"], "unknown action 'fly'"),
        (["--scope", "repository:team/*:push"], "push needs pull"),
        (["--scope", "project:team:pull"], "must be one of repository, registry"),
        (["--scope", "repository:Team:pull"], "may contain only a-z"),
        (["--scope", "repository:team:"], "must name at least one of pull, push, delete"),
        (["--expires", "30m"], "must be at least one hour in the future"),
        (["--expires", "tomorrow"], "--expires"),
    ],
    ids=lambda v: v if isinstance(v, str) else " ".join(v),
)
def test_token_create_refuses_bad_input_and_stores_nothing(
    server: Server, args: list[str], message: str
) -> None:
    owner = new_contract(server, "tokbad")
    registry = unique("tokbad")
    server.cli("registry", "create", registry, "--contract", str(owner.contract))
    done = server.cli("token", "create", registry, "bad", *args, check=False)
    assert done.returncode == 1 and message in done.stderr, done.stderr
    assert "Traceback" not in done.stderr
    assert "has no tokens" in server.cli("token", "list", registry).stdout


def test_token_commands_name_an_unknown_registry_or_token(server: Server) -> None:
    missing = server.cli("token", "create", "no-such-registry", "x", check=False)
    assert missing.returncode == 1 and "no registry is named 'no-such-registry'" in missing.stderr
    assert "no registry is named" in server.cli("token", "list", "no-such-registry", check=False).stderr
    owner = new_contract(server, "tokmiss")
    registry = unique("tokmiss")
    server.cli("registry", "create", registry, "--contract", str(owner.contract))
    gone = server.cli("token", "delete", registry, "ghost", check=False)
    assert gone.returncode == 1 and f"registry {registry} has no token 'ghost'" in gone.stderr
    bad_name = server.cli("token", "create", registry, "Bad Name!", check=False)
    assert bad_name.returncode == 1 and "name" in bad_name.stderr and "Traceback" not in bad_name.stderr
