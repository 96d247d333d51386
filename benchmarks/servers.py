"""The servers under test, each started fresh on a free loopback port with its own temp data dir.

* ``CargobayServer``: ``cargobay serve`` (``--workers N``), registry ``bench`` created up front,
  clients authenticate with a Bearer JWT from ``/auth/token`` (what real clients use).
* ``ReferenceRegistry``: CNCF distribution (``registry-v3`` v3.1.1, or Debian's ``docker-registry``
  2.8) with filesystem storage, delete enabled, its shipped in-memory blob-descriptor cache and the
  access log off (Cargobay logs no access lines either); optionally htpasswd (bcrypt) auth.
* ``CeilingServer``: the benchmark client's own Go server, serving the blob file with sendfile and
  swallowing uploads: what the client and loopback can do with no registry work at all.
"""

from __future__ import annotations

import base64
import contextlib
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
CACHE_DIR = Path(os.environ.get("CARGOBAY_CACHE_DIR", REPO_ROOT / ".cache"))
REGISTRY = "bench"
ADMIN_USER = "bench@example.com"
ADMIN_PASSWORD = "bench-password-1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def find_binary(name: str, env: str | None = None, fallback: str | None = None) -> str | None:
    """A peer binary: ``$env``, then the peers cache (``make peers``), then PATH."""
    if env and os.environ.get(env) and os.access(os.environ[env], os.X_OK):
        return os.environ[env]
    cached = CACHE_DIR / "bin" / name
    if cached.is_file() and os.access(cached, os.X_OK):
        return str(cached)
    return shutil.which(name) or (shutil.which(fallback) if fallback else None)


def http_status(url: str, headers: dict[str, str] | None = None, timeout: float = 2) -> int | None:
    request = urllib.request.Request(url, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=timeout) as response:
            return int(response.status)
    except urllib.error.HTTPError as exc:
        return int(exc.code)
    except (urllib.error.URLError, OSError):
        return None


def basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


class Server:
    """A server process in its own session (so the whole tree can be signalled)."""

    kind = "server"

    def __init__(self, base: Path, label: str) -> None:
        self.base = base
        self.label = label
        self.port = free_port()
        self.data_dir = base / "data"
        self.log_path = base / "server.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def host(self) -> str:
        return f"127.0.0.1:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.host}"

    @property
    def pid(self) -> int:
        assert self.process is not None
        return self.process.pid

    def command(self) -> list[str]:
        raise NotImplementedError

    def environment(self) -> dict[str, str]:
        return dict(os.environ)

    def ready(self) -> bool:
        return http_status(f"{self.url}/v2/") in (200, 401)

    def prepare(self) -> None:
        """Set-up before the process starts (config files, registries)."""

    def start(self, timeout: float = 60) -> Server:
        self.base.mkdir(parents=True, exist_ok=True)
        self.data_dir.mkdir(parents=True, exist_ok=True)
        self.prepare()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                self.command(),
                env=self.environment(),
                stdout=log,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise RuntimeError(f"{self.label} exited with {self.process.returncode}:\n{self.log_tail()}")
            if self.ready():
                return self
            time.sleep(0.05)
        self.stop()
        raise RuntimeError(f"{self.label} did not become ready:\n{self.log_tail()}")

    def log_tail(self, lines: int = 30) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return ""

    def stop(self) -> None:
        if self.process is None or self.process.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.process.pid, signal.SIGTERM)
        try:
            self.process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()

    def remove(self) -> None:
        self.stop()
        shutil.rmtree(self.base, ignore_errors=True)

    def authorization(self, repository: str) -> str | None:
        """The Authorization header value a client uses for pull+push on ``repository``."""
        return None

    def __enter__(self) -> Server:
        return self.start()

    def __exit__(self, *exc: object) -> None:
        self.remove()


class CargobayServer(Server):
    kind = "cargobay"

    def __init__(self, base: Path, workers: int = 1, encryption: bool = False) -> None:
        super().__init__(base, f"cargobay (workers={workers}, encryption={'on' if encryption else 'off'})")
        self.workers = workers
        self.encryption = encryption
        self.cargobay = str(Path(sys.executable).parent / "cargobay")
        if not os.access(self.cargobay, os.X_OK):
            self.cargobay = shutil.which("cargobay") or "cargobay"

    def environment(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("CARGOBAY_")}
        env.update(
            CARGOBAY_DATA_DIR=str(self.data_dir),
            CARGOBAY_LISTEN=self.host,
            CARGOBAY_ADMIN_USER=ADMIN_USER,
            CARGOBAY_ADMIN_PASSWORD=ADMIN_PASSWORD,
            CARGOBAY_WORKERS=str(self.workers),
            CARGOBAY_ENCRYPTION="true" if self.encryption else "false",
            CARGOBAY_LOG_LEVEL="warning",
        )
        return env

    def command(self) -> list[str]:
        return [self.cargobay, "serve", "--workers", str(self.workers)]

    def ready(self) -> bool:
        return http_status(f"{self.url}/healthz") == 200

    def prepare(self) -> None:
        # `migrate` makes the installation (admin commands never do) with the bootstrap owner, so the
        # registry can exist before serving.
        for command in (["migrate"], ["registry", "create", REGISTRY]):
            subprocess.run(
                [self.cargobay, *command],
                env=self.environment(),
                check=True,
                capture_output=True,
                timeout=120,
            )

    def basic_authorization(self) -> str:
        return basic(ADMIN_USER, ADMIN_PASSWORD)

    def authorization(self, repository: str) -> str:
        """A fresh Bearer JWT (5 min) for pull+push on ``repository``; audience = our Host value."""
        query = urllib.parse.urlencode({"service": self.host, "scope": f"repository:{repository}:pull,push"})
        request = urllib.request.Request(
            f"{self.url}/auth/token?{query}", headers={"Authorization": self.basic_authorization()}
        )
        with urllib.request.urlopen(request, timeout=30) as response:
            token = json.loads(response.read())["token"]
        return f"Bearer {token}"


REFERENCE_BINARIES = {
    "registry-v3": ("registry-v3", "CARGOBAY_REGISTRY_V3", "CNCF distribution v3.1.1 (registry-v3)"),
    "docker-registry": ("docker-registry", "CARGOBAY_REGISTRY_V2", "CNCF distribution 2.8 (docker-registry)"),
}


class ReferenceRegistry(Server):
    kind = "reference"

    def __init__(self, base: Path, flavour: str = "registry-v3", htpasswd: bool = False) -> None:
        name, env, description = REFERENCE_BINARIES[flavour]
        super().__init__(base, f"{description}{' + htpasswd' if htpasswd else ''}")
        binary = find_binary(name, env)
        if binary is None:
            raise RuntimeError(f"reference registry {name} not found (run `make peers`)")
        self.binary = binary
        self.htpasswd = htpasswd
        self.user, self.password = "bench", "bench-password-1"

    def prepare(self) -> None:
        auth = ""
        if self.htpasswd:
            htpasswd = shutil.which("htpasswd")
            if htpasswd is None:
                raise RuntimeError("htpasswd (apache2-utils) not found (run `make peers`)")
            line = subprocess.run(
                [htpasswd, "-Bbn", self.user, self.password], check=True, capture_output=True, text=True
            ).stdout.strip()
            (self.base / "htpasswd").write_text(line + "\n")
            auth = f"auth:\n  htpasswd:\n    realm: bench\n    path: {self.base / 'htpasswd'}\n"
        config = (
            "version: 0.1\n"
            "log:\n  level: warn\n  accesslog:\n    disabled: true\n"
            "storage:\n"
            f"  filesystem:\n    rootdirectory: {self.data_dir}\n"
            "  delete:\n    enabled: true\n"
            "  cache:\n    blobdescriptor: inmemory\n"
            f"http:\n  addr: {self.host}\n  secret: cargobay-bench-secret\n"
            f"{auth}"
        )
        (self.base / "config.yml").write_text(config)

    def command(self) -> list[str]:
        return [self.binary, "serve", str(self.base / "config.yml")]

    def environment(self) -> dict[str, str]:
        env = dict(os.environ)
        env.setdefault("OTEL_TRACES_EXPORTER", "none")  # v3 would otherwise try to export traces
        return env

    def authorization(self, repository: str) -> str | None:
        return basic(self.user, self.password) if self.htpasswd else None


class CeilingServer(Server):
    kind = "ceiling"

    def __init__(self, base: Path, client_binary: Path, file: Path) -> None:
        super().__init__(base, "client ceiling (Go sendfile server / upload sink)")
        self.client_binary = client_binary
        self.file = file

    def command(self) -> list[str]:
        return [str(self.client_binary), "serve", "-listen", self.host, "-file", str(self.file)]

    def ready(self) -> bool:
        return http_status(f"{self.url}/") == 200
