"""The HTML report: one self-contained file, readable without JavaScript, and optional PDF.

No external request is possible: a Content-Security-Policy meta tag allows only inline
styles and data: images, charts are inline SVG, and the template holds no script.
Filtering by status works through CSS (``:has()`` on checkboxes); views collapse with
``<details>``, so a 10,000-result report stays usable.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from itops import __version__
from itops.model import Status
from itops.report import charts
from itops.report.data import ReportData
from itops.report.templating import render_template
from itops.report.views import NOT_PASSING, STATUS_ORDER, build_views, not_assessed_targets

CSP = "default-src 'none'; style-src 'unsafe-inline'; img-src data:"
#: Status colours (the same as --PASS ... in templates/report.css).
COLOURS = {
    "PASS": "#1a7f37",
    "FAIL": "#cf222e",
    "ERROR": "#9a6700",
    "UNREACHABLE": "#8250df",
    "SKIPPED": "#6e7781",
    "WAIVED": "#0969da",
}
#: Up to this many results needing attention, their checks are shown open (evidence stays collapsed).
OPEN_EVIDENCE_LIMIT = 200
#: Critical and high findings (merged across targets) listed in "Fix first"; the rest are in the checks.
PRIORITY_LIMIT = 30


def html_context(data: ReportData) -> dict[str, Any]:
    views = build_views(data)
    attention = sum(1 for r in data.results if r.status in NOT_PASSING)
    failing = [r.severity.value for r in data.results if r.status is Status.FAIL]
    return {
        "run": data.run,
        "integrity": data.integrity,
        "results": data.results,
        "views": views,
        "summary": views.summary,
        "history": data.history,
        "generated": data.generated,
        "itops_version": __version__,
        "csp": CSP,
        "statuses": [s.value for s in STATUS_ORDER],
        "not_passing": NOT_PASSING,
        "colours": COLOURS,
        "open_evidence": attention <= OPEN_EVIDENCE_LIMIT,
        "priority_limit": PRIORITY_LIMIT,
        "not_assessed": not_assessed_targets(data.results),
        "priority_counts": {sev: failing.count(sev) for sev in ("critical", "high")},
        "donut": charts.donut(views.summary.score),
        "status_bar": charts.stacked(views.summary.counts, 600.0),
        "severity_rows": charts.severity_rows(views.summary),
        "top_rows": charts.top_failing_rows(views.summary),
        "trend": charts.trend(data.history),
        "large": None,  # see itops/report/large.py
    }


def render_html(data: ReportData, templates: Path | None = None) -> bytes:
    return render_template("report.html.j2", templates, **html_context(data)).encode("utf-8")


def data_only_fetcher() -> Any:
    """A weasyprint URL fetcher that resolves data: URIs only: rendering never touches network or files."""
    import weasyprint  # type: ignore[import-not-found, import-untyped, unused-ignore]

    if hasattr(weasyprint, "URLFetcher"):  # weasyprint >= 66
        return weasyprint.URLFetcher(allowed_protocols=("data",), allow_redirects=False)

    def fetch(url: str, *args: Any, **kwargs: Any) -> Any:
        if not url.lower().startswith("data:"):
            raise ValueError(f"itops reports fetch nothing but data: URIs (refused {url[:60]!r})")
        return weasyprint.default_url_fetcher(url, *args, **kwargs)

    return fetch


def render_pdf(data: ReportData, templates: Path | None = None) -> bytes:
    """The HTML report printed to PDF by weasyprint (the optional ``itops[pdf]`` extra)."""
    from itops.report import ensure_available

    ensure_available("pdf")
    import weasyprint  # type: ignore[import-not-found, import-untyped, unused-ignore]

    html = render_html(data, templates).decode("utf-8")
    pdf: bytes = weasyprint.HTML(string=html, url_fetcher=data_only_fetcher()).write_pdf()
    return pdf
