"""The ``itops trends --format html`` page: inline SVG line charts, no JavaScript."""

from __future__ import annotations

from itops import __version__
from itops.report.charts import trend
from itops.report.data import TrendPoint
from itops.report.html import CSP
from itops.report.templating import render_template
from itops.report.views import STATUS_ORDER
from itops.trends import Series, Trends


def _chart(trends: Trends, points: list[float | None], width: float = 640.0, height: float = 160.0) -> object:
    return trend([TrendPoint(r.id, r.started, {}, p) for r, p in zip(trends.runs, points, strict=True)], width, height)


def render_trends_html(trends: Trends, framework: str | None = None) -> str:
    """The whole page as text; every value is autoescaped by the template."""

    def lowest(series: list[Series], n: int = 40) -> list[tuple[Series, object]]:
        ranked = sorted(series, key=lambda s: (s.latest if s.latest is not None else 101.0, s.key))[:n]
        return [(s, _chart(trends, s.points, 320.0, 90.0)) for s in ranked]

    now = trends.generated
    return render_template(
        "trends.html.j2",
        None,
        trends=trends,
        data=trends.to_dict(),
        framework=framework,
        overall=_chart(trends, trends.overall),
        controls=lowest(trends.controls),
        checks=lowest(trends.checks),
        open_findings=sorted((f for f in trends.findings if f.fixed_on is None), key=lambda f: -f.age_days(now))[:200],
        fixed_findings=[f for f in trends.findings if f.fixed_on is not None][-200:],
        now=now,
        csp=CSP,
        statuses=[st.value for st in STATUS_ORDER],
        itops_version=__version__,
    )
