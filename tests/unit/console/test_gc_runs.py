"""The garbage collection pages' pieces: the dry-run box as a form sends it, a running run's phase,
progress and time left (a browser test sees runs only once they are done), and durations."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest
from starlette.datastructures import ImmutableMultiDict

from cargobay.console.app import templates
from cargobay.console.pages.garbage_collection import PHASE_LABELS, dry_run_input
from cargobay.domain.errors import InvalidInput
from cargobay.services.gc_runs import RunView

STARTED = datetime(2026, 12, 7, 18, 0, tzinfo=UTC)
RUNNING = RunView(
    id=7,
    registry_id="r",
    trigger="api",
    requested_by="owner@example.com",
    dry_run=False,
    grace_seconds=86_400,
    untagged_manifests="keep",
    state="running",
    phase="blobs",
    done=120,
    total=500,
    eta_seconds=95.4,
    candidates=120,
    blobs_freed=100,
    bytes_freed=5_000_000,
    manifests_deleted=0,
    uploads_expired=0,
    objects_deleted=90,
    orphans_found=0,
    orphans_deleted=0,
    error=None,
    created_at=STARTED,
    started_at=STARTED,
    finished_at=None,
)


def _progress(run: RunView) -> str:
    macros = templates().env.get_template("macros.html").module
    return " ".join(str(macros.run_progress(run, PHASE_LABELS)).split())  # type: ignore[attr-defined]


def test_the_dry_run_box_is_ticked_or_not() -> None:
    assert dry_run_input(ImmutableMultiDict({"dry_run": "on"})) is True
    assert dry_run_input(ImmutableMultiDict({})) is False
    with pytest.raises(InvalidInput) as raised:
        dry_run_input(ImmutableMultiDict({"dry_run": "true"}))
    assert raised.value.field == "dry_run"


def test_a_running_run_shows_its_phase_progress_and_time_left() -> None:
    assert _progress(RUNNING) == "Unreferenced blobs: 120 of 500, about 1 min 35 s left"
    assert _progress(replace(RUNNING, eta_seconds=None)) == "Unreferenced blobs: 120 of 500"
    assert "Waiting for a server or worker" in _progress(replace(RUNNING, state="queued", phase=None))
    done = replace(RUNNING, state="succeeded", phase=None, finished_at=STARTED + timedelta(seconds=42))
    assert _progress(done) == "Took 42 s"
    failed = replace(done, state="failed", phase="sweep")
    assert _progress(failed) == "Stopped after 42 s, in “Sweeping the store”"


@pytest.mark.parametrize(
    ("seconds", "shown"),
    [
        (None, "—"),
        (0, "0 s"),
        (59.4, "59 s"),
        (60, "1 min"),
        (125, "2 min 5 s"),
        (86_400, "24 h"),
        (5400, "1 h 30 min"),
    ],
)
def test_durations_read_in_words(seconds: float | None, shown: str) -> None:
    assert templates().env.filters["duration"](seconds) == shown
