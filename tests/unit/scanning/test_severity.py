from __future__ import annotations

import pytest

from cargobay.scanning.osv import Severity
from cargobay.scanning.severity import best_score, bucket, score_vector
from tests.support import osv_records as R


@pytest.mark.parametrize(
    ("kind", "vector", "score"),
    [
        ("CVSS_V3", R.V31_GLIBC, 7.8),
        ("CVSS_V3", R.V31_LOG4SHELL, 10.0),
        ("CVSS_V3", "CVSS:3.0/AV:N/AC:L/PR:N/UI:N/S:U/C:H/I:H/A:H", 9.8),
        ("CVSS_V4", "CVSS:4.0/AV:N/AC:L/AT:N/PR:N/UI:N/VC:H/VI:H/VA:H/SC:N/SI:N/SA:N", 9.3),
        ("CVSS_V2", "AV:N/AC:L/Au:N/C:P/I:P/A:P", 7.5),
        ("CVSS_V2", "(AV:N/AC:M/Au:N/C:P/I:P/A:P)", 6.8),
    ],
)
def test_vectors_score_like_nvd(kind: str, vector: str, score: float) -> None:
    result = score_vector(kind, vector)
    assert result is not None and result.base == score


@pytest.mark.parametrize(
    ("kind", "vector"),
    [("CVSS_V3", "CVSS:3.1/AV:N"), ("CVSS_V3", "garbage"), ("Ubuntu", "high"), ("CVSS_V2", "")],
)
def test_invalid_vectors_and_priority_words_are_not_scores(kind: str, vector: str) -> None:
    assert score_vector(kind, vector) is None


def test_v2_counts_only_when_nothing_else_exists() -> None:
    v2_high = Severity("CVSS_V2", "AV:N/AC:L/Au:N/C:C/I:C/A:C")  # 10.0
    v3 = Severity("CVSS_V3", R.V31_REQUESTS)  # 6.1
    best = best_score([v2_high, v3])
    assert best is not None and best.base == 6.1 and best.version == 3
    only_v2 = best_score([v2_high, Severity("Ubuntu", "medium")])
    assert only_v2 is not None and only_v2.base == 10.0


def test_highest_modern_score_wins() -> None:
    best = best_score(
        [
            Severity("CVSS_V3", R.V31_REQUESTS),
            Severity("CVSS_V3", R.V31_LOG4SHELL),
            Severity("CVSS_V4", "bad"),
        ]
    )
    assert best is not None and best.vector == R.V31_LOG4SHELL


@pytest.mark.parametrize(
    ("score", "level"),
    [
        (None, "unknown"),
        (0.0, "none"),
        (0.1, "low"),
        (3.9, "low"),
        (4.0, "medium"),
        (6.9, "medium"),
        (7.0, "high"),
        (8.9, "high"),
        (9.0, "critical"),
        (10.0, "critical"),
    ],
)
def test_buckets(score: float | None, level: str) -> None:
    assert bucket(score) == level
