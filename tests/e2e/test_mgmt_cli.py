"""The tenancy commands that feed the management API: contracts, users, roles."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import httpx
import pytest

from tests.support.mgmt import Login, new_contract, unique
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
