"""The benchmark harness (``python -m benchmarks``) still runs end to end: a tiny quick run.

The reference here is Debian's distribution 2.8 (``docker-registry``): the v3.1.1 build the real
benchmark compares against takes two minutes to compile, and only ``make bench`` installs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support.peers import REPO, peer

pytestmark = pytest.mark.slow


def test_quick_benchmark_run_measures_both_registries_and_writes_json(tmp_path: Path) -> None:
    for tool in ("docker-registry", "wrk", "go"):
        peer(tool)
    output = tmp_path / "results.json"
    args = [
        "--quick",
        "--reference",
        "docker-registry",
        "--only",
        "get,layers",
        "--layers",
        "3",
        "--no-crane",
        "--duration",
        "1",
        "--warmup",
        "1",
    ]
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks",
            *args,
            "--workdir",
            str(tmp_path / "work"),
            "--output",
            str(output),
        ],
        cwd=REPO,
        env={**os.environ, "CARGOBAY_CACHE_DIR": str(os.environ.get("CARGOBAY_CACHE_DIR", REPO / ".cache"))},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "manifest GET" in done.stdout
    results = json.loads(output.read_text())
    gets = [s for s in results["samples"] if s["metric"] == "manifest GET"]
    assert {s["subject"] for s in gets} == {
        "cargobay",
        "cargobay workers=2",
        "reference",
        "reference+htpasswd",
    }
    assert all(s["value"] > 0 and s["extra"]["non_2xx"] == 0 for s in gets)
    layers = {(s["subject"], s["metric"]) for s in results["samples"] if s["section"] == "layers"}
    assert {("cargobay", "push wall time"), ("reference", "pull wall time")} <= layers


def test_scanning_benchmark_runs_end_to_end_on_a_small_image(tmp_path: Path) -> None:
    peer("osv-scanner")
    args = ["--size-mib", "10", "--records", "300", "--repeat", "1", "--workdir", str(tmp_path)]
    done = subprocess.run(
        [sys.executable, "-m", "benchmarks.scan", *args],
        cwd=REPO,
        capture_output=True,
        text=True,
        timeout=600,
    )
    assert done.returncode == 0, done.stderr[-3000:]
    for line in ("cold  median", "warm  median", "osv-scanner  median", "speed-up over osv-scanner"):
        assert line in done.stdout
