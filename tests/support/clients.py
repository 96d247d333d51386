"""Running real registry clients (skopeo, crane, oras, regctl) in a sealed-off environment.

Each test gets its own HOME, Docker config dir and auth files, so nothing reads or writes the
user's ``~/.docker``, ``~/.config/containers`` or ``~/.regctl``.
"""

from __future__ import annotations

import json
import os
import subprocess
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tests.support.peers import peer


@dataclass
class ClientEnv:
    root: Path
    extra_env: dict[str, str] = field(default_factory=dict)  # e.g. SSL_CERT_FILE for a test CA

    @property
    def home(self) -> Path:
        return self.root / "home"

    @property
    def docker_config(self) -> Path:
        return self.root / "docker"

    @property
    def auth_file(self) -> Path:
        """skopeo/containers auth file (``--authfile``, also ``REGISTRY_AUTH_FILE``)."""
        return self.root / "containers-auth.json"

    @property
    def workdir(self) -> Path:
        """Where tools run; files to push go here (oras takes relative paths only)."""
        return self.root / "work"

    @property
    def oras_config(self) -> Path:
        return self.root / "oras-config.json"

    def environ(self) -> dict[str, str]:
        for directory in (self.home, self.docker_config, self.workdir, self.root / "run", self.root / "xdg"):
            directory.mkdir(parents=True, exist_ok=True)
        keep = ("PATH", "LANG", "LC_ALL", "TMPDIR", "CARGOBAY_CACHE_DIR")
        env = {k: v for k, v in os.environ.items() if k in keep}
        env.update(
            HOME=str(self.home),
            DOCKER_CONFIG=str(self.docker_config),
            REGISTRY_AUTH_FILE=str(self.auth_file),
            XDG_RUNTIME_DIR=str(self.root / "run"),
            XDG_CONFIG_HOME=str(self.root / "xdg"),
            NO_PROXY="*",
            no_proxy="*",
        )
        env.update(self.extra_env)
        return env

    def run(
        self,
        tool: str,
        *args: str,
        check: bool = True,
        input: str | None = None,
        timeout: float = 300,
        text: bool = True,
    ) -> subprocess.CompletedProcess[Any]:
        result = subprocess.run(
            [peer(tool), *args],
            env=self.environ(),
            cwd=self.workdir,
            capture_output=True,
            text=text,
            input=input,
            timeout=timeout,
        )
        if check and result.returncode != 0:
            raise AssertionError(
                f"{tool} {' '.join(args)} exited {result.returncode}\n"
                f"stdout: {result.stdout[-3000:]!s}\nstderr: {result.stderr[-3000:]!s}"
            )
        return result

    def output(self, tool: str, *args: str, timeout: float = 300) -> bytes:
        """The exact bytes a tool writes to stdout (``crane blob`` and the like)."""
        return bytes(self.run(tool, *args, timeout=timeout, text=False).stdout)

    def json(self, tool: str, *args: str) -> Any:
        return json.loads(self.run(tool, *args).stdout)
