"""Geometry of the HTML report's inline SVG charts (numbers only; the template draws them).

Colours come from CSS classes (``f-FAIL`` ...), so charts follow the screen and print
stylesheets and the SVG carries no styling of its own.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from itops.report.data import TrendPoint
from itops.report.views import STATUS_ORDER, Summary


@dataclass(frozen=True)
class Segment:
    status: str
    x: float
    width: float
    count: int


@dataclass(frozen=True)
class BarRow:
    label: str
    y: float
    segments: list[Segment]
    total: int


@dataclass(frozen=True)
class Donut:
    radius: float
    circumference: float
    dash: float  # length of the arc that shows the score
    label: str


@dataclass(frozen=True)
class Trend:
    width: float
    height: float
    points: str  # "x,y x,y ..." for <polyline>
    dots: list[tuple[float, float, str, str]]  # x, y, run id, tooltip
    x_labels: list[tuple[float, str, str]]  # x, text, text-anchor
    y_labels: list[tuple[float, str]]
    plot: tuple[float, float, float, float]  # left, top, right, bottom


def stacked(counts: Mapping[str, int], width: float, scale_to: int | None = None) -> list[Segment]:
    """Segments of one horizontal stacked bar; ``scale_to`` makes bars of several rows comparable."""
    total = scale_to or sum(counts.get(s.value, 0) for s in STATUS_ORDER)
    segments: list[Segment] = []
    x = 0.0
    if total <= 0:
        return segments
    for s in STATUS_ORDER:
        n = counts.get(s.value, 0)
        if n:
            w = width * n / total
            segments.append(Segment(s.value, round(x, 2), round(w, 2), n))
            x += w
    return segments


def donut(score: float | None, radius: float = 52.0) -> Donut:
    circumference = 2 * math.pi * radius
    value = 0.0 if score is None else max(0.0, min(100.0, score))
    label = "n/a" if score is None else f"{score:.0f}%"
    return Donut(radius, round(circumference, 2), round(circumference * value / 100, 2), label)


def severity_rows(summary: Summary, width: float = 340.0, row: float = 22.0) -> list[BarRow]:
    """One stacked bar per severity, all scaled to the largest row."""
    biggest = max((sum(c.values()) for c in summary.by_severity.values()), default=0)
    rows = []
    for i, (sev, counts) in enumerate(summary.by_severity.items()):
        rows.append(BarRow(sev, i * row, stacked(counts, width, scale_to=biggest or None), sum(counts.values())))
    return rows


def top_failing_rows(summary: Summary, width: float = 200.0, row: float = 22.0) -> list[BarRow]:
    biggest = max((n for *_, n in summary.top_failing), default=0)
    return [
        BarRow(check, i * row, [Segment("FAIL", 0.0, round(width * n / biggest, 2) if biggest else 0.0, n)], n)
        for i, (check, _title, _sev, n) in enumerate(summary.top_failing)
    ]


def trend(points: Sequence[TrendPoint], width: float = 640.0, height: float = 180.0) -> Trend:
    """Score (0-100 %) per run, oldest left; runs without a score are left out of the line."""
    left, top, right, bottom = 44.0, 12.0, width - 12.0, height - 28.0
    n = len(points)

    def x_of(i: int) -> float:
        return round(left + (right - left) * (i / (n - 1) if n > 1 else 0.5), 1)

    def y_of(score: float) -> float:
        return round(bottom - (bottom - top) * score / 100.0, 1)

    dots = []
    for i, p in enumerate(points):
        if p.score is None:
            continue
        when = time.strftime("%Y-%m-%d %H:%M", time.localtime(p.started))
        dots.append((x_of(i), y_of(p.score), p.run_id, f"{p.run_id} ({when}): {p.score:.1f}%"))
    x_labels = []
    if points:
        for i in sorted({0, n - 1}):
            anchor = "middle" if n == 1 else "start" if i == 0 else "end"
            x_labels.append((x_of(i), time.strftime("%Y-%m-%d %H:%M", time.localtime(points[i].started)), anchor))
    return Trend(
        width=width,
        height=height,
        points=" ".join(f"{x},{y}" for x, y, _, _ in dots),
        dots=dots,
        x_labels=x_labels,
        y_labels=[(y_of(v), f"{v}%") for v in (0, 50, 100)],
        plot=(left, top, right, bottom),
    )
