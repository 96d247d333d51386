"""``cargobay serve`` options that become settings: ``--no-jobs`` leaves the jobs to workers."""

from __future__ import annotations

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
