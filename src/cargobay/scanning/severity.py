"""CVSS scores and severity buckets.

Only CVSS vectors are scores: ``Ubuntu`` priority words, Debian urgency or GHSA's "HIGH" are vendor
opinions and stay extra information. Among the vectors of all records behind one finding, v4 and v3
vectors are used when there is at least one, v2 only when there is nothing else (v2 scores run high
and have no Critical band); the highest base score wins. Buckets: none 0, low 0.1-3.9, medium
4-6.9, high 7-8.9, critical 9-10; no score at all is ``unknown``, never ``none``.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from functools import lru_cache

import cvss

from cargobay.scanning.osv import Severity

UNKNOWN = "unknown"
NONE = "none"
LOW = "low"
MEDIUM = "medium"
HIGH = "high"
CRITICAL = "critical"
LEVELS = (UNKNOWN, NONE, LOW, MEDIUM, HIGH, CRITICAL)


@dataclass(frozen=True, slots=True)
class Score:
    version: int
    base: float
    vector: str


@lru_cache(maxsize=1 << 14)
def score_vector(kind: str, vector: str) -> Score | None:
    """Base score of one OSV severity entry, or None when it is not a valid CVSS vector."""
    vector = vector.strip()
    try:
        if kind == "CVSS_V4" or vector.startswith("CVSS:4."):
            return Score(4, float(cvss.CVSS4(vector).base_score), vector)
        if kind == "CVSS_V3" or vector.startswith("CVSS:3."):
            return Score(3, float(cvss.CVSS3(vector).base_score), vector)
        if kind == "CVSS_V2":
            bare = vector.strip("()")
            return Score(2, float(cvss.CVSS2(bare).base_score), vector)
    except (cvss.CVSSError, ValueError, KeyError, IndexError, TypeError, ArithmeticError):
        return None
    return None


def best_score(severities: Iterable[Severity]) -> Score | None:
    """The highest v3/v4 score, or the highest v2 score when there is no v3/v4 vector at all."""
    modern: Score | None = None
    legacy: Score | None = None
    for s in severities:
        if not s.type.startswith("CVSS"):
            continue
        score = score_vector(s.type, s.score)
        if score is None:
            continue
        if score.version >= 3:
            if modern is None or (score.base, score.version) > (modern.base, modern.version):
                modern = score
        elif legacy is None or score.base > legacy.base:
            legacy = score
    return modern or legacy


def bucket(score: float | None) -> str:
    if score is None:
        return UNKNOWN
    if score <= 0.0:
        return NONE
    if score < 4.0:
        return LOW
    if score < 7.0:
        return MEDIUM
    if score < 9.0:
        return HIGH
    return CRITICAL
