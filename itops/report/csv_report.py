"""CSV: one row per result, for spreadsheets and ad-hoc analysis.

Cells that a spreadsheet would run as a formula (starting with ``=``, ``+``, ``-``,
``@``, tab or carriage return) get a leading apostrophe (OWASP's CSV injection advice),
and control characters show as ``\\xNN``. UTF-8 with a byte order mark so Excel reads
the encoding right.
"""

from __future__ import annotations

import csv
import io
from collections.abc import Iterable, Iterator
from pathlib import Path

from itops.frameworks import label
from itops.model import Result
from itops.report.data import ReportData, printable
from itops.report.jsondoc import iso_utc

COLUMNS = (
    "run_id",
    "target",
    "resource",
    "check_id",
    "title",
    "status",
    "severity",
    "message",
    "frameworks",
    "remediation",
    "evidence_source",
    "evidence_expected",
    "evidence_observed",
    "evidence_excerpt",
    "waiver_justification",
    "waiver_approver",
    "waiver_ticket",
    "waiver_expires",
    "started",
    "duration",
)
_FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def safe_cell(value: object) -> str:
    """A cell value no spreadsheet evaluates, with control characters made visible."""
    text = printable("" if value is None else str(value))
    return "'" + text if text.startswith(_FORMULA_START) else text


def render_csv(data: ReportData, templates: Path | None = None) -> bytes:
    return b"".join(csv_chunks(data.results))


def csv_chunks(results: Iterable[Result], rows_per_chunk: int = 2_000) -> Iterator[bytes]:
    """The CSV document in pieces (UTF-8 with BOM, the header first): a large run's rows are written
    as they are read from the store, never all held (see :func:`itops.report.large.write_large_csv`)."""
    out = io.StringIO(newline="")
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(COLUMNS)
    first = True
    for n, r in enumerate(results, start=1):
        w, ev = r.waiver, r.evidence
        frameworks = "; ".join(f"{label(fw)}:{','.join(refs)}" for fw, refs in r.frameworks.items())
        row = (
            r.run_id,
            r.target,
            r.resource,
            r.check_id,
            r.title,
            r.status.value,
            r.severity.value,
            r.message,
            frameworks,
            r.remediation,
            ev.source,
            ev.expected,
            ev.observed,
            ev.excerpt,
            w.justification if w else "",
            w.approver if w else "",
            w.ticket if w else "",
            w.expires if w else "",
            iso_utc(r.started) if r.started else "",
            f"{r.duration:.3f}",
        )
        writer.writerow([safe_cell(v) for v in row])
        if n % rows_per_chunk == 0:
            yield out.getvalue().encode("utf-8-sig" if first else "utf-8")
            first = False
            out.seek(0)
            out.truncate()
    yield out.getvalue().encode("utf-8-sig" if first else "utf-8")
