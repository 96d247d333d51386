"""How ``cargobay serve`` runs uvicorn: TLS, worker processes, and limits that keep slow or idle
clients from holding the server's connections.

* A connection must deliver a complete request head within ``CARGOBAY_HEAD_TIMEOUT_SECONDS`` of
  opening (or of starting its next request): a client sending a header line every few seconds is
  dropped, not served forever. Dropped connections are logged, a line per burst, not per connection.
* Each process serves at most ``CARGOBAY_MAX_CONNECTIONS`` connections and requests at once; beyond
  that uvicorn answers 503. The default follows the open-file limit, which is raised to its hard
  ceiling first, so the limit bites before the process runs out of descriptors.
"""

from __future__ import annotations

import asyncio
import os
import resource
import shutil
import tempfile
import time
from pathlib import Path
from typing import Any

import uvicorn
from uvicorn.protocols.http.httptools_impl import HttpToolsProtocol

from cargobay.config import Settings
from cargobay.logs import get_logger

log = get_logger("cargobay.serving")
_HEAD_TIMEOUT_ENV = "CARGOBAY_HEAD_TIMEOUT_SECONDS"
_RESERVED_FDS = 64  # descriptors kept for files, the database and the blob store


class GuardedHttpToolsProtocol(HttpToolsProtocol):
    """uvicorn's httptools protocol with a deadline for each request head."""

    head_timeout = float(os.environ.get(_HEAD_TIMEOUT_ENV, "10"))
    _dropped = 0
    _reported_at = 0.0

    def connection_made(self, transport: asyncio.Transport) -> None:  # type: ignore[override]
        self._head_timer: asyncio.TimerHandle | None = None
        super().connection_made(transport)
        self._arm_head_timer()

    def on_message_begin(self) -> None:
        super().on_message_begin()
        if self._head_timer is None:  # the next request of a kept-alive connection
            self._arm_head_timer()

    def on_headers_complete(self) -> None:
        self._disarm_head_timer()
        super().on_headers_complete()

    def connection_lost(self, exc: Exception | None) -> None:
        self._disarm_head_timer()
        super().connection_lost(exc)

    def _arm_head_timer(self) -> None:
        self._head_timer = self.loop.call_later(self.head_timeout, self._head_expired)

    def _disarm_head_timer(self) -> None:
        if self._head_timer is not None:
            self._head_timer.cancel()
            self._head_timer = None

    def _head_expired(self) -> None:
        self._head_timer = None
        if self.transport.is_closing():
            return
        self.transport.close()
        cls = GuardedHttpToolsProtocol
        cls._dropped += 1
        now = time.monotonic()
        if now - cls._reported_at >= 10:
            log.warning(
                "slow_clients_dropped",
                count=cls._dropped,
                head_timeout_seconds=self.head_timeout,
                hint="connections that sent no complete request head in time were closed",
            )
            cls._dropped, cls._reported_at = 0, now


def raise_open_file_limit() -> int:
    """Raise the soft open-file limit to the hard one; returns the limit in force."""
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if hard == resource.RLIM_INFINITY or soft < hard:
        target = hard if hard != resource.RLIM_INFINITY else max(soft, 1 << 20)
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def connection_limit(settings: Settings, open_files: int) -> int:
    if settings.max_connections is not None:
        return settings.max_connections
    return max(16, min(10_000, open_files - _RESERVED_FDS))


def run(settings: Settings) -> None:
    """Serve until stopped (SIGTERM/SIGINT), with ``settings.worker_count`` processes."""
    open_files = raise_open_file_limit()
    os.environ[_HEAD_TIMEOUT_ENV] = str(settings.head_timeout_seconds)
    GuardedHttpToolsProtocol.head_timeout = settings.head_timeout_seconds
    workers = settings.worker_count
    options: dict[str, Any] = {}
    if settings.tls:
        options.update(ssl_certfile=str(settings.tls_cert_file), ssl_keyfile=str(settings.tls_key_file))
    uvicorn.run(
        "cargobay.app:create_app",
        factory=True,
        host=settings.host,
        port=settings.port,
        workers=workers if workers > 1 else None,
        loop="uvloop",
        http=GuardedHttpToolsProtocol,
        lifespan="on",
        access_log=False,  # ours, with the route, registry and caller, is in cargobay.app
        log_config=None,  # logging is configured by cargobay.logs in every process
        # X-Forwarded-For is believed only from CARGOBAY_TRUSTED_PROXIES (domain/allowlist.py);
        # uvicorn's own proxy handling would trust loopback peers and bypass the allowlist.
        proxy_headers=False,
        server_header=False,
        limit_concurrency=connection_limit(settings, open_files),
        timeout_keep_alive=5,
        timeout_graceful_shutdown=10,
        **options,
    )


_METRICS_PREFIX = "cargobay-metrics-"


def metrics_directory() -> str:
    """A fresh directory for the multiprocess metrics of this server run, set in the environment
    before anything imports ``prometheus_client`` (worker processes inherit it).

    Its name carries the server's process id; directories left by servers that were killed
    (SIGKILL, OOM) are removed here, so a host restarting servers does not collect them."""
    prune_stale_metrics_directories()
    directory = tempfile.mkdtemp(prefix=f"{_METRICS_PREFIX}{os.getpid()}-")
    os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory  # observability.MULTIPROCESS_ENV
    return directory


def prune_stale_metrics_directories(root: Path | None = None) -> int:
    """Remove the metrics directories whose server process is gone; return how many."""
    removed = 0
    for entry in (root or Path(tempfile.gettempdir())).glob(f"{_METRICS_PREFIX}*"):
        pid_text, dash, _ = entry.name.removeprefix(_METRICS_PREFIX).partition("-")
        if not (dash and pid_text.isdigit()) or _process_alive(int(pid_text)):
            continue  # another naming (an older release's: left alone) or a live server's
        shutil.rmtree(entry, ignore_errors=True)
        removed += 1
    return removed


def _process_alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's live process
    return True
