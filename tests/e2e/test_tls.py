"""HTTPS served by `cargobay serve` itself: skopeo, crane and oras push and pull over TLS, trusting
a CA made in the test, with no insecure flag; the token realm and hostnames say https."""

from __future__ import annotations

import json
import random
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.support.clients import ClientEnv
from tests.support.images import make_image, sha256, tar_layer, write_oci_layout
from tests.support.server import Server
from tests.support.tls import Pki, make_pki

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def pki(tmp_path_factory: pytest.TempPathFactory) -> Pki:
    return make_pki(tmp_path_factory.mktemp("pki"))


@pytest.fixture(scope="module")
def tls_server(tmp_path_factory: pytest.TempPathFactory, pki: Pki) -> Iterator[Server]:
    base = tmp_path_factory.mktemp("tls")
    env = {"CARGOBAY_TLS_CERT_FILE": str(pki.cert_file), "CARGOBAY_TLS_KEY_FILE": str(pki.key_file)}
    with Server(data_dir=base / "data", extra_env=env, ca_file=pki.ca_file) as server:
        server.create_registry("secure")
        yield server


@pytest.fixture
def tls_clients(tmp_path: Path, pki: Pki) -> ClientEnv:
    root = tmp_path / "clients"
    root.mkdir()
    return ClientEnv(root, extra_env={"SSL_CERT_FILE": str(pki.ca_file)})


def test_the_token_challenge_and_hostnames_say_https(tls_server: Server) -> None:
    challenge = httpx.get(f"{tls_server.url}/v2/", verify=tls_server.verify).headers["www-authenticate"]
    assert f'realm="https://{tls_server.host}/auth/token"' in challenge
    registries = httpx.get(
        f"{tls_server.url}/containerregistries/registries", auth=tls_server.auth, verify=tls_server.verify
    ).json()
    assert all(item["href"].startswith("https://") for item in registries["items"])
    with pytest.raises(httpx.ConnectError):  # a client that does not trust the CA refuses the server
        httpx.get(f"{tls_server.url}/v2/")


def test_skopeo_copies_in_and_out_over_tls(
    tls_server: Server, tls_clients: ClientEnv, pki: Pki, tmp_path: Path
) -> None:
    certs = tmp_path / "certs.d"
    certs.mkdir()
    (certs / "ca.crt").write_bytes(pki.ca_file.read_bytes())
    image = make_image(random.Random(3))
    layout = write_oci_layout(tmp_path / "layout", {"v1": image})
    creds = f"{tls_server.admin_user}:{tls_server.admin_password}"
    target = f"docker://{tls_server.host}/secure/skopeo/app:v1"
    tls_clients.run(
        "skopeo", "--insecure-policy", "copy", "--dest-cert-dir", str(certs), "--dest-creds", creds,
        f"oci:{layout}:v1", target,
    )  # fmt: skip
    out = tmp_path / "out"
    tls_clients.run(
        "skopeo", "--insecure-policy", "copy", "--src-cert-dir", str(certs), "--src-creds", creds,
        target, f"oci:{out}:v1",
    )  # fmt: skip
    index = json.loads((out / "index.json").read_text())
    assert index["manifests"][0]["digest"] == image.digest


def test_crane_pushes_and_pulls_over_tls(tls_server: Server, tls_clients: ClientEnv, tmp_path: Path) -> None:
    tls_clients.run(
        "crane",
        "auth",
        "login",
        tls_server.host,
        "-u",
        tls_server.admin_user,
        "-p",
        tls_server.admin_password,
    )
    tls_clients.workdir.mkdir(parents=True, exist_ok=True)
    layer = tls_clients.workdir / "layer.tar.gz"
    layer.write_bytes(tar_layer(random.Random(5), [4096, 70_000]))
    ref = f"{tls_server.host}/secure/crane/app:v1"
    tls_clients.run("crane", "append", "-f", str(layer), "-t", ref)
    manifest = json.loads(tls_clients.run("crane", "manifest", ref).stdout)
    assert manifest["layers"][0]["digest"] == sha256(layer.read_bytes())
    blob = tls_clients.output(
        "crane", "blob", f"{tls_server.host}/secure/crane/app@{sha256(layer.read_bytes())}"
    )
    assert blob == layer.read_bytes()


def test_oras_pushes_and_pulls_over_tls(tls_server: Server, tls_clients: ClientEnv, pki: Pki) -> None:
    tls_clients.workdir.mkdir(parents=True, exist_ok=True)
    artifact = tls_clients.workdir / "notes.txt"
    artifact.write_text("pushed over TLS\n")
    ref = f"{tls_server.host}/secure/oras/notes:v1"
    login = ["-u", tls_server.admin_user, "-p", tls_server.admin_password, "--ca-file", str(pki.ca_file)]
    tls_clients.run("oras", "push", *login, ref, "notes.txt:text/plain")
    artifact.unlink()
    tls_clients.run("oras", "pull", *login, ref)
    assert artifact.read_text() == "pushed over TLS\n"


def test_behind_a_trusted_tls_proxy_links_say_https(tmp_path: Path) -> None:
    """A TLS-terminating proxy in CARGOBAY_TRUSTED_PROXIES forwards plain HTTP with
    X-Forwarded-Proto: https; from anyone else the header is ignored."""
    env = {"CARGOBAY_TRUSTED_PROXIES": '["127.0.0.1/32"]'}
    with Server(data_dir=tmp_path / "data", extra_env=env) as proxied:
        forwarded = httpx.get(f"{proxied.url}/v2/", headers={"X-Forwarded-Proto": "https"})
        assert f'realm="https://{proxied.host}/auth/token"' in forwarded.headers["www-authenticate"]
    with Server(data_dir=tmp_path / "data2") as direct:
        spoofed = httpx.get(f"{direct.url}/v2/", headers={"X-Forwarded-Proto": "https"})
        assert f'realm="http://{direct.host}/auth/token"' in spoofed.headers["www-authenticate"]
