"""Collected samples, the ratios the issue asks for, the printed table and the JSON file."""

from __future__ import annotations

import json
import statistics
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

CARGOBAY = "cargobay"
CARGOBAY_W2 = "cargobay workers=2"
CARGOBAY_ENC_OFF = "cargobay encryption=off"
CARGOBAY_ENC_ON = "cargobay encryption=on"
REFERENCE = "reference"
REFERENCE_HTPASSWD = "reference+htpasswd"
CEILING = "client ceiling"
CARGOBAY_DEFAULT = (
    "cargobay defaults"  # `cargobay serve` with no settings: workers by CPU count, encryption on
)
CARGOBAY_DEFAULT_BASIC = "cargobay defaults, Basic"  # the same server, Basic credentials on every request


@dataclass
class Sample:
    section: str
    metric: str
    subject: str
    repeat: int
    value: float
    unit: str
    extra: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Comparison:
    """``subject`` against ``baseline`` on one metric; ratio > 1 means ``subject`` is better."""

    section: str
    metric: str
    subject: str
    baseline: str
    higher_is_better: bool = True
    target: float | None = None  # the ratio the issue asks for, if any
    note: str = ""
    baseline_metric: str | None = None  # when the baseline is measured under another metric

    @property
    def against(self) -> str:
        return self.baseline_metric or self.metric


@dataclass
class Summary:
    median: float
    low: float
    high: float
    n: int

    def text(self, digits: int | None = None) -> str:
        if digits is None:
            size = abs(self.median)
            digits = 2 if size < 10 else 1 if size < 1000 else 0
        if self.n == 1:
            return f"{self.median:.{digits}f}"
        return f"{self.median:.{digits}f} [{self.low:.{digits}f}-{self.high:.{digits}f}]"


def summarize(values: Sequence[float]) -> Summary | None:
    if not values:
        return None
    return Summary(statistics.median(values), min(values), max(values), len(values))


class Results:
    def __init__(self, meta: dict[str, Any]) -> None:
        self.meta = meta
        self.samples: list[Sample] = []
        self.notes: list[str] = []

    def add(
        self, section: str, metric: str, subject: str, repeat: int, value: float, unit: str, **extra: Any
    ) -> None:
        self.samples.append(Sample(section, metric, subject, repeat, value, unit, extra))

    def values(self, section: str, metric: str, subject: str) -> dict[int, float]:
        return {
            s.repeat: s.value
            for s in self.samples
            if s.section == section and s.metric == metric and s.subject == subject
        }

    def unit(self, section: str, metric: str) -> str:
        return next((s.unit for s in self.samples if s.section == section and s.metric == metric), "")

    def ratio(self, c: Comparison) -> Summary | None:
        """Per-repeat ratios (same repeat index on both sides), summarized."""
        mine = self.values(c.section, c.metric, c.subject)
        theirs = self.values(c.section, c.against, c.baseline)
        ratios = []
        for repeat in sorted(set(mine) & set(theirs)):
            a, b = mine[repeat], theirs[repeat]
            if a > 0 and b > 0:
                ratios.append(a / b if c.higher_is_better else b / a)
        return summarize(ratios)

    # -- output ---------------------------------------------------------------------------------
    def table(self, comparisons: list[Comparison], extras: list[tuple[str, str, str]]) -> str:
        """Comparison rows, then plain rows (section, metric, subject) with no ratio."""
        rows: list[tuple[str, ...]] = [("section", "metric", "cargobay", "baseline", "ratio", "target")]
        shown: set[tuple[str, str, str]] = set()
        for c in comparisons:
            mine = summarize(list(self.values(c.section, c.metric, c.subject).values()))
            theirs = summarize(list(self.values(c.section, c.against, c.baseline).values()))
            ratio = self.ratio(c)
            if mine is None or theirs is None or ratio is None:
                continue
            shown |= {(c.section, c.metric, c.subject), (c.section, c.against, c.baseline)}
            unit = self.unit(c.section, c.metric)
            verdict = ""
            if c.target is not None:
                verdict = f">={c.target:.1f}x {'met' if ratio.median >= c.target else 'MISSED'}"
            rows.append(
                (
                    c.section,
                    f"{c.metric} ({unit})",
                    f"{mine.text()}  {_short(c.subject)}",
                    f"{theirs.text()}  {_short(c.baseline)}" + (f" {c.against}" if c.baseline_metric else ""),
                    f"{ratio.text(2)}x",
                    verdict,
                )
            )
        for section, metric, subject in extras:
            if (section, metric, subject) in shown:
                continue
            summary = summarize(list(self.values(section, metric, subject).values()))
            if summary is None:
                continue
            unit = self.unit(section, metric)
            rows.append((section, f"{metric} ({unit})", f"{summary.text()}  {_short(subject)}", "", "", ""))
        widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
        lines = [
            "  ".join(cell.ljust(w) for cell, w in zip(row, widths, strict=True)).rstrip() for row in rows
        ]
        lines.insert(1, "  ".join("-" * w for w in widths))
        return "\n".join(lines)

    def to_json(self, comparisons: list[Comparison]) -> dict[str, Any]:
        ratios = []
        for c in comparisons:
            ratio = self.ratio(c)
            if ratio is None:
                continue
            ratios.append(
                {
                    **asdict(c),
                    "ratio": asdict(ratio),
                    "met": None if c.target is None else ratio.median >= c.target,
                }
            )
        return {
            "meta": self.meta,
            "notes": self.notes,
            "ratios": ratios,
            "samples": [asdict(s) for s in self.samples],
        }

    def write(self, path: Path, comparisons: list[Comparison]) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(self.to_json(comparisons), indent=2) + "\n")


def _short(subject: str) -> str:
    return {
        CARGOBAY: "(cb w1)",
        CARGOBAY_W2: "(cb w2)",
        CARGOBAY_ENC_OFF: "(cb enc off)",
        CARGOBAY_ENC_ON: "(cb enc on)",
        REFERENCE: "(ref)",
        REFERENCE_HTPASSWD: "(ref htpasswd)",
        CEILING: "(ceiling)",
    }.get(subject, f"({subject})")
