"""Robust trend fits over recorded metrics, and the projections built on them.

The fit is Theil-Sen: the slope is the median of the slopes between every pair of points, the
intercept the median of ``y - slope * t``. One outlier (a log burst cleaned up the next day, a
restore slowed by a noisy neighbour) moves it far less than least squares. Its quality is shown
beside every projection: the number of points, the median absolute residual, and R² of the line.

Times are epoch seconds; slopes are per second (``per_day`` for display).
"""

from __future__ import annotations

import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass

DAY = 86400.0
#: Points a projection needs before it is trusted (fewer: "not enough history").
MIN_POINTS = 5
#: Newest points a fit uses (pairwise slopes grow quadratically).
MAX_POINTS = 60


@dataclass(frozen=True)
class Fit:
    """A line ``value = intercept + slope * (t - t0)`` with how well it describes the points."""

    slope: float  # per second
    intercept: float  # value at t0
    t0: float  # time of the newest point
    n: int
    mad: float  # median absolute residual, in the value's unit
    r2: float | None  # 1 - SS_res / SS_tot; None when the values do not vary

    @property
    def per_day(self) -> float:
        return self.slope * DAY

    def at(self, t: float) -> float:
        return self.intercept + self.slope * (t - self.t0)

    def crossing(self, threshold: float, after: float) -> float | None:
        """When the line reaches ``threshold`` at or after ``after`` (epoch), or None if it never does.

        A line already at or over the threshold at ``after`` crosses at ``after``.
        """
        now = self.at(after)
        if now >= threshold:
            return after
        if self.slope <= 0:
            return None
        return after + (threshold - now) / self.slope

    def quality(self) -> str:
        r2 = "n/a" if self.r2 is None else f"{self.r2:.2f}"
        return f"Theil-Sen over {self.n} points, median residual {self.mad:.3g}, R² {r2}"

    def to_dict(self) -> dict[str, float | int | None]:
        return {"slope_per_day": self.per_day, "n": self.n, "median_residual": self.mad, "r2": self.r2}


def theil_sen(points: Sequence[tuple[float, float]]) -> Fit | None:
    """The Theil-Sen line of ``(t, value)`` points (newest ``MAX_POINTS``), or None with fewer than 2 times."""
    pts = sorted(points)[-MAX_POINTS:]
    if len({t for t, _ in pts}) < 2:
        return None
    slopes = [
        (y2 - y1) / (t2 - t1) for i, (t1, y1) in enumerate(pts) for t2, y2 in pts[i + 1 :] if t2 != t1
    ]
    slope = statistics.median(slopes)
    t0 = pts[-1][0]
    intercept = statistics.median(y - slope * (t - t0) for t, y in pts)
    residuals = [y - (intercept + slope * (t - t0)) for t, y in pts]
    mad = statistics.median(abs(r) for r in residuals)
    mean = statistics.fmean(y for _, y in pts)
    total = sum((y - mean) ** 2 for _, y in pts)
    r2 = None if total == 0 else 1.0 - sum(r * r for r in residuals) / total
    if r2 is not None and not math.isfinite(r2):
        r2 = None
    return Fit(slope, intercept, t0, len(pts), mad, r2)


@dataclass(frozen=True)
class Projection:
    """Where one series is heading: the fit and when it crosses its limit (None: not within sight)."""

    name: str
    now: float
    value: float
    limit: float
    fit: Fit
    crosses_at: float | None

    def days_left(self) -> float | None:
        return None if self.crosses_at is None else max(0.0, (self.crosses_at - self.now) / DAY)

    def within(self, horizon_seconds: float) -> bool:
        return self.crosses_at is not None and self.crosses_at - self.now <= horizon_seconds

    def to_dict(self) -> dict[str, object]:
        return {
            "name": self.name,
            "value": self.value,
            "limit": self.limit,
            "crosses_at": self.crosses_at,
            "days_left": self.days_left(),
            "fit": self.fit.to_dict(),
        }


def project(name: str, points: Sequence[tuple[float, float]], limit: float, now: float) -> Projection | None:
    """Fit ``points`` and project when the series reaches ``limit``; None when there are too few points."""
    if len(points) < MIN_POINTS:
        return None
    fit = theil_sen(points)
    if fit is None:
        return None
    value = sorted(points)[-1][1]
    return Projection(name, now, value, limit, fit, fit.crossing(limit, now))


def describe_days(days: float | None) -> str:
    if days is None:
        return "not within sight"
    if days < 1:
        return "within a day"
    return f"in {days:.0f} day{'s' if round(days) != 1 else ''}"
