"""The README's offline example, run as written (against a live server, with the real crane)."""

from __future__ import annotations

import os
import re
import subprocess
from pathlib import Path

import pytest

from tests.support.peers import REPO, peer
from tests.support.server import CARGOBAY, Server

MARKER = "<!-- offline example: tests/e2e/test_readme_example.py runs this block -->"


def offline_example() -> str:
    readme = (REPO / "README.md").read_text()
    after = readme.split(MARKER, 1)[1]
    match = re.match(r"\s*```sh\n(.*?)\n```", after, re.S)
    assert match, "the README's offline example block is missing"
    return match.group(1)


@pytest.mark.slow
def test_the_readme_offline_example_pushes_lists_and_pulls(tmp_path: Path) -> None:
    with Server(data_dir=tmp_path / "data", admin_user="admin@cargobay.local") as server:
        script = (
            offline_example().replace("127.0.0.1:5000", server.host).replace(".venv/bin/cargobay", CARGOBAY)
        )
        work = tmp_path / "work"
        work.mkdir()
        env = {k: v for k, v in os.environ.items() if not k.startswith("CARGOBAY_")}
        env.update(
            PASSWORD=server.admin_password,
            CARGOBAY_DATA_DIR=str(server.data_dir),
            PATH=f"{Path(peer('crane')).parent}:{env['PATH']}",
            HOME=str(tmp_path / "home"),
            DOCKER_CONFIG=str(tmp_path / "docker"),
        )
        done = subprocess.run(
            ["bash", "-euo", "pipefail", "-c", script],
            cwd=work,
            env=env,
            capture_output=True,
            text=True,
            timeout=300,
        )
    assert done.returncode == 0, done.stdout + done.stderr
    assert "registry myreg (" in done.stdout
    lines = done.stdout.splitlines()
    assert "1.0" in lines and lines[-1] == "hello from cargobay"
