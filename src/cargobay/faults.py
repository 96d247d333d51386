"""Crash points, a seam for crash tests: ``CARGOBAY_CRASH_AT=name`` (or ``name:n``) ends the process
with ``os._exit`` the first (n-th) time the named point is passed, as a power cut would: no cleanup,
no flush. Unset, every crash point does nothing."""

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
        os._exit(EXIT_CODE)
