"""Built-in report formats; each renderer imports its module only when a report is rendered."""

from __future__ import annotations

import importlib.util
from pathlib import Path

from itops.hookspecs import hookimpl
from itops.plugins import ReportFormat
from itops.report.data import ReportData


def _html(data: ReportData, templates: Path | None) -> bytes:
    from itops.report.html import render_html

    return render_html(data, templates)


def _pdf(data: ReportData, templates: Path | None) -> bytes:
    from itops.report.html import render_pdf

    return render_pdf(data, templates)


def _md(data: ReportData, templates: Path | None) -> bytes:
    from itops.report.markdown import render_markdown

    return render_markdown(data, templates)


def _json(data: ReportData, templates: Path | None) -> bytes:
    from itops.report.jsondoc import render_json

    return render_json(data, templates)


def _csv(data: ReportData, templates: Path | None) -> bytes:
    from itops.report.csv_report import render_csv

    return render_csv(data, templates)


def _junit(data: ReportData, templates: Path | None) -> bytes:
    from itops.report.junit import render_junit

    return render_junit(data, templates)


def _sarif(data: ReportData, templates: Path | None) -> bytes:
    from itops.report.sarif import render_sarif

    return render_sarif(data, templates)


def _ocsf(data: ReportData, templates: Path | None) -> bytes:
    from itops.report.ocsf import render_ocsf

    return render_ocsf(data, templates)


def _pdf_unavailable() -> tuple[str, str] | None:
    if importlib.util.find_spec("weasyprint") is None:
        return (
            "the pdf format needs weasyprint, which is not installed",
            "pip install 'itops[pdf]' (or open the html report in a browser and print it to PDF)",
        )
    return None


@hookimpl
def itops_report_formats() -> list[ReportFormat]:
    return [
        ReportFormat("html", ".html", _html),
        ReportFormat("md", ".md", _md, aliases=("markdown",)),
        ReportFormat("json", ".json", _json),
        ReportFormat("csv", ".csv", _csv),
        ReportFormat("junit", ".xml", _junit, aliases=("xml", "junit-xml")),
        ReportFormat("sarif", ".sarif", _sarif),
        ReportFormat("ocsf", ".ocsf.json", _ocsf),
        ReportFormat("pdf", ".pdf", _pdf, unavailable=_pdf_unavailable),
    ]
