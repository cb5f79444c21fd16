"""The Theil-Sen fit and projections on synthetic series with known slopes and noise."""

from __future__ import annotations

import random

import pytest

from itops.forecast import DAY, MIN_POINTS, describe_days, project, theil_sen


def test_exact_line_is_recovered() -> None:
    points = [(i * DAY, 40.0 + 1.5 * i) for i in range(10)]
    fit = theil_sen(points)
    assert fit is not None
    assert fit.per_day == pytest.approx(1.5)
    assert fit.at(9 * DAY) == pytest.approx(53.5)
    assert fit.mad == pytest.approx(0.0) and fit.r2 == pytest.approx(1.0)


@pytest.mark.parametrize("slope", [0.3, 2.0, -0.7])
def test_noisy_series_slope_within_tolerance(slope: float) -> None:
    rng = random.Random(42)
    points = [(i * DAY, 30.0 + slope * i + rng.gauss(0, 0.5)) for i in range(40)]
    fit = theil_sen(points)
    assert fit is not None
    assert fit.per_day == pytest.approx(slope, abs=0.05)
    assert 0.1 < fit.mad < 1.0


def test_outliers_barely_move_the_slope() -> None:
    """A one-off spike (a log burst cleaned the next day) would tilt least squares; Theil-Sen ignores it."""
    points = [(i * DAY, 50.0 + 1.0 * i) for i in range(20)]
    points[10] = (10 * DAY, 99.0)
    points[11] = (11 * DAY, 2.0)
    fit = theil_sen(points)
    assert fit is not None and fit.per_day == pytest.approx(1.0, abs=0.01)


def test_crossing_day_and_flat_or_falling_series() -> None:
    points = [(i * DAY, 60.0 + 2.0 * i) for i in range(6)]  # 70 % now, +2 %/day -> 90 % in 10 days
    now = 5 * DAY
    proj = project("fs.used_pct:/var", points, 90.0, now)
    assert proj is not None and proj.days_left() == pytest.approx(10.0)
    assert proj.within(10 * DAY) and not proj.within(9 * DAY)
    assert describe_days(proj.days_left()) == "in 10 days"
    flat = project("x", [(i * DAY, 50.0) for i in range(6)], 90.0, now)
    assert flat is not None and flat.crosses_at is None and flat.fit.r2 is None
    falling = project("x", [(i * DAY, 80.0 - i) for i in range(6)], 90.0, now)
    assert falling is not None and falling.crosses_at is None
    over = project("x", [(i * DAY, 95.0) for i in range(6)], 90.0, now)
    assert over is not None and over.days_left() == 0.0


def test_too_few_points_or_one_time_is_no_projection() -> None:
    assert project("x", [(i * DAY, float(i)) for i in range(MIN_POINTS - 1)], 10.0, 0.0) is None
    assert theil_sen([(5.0, 1.0), (5.0, 2.0)]) is None
