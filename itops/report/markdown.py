"""Markdown: a summary for pull requests, tickets and wikis (templates/report.md.j2).

Every value goes through the ``md`` filter (HTML and Markdown syntax escaped, one line)
or ``md_code`` (a fenced block longer than any backtick run inside), so a hostile target
name or output excerpt can neither break the layout nor inject HTML.
"""

from __future__ import annotations

from pathlib import Path

from itops import __version__
from itops.report.data import ReportData
from itops.report.templating import render_template
from itops.report.views import NOT_PASSING, STATUS_ORDER, build_views, not_assessed_targets

#: Findings listed in full (with evidence); the rest are counted.
MAX_FINDINGS = 500


def render_markdown(data: ReportData, templates: Path | None = None) -> bytes:
    views = build_views(data)
    # a target none of whose checks ran (unreachable, sudo refused) is one line, not one finding per check
    not_assessed = not_assessed_targets(data.results)
    attention = [v for v in views.checks if v.status in NOT_PASSING]
    findings = [
        i
        for v in attention
        for i in v.results
        if data.results[i].status in NOT_PASSING and data.results[i].target not in not_assessed
    ]
    text = render_template(
        "report.md.j2",
        templates,
        run=data.run,
        integrity=data.integrity,
        results=data.results,
        views=views,
        summary=views.summary,
        history=data.history,
        generated=data.generated,
        itops_version=__version__,
        statuses=[s.value for s in STATUS_ORDER],
        findings=findings[:MAX_FINDINGS],
        not_assessed=not_assessed,
        more_findings=max(0, len(findings) - MAX_FINDINGS),
    )
    return text.encode("utf-8")
