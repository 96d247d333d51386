"""Structured logging: one event name plus fields, as key=value lines or JSON (``CARGOBAY_LOG_FORMAT``).

Our own events go through structlog; records of libraries (uvicorn, SQLAlchemy, Alembic) are
rendered by the same renderer, so a log is one format whatever wrote it. Secrets are never fields of
an event: no header, body or query string is logged anywhere.
"""

from __future__ import annotations

import logging
import sys
import threading

import structlog

FORMATS = ("console", "json")


class _OnceThenDebug(logging.Filter):
    """uvicorn warns ``Invalid HTTP request received.`` for every TLS handshake that reaches the
    plain-HTTP port: clients with TLS verification off try HTTPS first, so normal use fills the log.
    The first one is explained at warning level, the rest go to debug."""

    def __init__(self) -> None:
        super().__init__()
        self._seen = False
        self._lock = threading.Lock()

    def filter(self, record: logging.LogRecord) -> bool:
        if record.getMessage() != "Invalid HTTP request received.":
            return True
        with self._lock:
            first, self._seen = not self._seen, True
        if first:
            record.msg = (
                "invalid HTTP request received (clients with TLS verification off try HTTPS first on "
                "this plain-HTTP port; such requests are logged at debug level from now on)"
            )
            return True
        record.levelno, record.levelname = logging.DEBUG, "DEBUG"
        return logging.getLogger(record.name).isEnabledFor(logging.DEBUG)


def configure_logging(level: str = "info", fmt: str = "console") -> None:
    numeric = logging.getLevelName(level.upper())
    if not isinstance(numeric, int):
        numeric = logging.INFO
    renderer: structlog.typing.Processor = (
        structlog.processors.JSONRenderer()
        if fmt == "json"
        # Plain tracebacks: the default (rich, with every frame's locals) can take tens of seconds
        # to render an exception, on the event loop.
        else structlog.dev.ConsoleRenderer(colors=False, exception_formatter=structlog.dev.plain_traceback)
    )
    stamped: list[structlog.typing.Processor] = [
        structlog.processors.add_log_level,
        structlog.processors.TimeStamper(fmt="iso", utc=True),
    ]
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
            foreign_pre_chain=[structlog.stdlib.add_logger_name, *stamped],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(numeric)
    logging.getLogger("alembic").setLevel(logging.WARNING)
    # uvicorn's start-up chatter stays out unless asked for; its warnings and errors come through.
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access"):
        logging.getLogger(name).setLevel(
            max(numeric, logging.WARNING) if numeric > logging.DEBUG else numeric
        )
    uvicorn = logging.getLogger("uvicorn.error")
    if not any(isinstance(f, _OnceThenDebug) for f in uvicorn.filters):
        uvicorn.addFilter(_OnceThenDebug())
    structlog.configure(
        processors=[structlog.contextvars.merge_contextvars, *stamped, renderer],
        wrapper_class=structlog.make_filtering_bound_logger(numeric),
        logger_factory=structlog.PrintLoggerFactory(sys.stderr),
        cache_logger_on_first_use=True,
    )


def get_logger(name: str) -> structlog.typing.FilteringBoundLogger:
    return structlog.get_logger(name)  # type: ignore[no-any-return]
