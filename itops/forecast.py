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

#: the metrics the restore checks record per backup (the forecast reads them back from the run store)
RESTORE_SECONDS = "backup.restore_seconds"  # how long the restore test took
RTO_SECONDS = "backup.rto_seconds"  # the RTO the restore was judged against, default included
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
    slopes = [(y2 - y1) / (t2 - t1) for i, (t1, y1) in enumerate(pts) for t2, y2 in pts[i + 1 :] if t2 != t1]
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


# --- `itops forecast`: every projection of the store, and a capacity plan per site ------------------

MONTH = 30.44 * DAY
PLAN_MONTHS = (3, 6, 12)
DEFAULT_FS_LIMIT = 90.0


@dataclass(frozen=True)
class FsForecast:
    host: str
    site: str
    mount: str
    what: str  # space or inodes
    projection: Projection


@dataclass(frozen=True)
class SitePlan:
    """A site's file systems: used and total GB now, and used GB projected in 3, 6 and 12 months."""

    site: str
    used_gb: float
    size_gb: float
    projected_gb: tuple[float, ...]
    filesystems: int

    def to_dict(self) -> dict[str, object]:
        return {
            "site": self.site,
            "filesystems": self.filesystems,
            "used_gb": round(self.used_gb, 4),
            "size_gb": round(self.size_gb, 4),
            **{f"used_gb_in_{m}_months": round(v, 4) for m, v in zip(PLAN_MONTHS, self.projected_gb, strict=True)},
        }


@dataclass(frozen=True)
class BackupGrowth:
    backup: str
    site: str
    size_gb: float
    gb_per_month: float | None
    fit: Fit | None


@dataclass(frozen=True)
class RestoreForecast:
    backup: str
    seconds: float
    rto: float
    projection: Projection | None
    points: int


@dataclass
class ForecastReport:
    now: float
    horizon: float
    filesystems: list[FsForecast]
    short_of_history: list[tuple[str, str, int]]  # host, mount, points
    sites: list[SitePlan]
    backups: list[BackupGrowth]
    backup_sites: dict[str, float]  # site -> GB per month
    restores: list[RestoreForecast]

    def to_dict(self) -> dict[str, object]:
        return {
            "generated": self.now,
            "horizon_days": self.horizon / DAY,
            "filesystems": [
                {
                    "host": f.host,
                    "site": f.site,
                    "mount": f.mount,
                    "what": f.what,
                    "within_horizon": f.projection.within(self.horizon),
                    **f.projection.to_dict(),
                }
                for f in self.filesystems
            ],
            "short_of_history": [{"host": h, "mount": m, "points": n} for h, m, n in self.short_of_history],
            "capacity_plan": [s.to_dict() for s in self.sites],
            "backup_growth": [
                {
                    "backup": b.backup,
                    "site": b.site,
                    "size_gb": round(b.size_gb, 4),
                    "gb_per_month": None if b.gb_per_month is None else round(b.gb_per_month, 4),
                    "fit": b.fit.to_dict() if b.fit else None,
                }
                for b in self.backups
            ],
            "backup_growth_per_site_gb_per_month": {k: round(v, 4) for k, v in self.backup_sites.items()},
            "restores": [
                {
                    "backup": r.backup,
                    "seconds": r.seconds,
                    "rto": r.rto,
                    "points": r.points,
                    "projection": r.projection.to_dict() if r.projection else None,
                    "within_horizon": bool(r.projection and r.projection.within(self.horizon)),
                }
                for r in self.restores
            ],
        }


def _latest(points: Sequence[tuple[float, float]]) -> float:
    return sorted(points)[-1][1]


def build_forecast(
    series: dict[tuple[str, str], list[tuple[float, float]]],
    *,
    now: float,
    horizon: float,
    site_of: dict[str, str] | None = None,
    fs_limit_of: dict[str, float] | None = None,
) -> ForecastReport:
    """Every projection from ``series`` (``Store.metric_series()``: ``{(target, name): points}``)."""
    site_of = site_of or {}
    fs_limit_of = fs_limit_of or {}
    filesystems: list[FsForecast] = []
    short: list[tuple[str, str, int]] = []
    plan: dict[str, list[float]] = {}
    plan_count: dict[str, int] = {}
    backups: dict[str, dict[str, list[tuple[float, float]]]] = {}
    restores: list[RestoreForecast] = []
    for (target, name), points in sorted(series.items()):
        metric, _, qualifier = name.partition(":")
        site = site_of.get(target, "-")
        if metric in ("fs.used_pct", "fs.inodes_pct"):
            what = "space" if metric == "fs.used_pct" else "inodes"
            projection = project(name, points, fs_limit_of.get(target, DEFAULT_FS_LIMIT), now)
            if projection is None:
                short.append((target, qualifier, len(points)))
            else:
                filesystems.append(FsForecast(target, site, qualifier, what, projection))
        elif metric == "fs.used_kb":
            size = series.get((target, f"fs.size_kb:{qualifier}"))
            if not size:
                continue
            fit = theil_sen(points) if len(points) >= 2 else None
            used_now = _latest(points)
            row = plan.setdefault(site, [0.0, 0.0, 0.0, 0.0, 0.0])
            row[0] += used_now
            row[1] += _latest(size)
            for i, months in enumerate(PLAN_MONTHS):
                later = fit.at(now + months * MONTH) if fit is not None else used_now
                row[2 + i] += max(later, 0.0)
            plan_count[site] = plan_count.get(site, 0) + 1
        elif metric == "backup.size_bytes":
            backups.setdefault(target, {})[qualifier] = points
        elif metric == RESTORE_SECONDS:
            rto_points = series.get((target, RTO_SECONDS))
            if not rto_points:
                continue
            rto = _latest(rto_points)
            restores.append(RestoreForecast(target, _latest(points), rto, project(name, points, rto, now), len(points)))
    kb_per_gb = 1024.0 * 1024.0
    sites = [
        SitePlan(site, row[0] / kb_per_gb, row[1] / kb_per_gb, tuple(v / kb_per_gb for v in row[2:]), plan_count[site])
        for site, row in sorted(plan.items())
    ]
    growth: list[BackupGrowth] = []
    per_site: dict[str, float] = {}
    for backup, groups in sorted(backups.items()):
        # a backup's size over time: the sum of its groups' newest copies at each run
        by_time: dict[float, float] = {}
        for points in groups.values():
            for t, v in points:
                by_time[t] = by_time.get(t, 0.0) + v
        total = sorted(by_time.items())
        fit = theil_sen(total) if len(total) >= 2 else None
        per_month = fit.slope * MONTH / 1e9 if fit is not None else None
        site = site_of.get(backup, "-")
        growth.append(BackupGrowth(backup, site, total[-1][1] / 1e9, per_month, fit))
        if per_month is not None:
            per_site[site] = per_site.get(site, 0.0) + per_month
    filesystems.sort(key=lambda f: (f.projection.crosses_at is None, f.projection.crosses_at or 0.0, f.host))
    return ForecastReport(now, horizon, filesystems, short, sites, growth, per_site, restores)
