"""``deploy/``: the compose file and the Helm chart configure their Cargobay processes with exactly the
variables the scale-out test gives its own (tests/support/scaleout.py), with values Cargobay accepts;
``helm lint`` and ``helm template`` pass on the chart (helm from scripts/install-peers.sh)."""

from __future__ import annotations

import base64
import os
import subprocess
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
import yaml

from cargobay.config import Settings
from tests.support.peers import REPO, peer
from tests.support.scaleout import DEPLOYMENT_VARIABLES

DEPLOY = REPO / "deploy"
CHART = DEPLOY / "helm" / "cargobay"
MASTER_KEY = base64.b64encode(bytes(range(32))).decode()


def _configured(env: dict[str, str]) -> Settings:
    """What Cargobay makes of a process's environment (a bad value raises)."""
    saved = dict(os.environ)
    try:
        os.environ.clear()
        os.environ.update(env)
        return Settings()
    finally:
        os.environ.clear()
        os.environ.update(saved)


def _variables(env: dict[str, str]) -> set[str]:
    return {name for name in env if name.startswith(("CARGOBAY_", "AWS_"))}


# -- docker compose -------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    loaded = yaml.safe_load((DEPLOY / "compose" / "compose.yaml").read_text())
    assert isinstance(loaded, dict)
    return loaded


def test_compose_runs_three_api_replicas_one_worker_and_the_services_they_need(
    compose: dict[str, Any],
) -> None:
    services = compose["services"]
    assert services["api"]["deploy"]["replicas"] == 3 and services["api"]["command"] == ["serve"]
    assert services["worker"]["deploy"]["replicas"] == 1 and services["worker"]["command"] == ["worker"]
    assert services["migrate"]["command"] == ["migrate"]
    assert {"postgres", "s3", "lb"} <= set(services)
    nginx = (DEPLOY / "compose" / "nginx.conf").read_text()
    assert "server api:5000" in nginx and "client_max_body_size 0" in nginx


def test_compose_configures_every_process_as_the_scaleout_test_does(compose: dict[str, Any]) -> None:
    for name in ("api", "worker", "migrate"):
        env = {k: str(v) for k, v in compose["services"][name]["environment"].items()}
        assert _variables(env) == DEPLOYMENT_VARIABLES, name
        settings = _configured(env)
        assert settings.in_process_jobs is False
        assert settings.storage_url is not None and settings.storage_url.startswith("s3://")
        assert settings.resolved_database_url.startswith("postgresql+psycopg://")
        assert settings.trusted_proxies == ["172.30.0.10/32"]  # nginx's fixed address
    lb = compose["services"]["lb"]["networks"]["cargobay"]["ipv4_address"]
    assert lb == "172.30.0.10"


# -- the Helm chart -------------------------------------------------------------------------------


Helm = Callable[..., subprocess.CompletedProcess[str]]


@pytest.fixture(scope="module")
def helm(tmp_path_factory: pytest.TempPathFactory) -> Helm:
    """Run helm offline, with its cache and config in a directory of its own (never the user's)."""
    binary = peer("helm")
    home = tmp_path_factory.mktemp("helm-home")
    env = {
        **os.environ,
        "HELM_CACHE_HOME": str(home / "cache"),
        "HELM_CONFIG_HOME": str(home / "config"),
        "HELM_DATA_HOME": str(home / "data"),
    }

    def run(*args: str) -> subprocess.CompletedProcess[str]:
        return subprocess.run([binary, *args], capture_output=True, text=True, timeout=120, env=env)

    return run


def test_helm_lint_passes(helm: Helm) -> None:
    linted = helm("lint", "--strict", str(CHART), "--set", f"masterKey={MASTER_KEY}")
    assert linted.returncode == 0, linted.stdout + linted.stderr
    bare = helm("lint", str(CHART))  # without a master key: one is generated
    assert bare.returncode == 0, bare.stdout + bare.stderr


@pytest.fixture(scope="module")
def rendered(helm: Helm) -> dict[tuple[str, str], dict[str, Any]]:
    """``helm template`` of the chart, by (kind, name)."""
    done = helm("template", "reg", str(CHART), "--set", f"masterKey={MASTER_KEY}")
    assert done.returncode == 0, done.stderr
    documents = [d for d in yaml.safe_load_all(done.stdout) if d]
    return {(d["kind"], d["metadata"]["name"]): d for d in documents}


def test_the_chart_runs_three_api_replicas_one_worker_postgres_s3_and_nginx(
    rendered: dict[tuple[str, str], dict[str, Any]],
) -> None:
    api = rendered[("Deployment", "reg-cargobay-api")]["spec"]
    worker = rendered[("Deployment", "reg-cargobay-worker")]["spec"]
    assert api["replicas"] == 3 and worker["replicas"] == 1
    assert api["template"]["spec"]["containers"][0]["args"] == ["serve"]
    assert worker["template"]["spec"]["containers"][0]["args"] == ["worker"]
    for spec in (api, worker):
        assert spec["template"]["spec"]["initContainers"][0]["args"] == ["migrate"]
    assert ("StatefulSet", "reg-cargobay-postgres") in rendered
    assert ("StatefulSet", "reg-cargobay-s3") in rendered
    nginx = rendered[("ConfigMap", "reg-cargobay-lb")]["data"]["nginx.conf"]
    assert "server reg-cargobay-api:5000" in nginx and "client_max_body_size 0" in nginx
    assert rendered[("Service", "reg-cargobay-lb")]["spec"]["type"] == "LoadBalancer"


def test_the_chart_configures_every_process_as_the_scaleout_test_does(
    rendered: dict[tuple[str, str], dict[str, Any]],
) -> None:
    config = rendered[("ConfigMap", "reg-cargobay-config")]["data"]
    secret = rendered[("Secret", "reg-cargobay-env")]["stringData"]
    env = {**config, **secret}
    assert _variables(env) == DEPLOYMENT_VARIABLES
    settings = _configured(env)
    assert settings.in_process_jobs is False
    assert settings.storage_url == (
        "s3://cargobay/registry?endpoint_url=http://reg-cargobay-s3:7070&region=us-east-1"
    )
    assert settings.resolved_database_url.startswith("postgresql+psycopg://cargobay:")
    assert settings.resolved_database_url.endswith("@reg-cargobay-postgres:5432/cargobay")
    key_file = rendered[("Secret", "reg-cargobay-secrets")]["stringData"]["master.key"]
    assert key_file == MASTER_KEY and str(settings.master_key_file).endswith("/master.key")
    api = rendered[("Deployment", "reg-cargobay-api")]["spec"]["template"]["spec"]
    mounts = api["containers"][0]["volumeMounts"]
    assert any(Path(str(settings.master_key_file)).parent == Path(m["mountPath"]) for m in mounts)
    sources = api["containers"][0]["envFrom"]
    assert {s.get("configMapRef", s.get("secretRef"))["name"] for s in sources} == {
        "reg-cargobay-config",
        "reg-cargobay-env",
    }


def test_the_chart_generates_a_master_key_when_none_is_given(helm: Helm) -> None:
    done = helm("template", "reg", str(CHART))
    assert done.returncode == 0, done.stderr
    secrets = [
        d for d in yaml.safe_load_all(done.stdout) if d and d["metadata"]["name"] == "reg-cargobay-secrets"
    ]
    key = base64.b64decode(secrets[0]["stringData"]["master.key"], validate=True)
    assert len(key) == 32
