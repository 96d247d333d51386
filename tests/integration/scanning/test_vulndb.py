"""The vulnerability database: importing OSV files, folders and zip dumps, upserts by id and modified,
withdrawn records, the alias index, versions, and the sync from a loopback HTTP server."""

from __future__ import annotations

import copy
import json
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select

from cargobay.db.engine import Database
from cargobay.db.models import AdvisoryChange, Job
from cargobay.db.queries import vulndb as store
from cargobay.runtime import Runtime
from cargobay.scanning.osvfiles import SourceError
from cargobay.services import vulndb as service
from cargobay.services.vulndb import VulnerabilityDatabase, dump_url, parse_time
from tests.support import osv_records as R
from tests.support import plans
from tests.support.osv_mirror import DumpServer
from tests.support.vulnimages import write_records, write_zip


@pytest.fixture
def vulndb(runtime: Runtime) -> VulnerabilityDatabase:
    return runtime.services.vulndb


def _records(db: Database, ecosystem: str, name: str) -> list[str]:
    found = db.read_sync(store.records_for, [(ecosystem, name)])
    return sorted(r.id for r in found[(ecosystem, name)])


def _newer(record: dict[str, Any], modified: str, **changes: Any) -> dict[str, Any]:
    copied = copy.deepcopy(record)
    copied["modified"] = modified
    copied.update(changes)
    return copied


def test_import_of_files_folders_and_zips(
    vulndb: VulnerabilityDatabase, db: Database, tmp_path: Path
) -> None:
    single = tmp_path / "one.json"
    single.write_text(json.dumps(R.DEBIAN_CVE_2023_4911))
    folder = write_records(tmp_path / "folder", [R.DEBIAN_CVE_2024_28085, R.DSA_5650_1])
    dump = write_zip(tmp_path / "PyPI" / "all.zip", [R.GHSA_REQUESTS, R.PYSEC_2023_74])
    array = tmp_path / "array.json"
    array.write_text(json.dumps([R.GHSA_LODASH, R.GO_2023_2102]))
    seen: list[tuple[int, int]] = []

    report = vulndb.import_paths(
        [single, folder, dump, array], lambda done, total: seen.append((done, total))
    )

    assert (report.records, report.added, report.problem_count) == (7, 7, 0)
    assert report.version == 1 and seen[-1] == (6, 6)  # six documents in all
    assert _records(db, "Debian:12", "util-linux") == ["DEBIAN-CVE-2024-28085", "DSA-5650-1"]
    assert _records(db, "PyPI", "requests") == ["GHSA-j8r2-6x86-q33q", "PYSEC-2023-74"]  # "Requests" too
    assert _records(db, "Go", "golang.org/x/net") == ["GO-2023-2102"]
    assert vulndb.state().advisories == 7
    rescans = db.read_sync(lambda s: list(s.scalars(select(Job.kind).where(Job.kind == service.RESCAN_JOB))))
    assert rescans == [service.RESCAN_JOB]


def test_the_records_of_many_keys_are_read_by_index_and_parsed_once(
    vulndb: VulnerabilityDatabase, db: Database, tmp_path: Path
) -> None:
    """Keys are asked per ecosystem (``ecosystem = ? AND name IN (...)``): SQLite reads a row-value IN
    list of keys by scanning every record's keys; bodies are read only for records not parsed yet."""
    vulndb.import_paths([write_records(tmp_path, [R.DEBIAN_CVE_2024_28085, R.DSA_5650_1, R.GHSA_REQUESTS])])
    keys = [("Debian:12", "util-linux"), ("Debian:12", "glibc"), ("PyPI", "requests"), ("npm", "absent")]

    with plans.statements(db) as first:
        found = db.read_sync(lambda s: vulndb.records_for(s, keys))
    with plans.statements(db) as again:
        assert db.read_sync(lambda s: vulndb.records_for(s, keys)) == found

    assert {k: sorted(r.id for r in v) for k, v in found.items()} == {
        ("Debian:12", "util-linux"): ["DEBIAN-CVE-2024-28085", "DSA-5650-1"],
        ("Debian:12", "glibc"): [],
        ("PyPI", "requests"): ["GHSA-j8r2-6x86-q33q"],
        ("npm", "absent"): [],
    }
    assert sum("advisories.body" in q for q, _ in first) == 1
    assert not any("advisories.body" in q for q, _ in again)  # every record parsed and cached
    for query, parameters in [(q, p) for q, p in first if "advisory_packages" in q]:
        plan = plans.plan(db, query, parameters)
        if db.is_sqlite:
            assert "SEARCH advisory_packages USING COVERING INDEX" in plan, plan
        else:
            assert "Seq Scan" not in plan, plan


def test_a_cve_id_finds_every_record_naming_it(
    vulndb: VulnerabilityDatabase, db: Database, tmp_path: Path
) -> None:
    vulndb.import_paths([write_records(tmp_path, R.ALL)])

    def named(ident: str) -> list[str]:
        return [r.id for r in db.read_sync(store.records_named, ident)]

    assert named("CVE-2024-28085") == ["DEBIAN-CVE-2024-28085", "DSA-5650-1"]
    assert named("CVE-2023-4911") == ["DEBIAN-CVE-2023-4911", "DSA-5514-1"]
    assert named("CVE-2021-44228") == ["GHSA-jfh8-c2jp-5v3q"]
    assert named("DSA-5514-1") == ["DSA-5514-1"]
    assert named("GHSA-j8r2-6x86-q33q") == ["GHSA-j8r2-6x86-q33q", "PYSEC-2023-74"]  # PYSEC aliases it
    assert named("GHSA-withdrawn-test") == []
    assert named("CVE-1999-0001") == []


def test_an_advisory_view_merges_the_records_of_a_cve(
    vulndb: VulnerabilityDatabase, db: Database, tmp_path: Path
) -> None:
    vulndb.import_paths([write_records(tmp_path, R.ALL)])
    view = db.read_sync(vulndb.advisory, "CVE-2023-4911")
    assert view is not None
    assert view.id == "CVE-2023-4911" and view.data_source == "DEBIAN-CVE-2023-4911"
    assert view.description.startswith("A buffer overflow was discovered in the GNU C Library")
    assert (view.severity, view.score) == ("high", 7.8)
    assert view.fixable and {a.name for a in view.affects} == {"glibc"}
    assert any(a.versions == "<2.36-9+deb12u3" and a.type == "deb" for a in view.affects)
    assert set(view.aliases) >= {"DEBIAN-CVE-2023-4911", "DSA-5514-1"}
    assert view.published == parse_time("2023-10-03T00:00:00Z")  # the earliest record
    assert db.read_sync(vulndb.advisory, "CVE-2000-0001") is None


def test_upserts_follow_modified(vulndb: VulnerabilityDatabase, db: Database, tmp_path: Path) -> None:
    vulndb.import_paths([write_records(tmp_path / "v1", [R.GHSA_LODASH])])
    older = _newer(R.GHSA_LODASH, "2020-01-01T00:00:00Z", affected=[])
    report = vulndb.import_paths([write_records(tmp_path / "old", [older])])
    assert (report.unchanged, report.updated, report.version) == (1, 0, None)
    assert _records(db, "npm", "lodash") == ["GHSA-35jh-r3h4-6jhm"]

    moved = _newer(
        R.GHSA_LODASH,
        "2025-01-01T00:00:00.123456789Z",  # nanoseconds, as Go writes them
        affected=[{"package": {"ecosystem": "npm", "name": "lodash-es"}, "ranges": []}],
    )
    report = vulndb.import_paths([write_records(tmp_path / "new", [moved])])
    assert (report.updated, report.version) == (1, 2)
    assert _records(db, "npm", "lodash") == [] and _records(db, "npm", "lodash-es") == ["GHSA-35jh-r3h4-6jhm"]
    changed = db.read_sync(lambda s: sorted((c.version, c.name) for c in s.scalars(select(AdvisoryChange))))
    assert (2, "lodash") in changed and (2, "lodash-es") in changed  # the old key and the new one


def test_a_withdrawn_record_stops_matching_and_is_not_resurrected(
    vulndb: VulnerabilityDatabase, db: Database, tmp_path: Path
) -> None:
    vulndb.import_paths([write_records(tmp_path / "v1", [R.GHSA_LODASH])])
    withdrawn = _newer(R.GHSA_LODASH, "2025-02-01T00:00:00Z", withdrawn="2025-02-01T00:00:00Z")
    report = vulndb.import_paths([write_records(tmp_path / "v2", [withdrawn])])
    assert report.withdrawn == 1 and report.version == 2
    assert _records(db, "npm", "lodash") == []
    assert db.read_sync(store.records_named, "CVE-2021-23337") == []
    again = vulndb.import_paths([write_records(tmp_path / "v1-again", [R.GHSA_LODASH])])
    assert again.unchanged == 1 and _records(db, "npm", "lodash") == []
    assert vulndb.state().advisories == 0


def test_bad_documents_are_reported_and_the_rest_imported(
    vulndb: VulnerabilityDatabase, db: Database, tmp_path: Path
) -> None:
    folder = write_records(tmp_path, [R.GHSA_LODASH])
    (folder / "broken.json").write_text("{not json")
    (folder / "scalar.json").write_text("42")
    (folder / "typed.json").write_text(
        json.dumps({"id": "X-1", "modified": "2024-01-01T00:00:00Z", "aliases": "no"})
    )
    (folder / "no-time.json").write_text(json.dumps({"id": "X-2", "modified": "yesterday"}))
    report = vulndb.import_paths([folder])
    assert report.added == 1 and report.problem_count == 4
    assert any("broken.json: not JSON" in p for p in report.problems)
    assert any("X-1" in p and "aliases" in p for p in report.problems)
    assert any("X-2" in p and "RFC 3339" in p for p in report.problems)


def test_paths_that_are_not_sources_are_refused_before_anything_is_read(
    vulndb: VulnerabilityDatabase, tmp_path: Path
) -> None:
    (tmp_path / "fake.zip").write_bytes(b"not a zip")
    with pytest.raises(SourceError, match="no such file"):
        vulndb.import_paths([tmp_path / "missing.json"])
    with pytest.raises(SourceError, match="not a readable zip"):
        vulndb.import_paths([tmp_path / "fake.zip"])
    assert vulndb.state().version == 0


def test_the_same_record_in_two_dumps_is_kept_once_newest_first(
    vulndb: VulnerabilityDatabase, db: Database, tmp_path: Path
) -> None:
    newer = _newer(R.DSA_5650_1, "2025-01-01T00:00:00Z", summary="newer")
    report = vulndb.import_paths(
        [
            write_zip(tmp_path / "a" / "all.zip", [newer]),
            write_zip(tmp_path / "b" / "all.zip", [R.DSA_5650_1]),
        ]
    )
    assert report.added == 1
    stored = db.read_sync(store.records_named, "DSA-5650-1")
    assert [service.decode_record(r.body).summary for r in stored] == ["newer"]


def test_an_import_that_died_is_versioned_by_the_next(
    vulndb: VulnerabilityDatabase, db: Database, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(service, "BATCH", 1)
    folder = write_records(tmp_path, [R.GHSA_LODASH, R.GHSA_REQUESTS])

    def die(session: Any) -> None:
        raise RuntimeError("killed before the import ended")

    monkeypatch.setattr(service, "_finish", die)
    with pytest.raises(RuntimeError):
        vulndb.import_paths([folder])
    assert vulndb.state().version == 0  # the records are stored, their changes wait without a version
    monkeypatch.undo()
    report = vulndb.import_paths([folder])
    assert report.unchanged == 2 and report.version == 1
    pending = db.read_sync(
        lambda s: s.scalar(
            select(func.count()).select_from(AdvisoryChange).where(AdvisoryChange.version.is_(None))
        )
    )
    assert pending == 0


# -- sync ------------------------------------------------------------------------------------------


@pytest.fixture
def dumps(tmp_path: Path) -> Iterator[DumpServer]:
    root = tmp_path / "bucket"
    write_zip(root / "Debian" / "all.zip", [R.DEBIAN_CVE_2024_28085, R.DSA_5650_1])
    write_zip(root / "PyPI" / "all.zip", [R.GHSA_REQUESTS])
    with DumpServer(root) as server:
        yield server


def test_sync_fetches_dumps_and_asks_conditionally_next_time(
    vulndb: VulnerabilityDatabase, db: Database, dumps: DumpServer, tmp_path: Path
) -> None:
    report = vulndb.sync(dumps.url, ["Debian", "PyPI"], tmp_path / "work")
    assert report.fetched == ["Debian", "PyPI"] and not report.failed
    assert report.imported is not None and report.imported.added == 3 and report.imported.version == 1
    assert [status for _, _, status in dumps.requests] == [200, 200]

    again = vulndb.sync(dumps.url, ["Debian", "PyPI"], tmp_path / "work")
    assert again.unchanged == ["Debian", "PyPI"] and again.imported is None
    conditional = dumps.requests[2:]
    assert [status for _, _, status in conditional] == [304, 304]
    assert all("If-None-Match" in h and "If-Modified-Since" in h for _, h, _ in conditional)

    time.sleep(0.01)
    write_zip(dumps.root / "PyPI" / "all.zip", [R.GHSA_REQUESTS, R.PYSEC_2023_74])
    third = vulndb.sync(dumps.url, ["Debian", "PyPI"], tmp_path / "work")
    assert third.fetched == ["PyPI"] and third.unchanged == ["Debian"]
    assert third.imported is not None and third.imported.added == 1 and third.imported.version == 2
    assert not list((tmp_path / "work").iterdir()) or all(
        not p.name.startswith("vulndb-sync-") for p in (tmp_path / "work").iterdir()
    )
    assert {s.url for s in vulndb.sources()} == {dump_url(dumps.url, "Debian"), dump_url(dumps.url, "PyPI")}


def test_sync_reports_missing_dumps_and_unreachable_servers(
    vulndb: VulnerabilityDatabase, dumps: DumpServer, tmp_path: Path
) -> None:
    report = vulndb.sync(dumps.url, ["Debian", "Nope"], tmp_path / "work")
    assert report.fetched == ["Debian"] and report.failed["Nope"].startswith("HTTP 404")
    assert dumps.requests[-1][0] == "/Nope/all.zip"
    closed = vulndb.sync("http://127.0.0.1:9", ["Debian"], tmp_path / "work", timeout=5)
    assert "cannot fetch" in closed.failed["Debian"] and closed.imported is None


def test_dump_urls_quote_ecosystem_names() -> None:
    assert dump_url("https://bucket/", "Rocky Linux") == "https://bucket/Rocky%20Linux/all.zip"
    assert dump_url("https://bucket", "crates.io") == "https://bucket/crates.io/all.zip"


@pytest.mark.parametrize(
    ("text", "iso"),
    [
        ("2024-06-01T00:00:00Z", "2024-06-01T00:00:00+00:00"),
        ("2024-06-01T02:00:00+02:00", "2024-06-01T00:00:00+00:00"),
        ("2024-06-01T00:00:00.123456789Z", "2024-06-01T00:00:00.123456+00:00"),
        ("2024-06-01T00:00:00", "2024-06-01T00:00:00+00:00"),
    ],
)
def test_osv_times_are_read_as_utc(text: str, iso: str) -> None:
    parsed = parse_time(text)
    assert parsed is not None and parsed.isoformat() == iso
    assert parse_time("not a time") is None and parse_time("") is None
