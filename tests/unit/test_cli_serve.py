"""``cargobay serve`` options that become settings: ``--no-jobs`` leaves the jobs to workers."""

from __future__ import annotations

import os
from pathlib import Path
from types import SimpleNamespace

import pytest
from typer.testing import CliRunner

from cargobay import cli, serving
from cargobay.config import Settings


@pytest.mark.parametrize(
    ("args", "env", "expected"),
    [
        (["--no-jobs"], None, False),
        (["--jobs"], "false", True),
        ([], "false", False),
        ([], None, True),
    ],
)
def test_serve_runs_jobs_in_process_unless_told_not_to(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, args: list[str], env: str | None, expected: bool
) -> None:
    # Set first, so whatever the command writes into the environment is undone after the test.
    monkeypatch.setenv("CARGOBAY_DATA_DIR", str(tmp_path))
    monkeypatch.setenv("CARGOBAY_IN_PROCESS_JOBS", env or "")
    if env is None:
        monkeypatch.delenv("CARGOBAY_IN_PROCESS_JOBS")
    served: list[Settings] = []
    runtime = SimpleNamespace(db=SimpleNamespace(dispose=lambda: None))
    monkeypatch.setattr(cli, "_prepare", lambda settings, create=False: runtime)
    monkeypatch.setattr(serving, "run", served.append)
    monkeypatch.setattr(serving, "metrics_directory", lambda: str(tmp_path / "metrics"))
    result = CliRunner().invoke(cli.app, ["serve", *args])
    assert result.exit_code == 0, result.output
    assert [s.in_process_jobs for s in served] == [expected]


def test_serve_collects_garbage_in_a_child_process_by_default(monkeypatch: pytest.MonkeyPatch) -> None:
    """The suite's servers turn it off (tests/support/server.py); the product's default is on."""
    for name in list(os.environ):
        if name.startswith("CARGOBAY_"):
            monkeypatch.delenv(name)
    assert Settings().gc_in_child_process is True
    monkeypatch.setenv("CARGOBAY_GC_IN_CHILD_PROCESS", "false")
    assert Settings().gc_in_child_process is False


def test_serve_removes_its_metrics_directory_when_settings_are_refused(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    # Set first, so what the command writes into the environment is undone after the test.
    monkeypatch.setenv("PROMETHEUS_MULTIPROC_DIR", "")
    monkeypatch.setenv("CARGOBAY_LISTEN", "")
    monkeypatch.setattr(serving.tempfile, "tempdir", str(tmp_path))
    monkeypatch.setenv("CARGOBAY_DATA_DIR", str(tmp_path / "data"))
    result = CliRunner().invoke(cli.app, ["serve", "--listen", "nowhere"])
    assert result.exit_code != 0
    assert "CARGOBAY_LISTEN: listen must be HOST:PORT" in result.output
    assert "Traceback" not in result.output
    assert list(tmp_path.glob("cargobay-metrics-*")) == []


def test_leftover_metrics_directories_of_dead_servers_are_pruned(tmp_path: Path) -> None:
    import subprocess
    import sys

    gone = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    dead_pid = int(gone.stdout)
    dead = tmp_path / f"cargobay-metrics-{dead_pid}-abc123"
    live = tmp_path / f"cargobay-metrics-{os.getpid()}-def456"
    older_release = tmp_path / "cargobay-metrics-jn9_hbh_"
    unrelated = tmp_path / "something-else"
    for directory in (dead, live, older_release, unrelated):
        directory.mkdir()
        (directory / "counter_1.db").write_bytes(b"x")
    assert serving.prune_stale_metrics_directories(tmp_path) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(
        p.name for p in (live, older_release, unrelated)
    )
