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


def test_scaling_benchmark_seeds_and_measures_every_section_at_two_small_sizes(tmp_path: Path) -> None:
    """``python -m benchmarks.scaling`` at 3 and 6 rows: the seeding still fits the schema, and every
    endpoint answers as it should (a wrong password 401, a manifest push 201, the rest 200)."""
    output = tmp_path / "scaling.json"
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "benchmarks.scaling",
            "--sizes",
            "3,6",
            "--requests",
            "2",
            "--warmup",
            "1",
            "--workdir",
            str(tmp_path / "work"),
            "--output",
            str(output),
        ],
        cwd=REPO,
        env={k: v for k, v in os.environ.items() if not k.startswith("CARGOBAY_")},
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    assert "p50 ms" in done.stdout and "6/3" in done.stdout
    results = json.loads(output.read_text())
    measurements = results["measurements"]
    every = {(s, n) for s in ("login", "catalog", "lists", "tokens", "flat") for n in (3, 6)}
    assert {(m["section"], m["rows"]) for m in measurements} == every
    wrong = [m for m in measurements if any(int(code) not in m["expected"] for code in m["statuses"])]
    assert not wrong, [(m["endpoint"], m["rows"], m["statuses"], m["extra"]) for m in wrong]
    assert all(m["p50_ms"] > 0 and m["cpu_ms_per_request"] is not None for m in measurements)
    by_name = {(m["endpoint"], m["rows"]): m for m in measurements}
    assert by_name[("GET /v2/_catalog, Bearer (1 registry)", 6)]["extra"] == {"repositories": 3}
    assert by_name[("repositories ?orderBy=-lastPush, first page", 6)]["extra"] == {"items": 6}
    assert by_name[("GET /auth/token scope=registry:catalog:* (contract of N)", 6)]["extra"]["jwt_bytes"] > 0
    endpoints = {m["endpoint"] for m in measurements}
    assert {(r["endpoint"], r["from_rows"], r["to_rows"]) for r in results["ratios"]} == {
        (e, 3, 6) for e in endpoints
    }
    assert {(s["section"], s["rows"]) for s in results["seeded"]} == every


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
