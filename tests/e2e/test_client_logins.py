"""Log-in flows of real clients, each with a private config: the credentials stored by ``login``
are what later commands use (through the Bearer token flow), and ``logout`` takes them away."""

from __future__ import annotations

import base64
import json
from pathlib import Path

import pytest

from tests.support.clients import ClientEnv
from tests.support.server import Server
from tests.support.v2 import V2


@pytest.fixture
def tagged(v2: V2, repo: str) -> str:
    """A repository with one tag, ``v1`` (an empty-config artifact is enough)."""
    config = v2.push_blob(repo, b"{}")
    body = json.dumps(
        {
            "schemaVersion": 2,
            "mediaType": "application/vnd.oci.image.manifest.v1+json",
            "artifactType": "application/vnd.cargobay.test.login",
            "config": {"mediaType": "application/vnd.oci.empty.v1+json", "digest": config, "size": 2},
            "layers": [],
        }
    ).encode()
    v2.push_manifest(repo, "v1", body, "application/vnd.oci.image.manifest.v1+json")
    return repo


def _stored_auth(path: Path, host: str) -> tuple[str, str]:
    auths = json.loads(path.read_text())["auths"]
    user, _, password = base64.b64decode(auths[host]["auth"]).decode().partition(":")
    return user, password


def test_skopeo_login_list_tags_logout(server: Server, tagged: str, clients: ClientEnv) -> None:
    common = ("--authfile", str(clients.auth_file), "--tls-verify=false")
    wrong = clients.run(
        "skopeo", "login", *common, "-u", server.admin_user, "-p", "wrong", server.host, check=False
    )
    assert wrong.returncode != 0
    assert not clients.auth_file.exists() or server.host not in clients.auth_file.read_text()

    clients.run(
        "skopeo",
        "login",
        *common,
        "-u",
        server.admin_user,
        "--password-stdin",
        server.host,
        input=server.admin_password,
    )
    assert _stored_auth(clients.auth_file, server.host) == server.auth
    listed = clients.json("skopeo", "list-tags", *common, f"docker://{server.host}/{tagged}")
    assert listed["Tags"] == ["v1"]

    clients.run("skopeo", "logout", "--authfile", str(clients.auth_file), server.host)
    after = clients.run("skopeo", "list-tags", *common, f"docker://{server.host}/{tagged}", check=False)
    assert after.returncode != 0
    assert "unauthorized" in after.stderr.lower() or "authentication required" in after.stderr.lower()


def test_crane_auth_login_ls_logout(server: Server, tagged: str, clients: ClientEnv) -> None:
    anonymous = clients.run("crane", "--insecure", "ls", f"{server.host}/{tagged}", check=False)
    assert anonymous.returncode != 0
    clients.run(
        "crane",
        "auth",
        "login",
        server.host,
        "-u",
        server.admin_user,
        "--password-stdin",
        input=server.admin_password,
    )
    assert _stored_auth(clients.docker_config / "config.json", server.host) == server.auth
    assert clients.run("crane", "--insecure", "ls", f"{server.host}/{tagged}").stdout.split() == ["v1"]
    clients.run("crane", "auth", "logout", server.host)
    assert clients.run("crane", "--insecure", "ls", f"{server.host}/{tagged}", check=False).returncode != 0


def test_crane_with_wrong_stored_password_is_refused(server: Server, tagged: str, clients: ClientEnv) -> None:
    clients.run("crane", "auth", "login", server.host, "-u", server.admin_user, "-p", "not-the-password")
    result = clients.run("crane", "--insecure", "ls", f"{server.host}/{tagged}", check=False)
    assert result.returncode != 0
    assert "UNAUTHORIZED" in result.stderr


def test_oras_login_repo_tags_logout(server: Server, tagged: str, clients: ClientEnv) -> None:
    config = ("--registry-config", str(clients.oras_config))
    wrong = clients.run(
        "oras",
        "login",
        "--plain-http",
        *config,
        "-u",
        server.admin_user,
        "-p",
        "wrong",
        server.host,
        check=False,
    )
    assert wrong.returncode != 0
    clients.run(
        "oras",
        "login",
        "--plain-http",
        *config,
        "-u",
        server.admin_user,
        "--password-stdin",
        server.host,
        input=server.admin_password,
    )
    assert _stored_auth(clients.oras_config, server.host) == server.auth
    tags = clients.run(
        "oras", "repo", "tags", "--plain-http", *config, f"{server.host}/{tagged}"
    ).stdout.split()
    assert tags == ["v1"]
    clients.run("oras", "logout", *config, server.host)
    after = clients.run(
        "oras", "repo", "tags", "--plain-http", *config, f"{server.host}/{tagged}", check=False
    )
    assert after.returncode != 0


def test_regctl_login_tag_ls_logout(server: Server, tagged: str, clients: ClientEnv) -> None:
    clients.run("regctl", "registry", "set", "--tls", "disabled", server.host, check=False)
    wrong = clients.run(
        "regctl", "registry", "login", "-u", server.admin_user, "-p", "wrong", server.host, check=False
    )
    assert wrong.returncode != 0
    clients.run(
        "regctl",
        "registry",
        "login",
        "-u",
        server.admin_user,
        "--pass-stdin",
        server.host,
        input=server.admin_password,
    )
    assert (clients.home / ".regctl" / "config.json").exists()
    assert clients.run("regctl", "tag", "ls", f"{server.host}/{tagged}").stdout.split() == ["v1"]
    clients.run("regctl", "registry", "logout", server.host)
    assert clients.run("regctl", "tag", "ls", f"{server.host}/{tagged}", check=False).returncode != 0
