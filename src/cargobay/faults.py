"""Crash points, a seam for crash tests: ``CARGOBAY_CRASH_AT=name`` (or ``name:n``) ends the process
with ``os._exit`` the first (n-th) time the named point is passed, as a power cut would: no cleanup,
no flush. Unset, every crash point does nothing. With ``CARGOBAY_CRASH_ONCE=FILE`` as well, the crash
happens once across processes (a job's retry runs in a new child process): the file is created just
before it, and no crash point fires while the file exists."""

from __future__ import annotations

import os

EXIT_CODE = 86
_passes: dict[str, int] = {}


def crash_point(name: str) -> None:
    spec = os.environ.get("CARGOBAY_CRASH_AT")
    if not spec:
        return
    target, _, count = spec.partition(":")
    if target != name:
        return
    _passes[name] = _passes.get(name, 0) + 1
    if _passes[name] >= int(count or 1):
        once = os.environ.get("CARGOBAY_CRASH_ONCE")
        if once:
            try:
                os.close(os.open(once, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
            except FileExistsError:
                return
        os._exit(EXIT_CODE)
