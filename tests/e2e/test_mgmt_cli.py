"""The tenancy commands that feed the management API: contracts, users, roles."""

from __future__ import annotations

import httpx

from tests.support.mgmt import Login, new_contract, unique
from tests.support.server import Server


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
