"""The JSON document of a run (schema ``itops.run/1``, ``itops/report/schema/run-1.json``).

``itops report --format json``, ``itops audit --format json`` and ``itops runs show
--format json`` all print this same document. Adding an optional field keeps the
version; renaming, removing or changing the meaning of one bumps it (``itops.run/2``).
"""

from __future__ import annotations

import datetime as dt
import json
from collections.abc import Mapping, Sequence
from functools import lru_cache
from pathlib import Path
from typing import Any

from itops import __version__
from itops.frameworks import describe
from itops.model import Result, Run, Severity, Status, count_statuses
from itops.redact import redact_result
from itops.report.data import ReportData, compliance_score, coverage

SCHEMA_ID = "itops.run/1"
SCHEMA_PATH = Path(__file__).resolve().parent / "schema" / "run-1.json"


def iso_utc(ts: float | None) -> str | None:
    """``2025-01-31T12:00:00.123Z`` (UTC, milliseconds) or None."""
    if ts is None:
        return None
    return dt.datetime.fromtimestamp(ts, dt.UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def run_document(
    run: Run, results: Sequence[Result], generated: float | None = None, integrity: Mapping[str, Any] | None = None
) -> dict[str, Any]:
    """The ``itops.run/1`` document as plain data (results redacted once more)."""
    clean = [redact_result(r) for r in results]
    counts = count_statuses(clean)
    by_severity = {s.value: dict.fromkeys((x.value for x in Status), 0) for s in Severity}
    for r in clean:
        by_severity[r.severity.value][r.status.value] += 1
    header = run.to_dict()
    header["started_at"] = iso_utc(run.started)
    header["finished_at"] = iso_utc(run.finished)
    missing = run.not_audited(clean)
    doc: dict[str, Any] = {
        "schema": SCHEMA_ID,
        "generator": {"name": "itops", "version": __version__},
        "generated_at": iso_utc(generated) if generated is not None else None,
        "run": header,
        "counts": counts,
        "summary": {
            "total": len(clean),
            "score": compliance_score(counts),
            "coverage": coverage(counts, missing),
            "by_severity": by_severity,
            "targets": len({r.target for r in clean}),
            "checks": len({r.check_id for r in clean}),
            "not_audited": list(missing),
        },
        # title and version of each framework catalogue the results reference (cis-debian-12: v1.1.0)
        "catalogues": describe(dict.fromkeys(k for r in clean for k in r.frameworks)),
        "results": [r.to_dict() for r in clean],
    }
    if integrity is not None:
        doc["integrity"] = dict(integrity)
    return doc


def run_to_json(run: Run, results: Sequence[Result], integrity: Mapping[str, Any] | None = None) -> str:
    """The document as JSON text (what ``--format json`` prints): the header indented, one result per
    line (json's C encoder only serves compact output; indenting 10,000 results in Python costs seconds)."""
    doc = run_document(run, results, integrity=integrity)
    items = doc.pop("results")
    head = json.dumps(doc, indent=2, ensure_ascii=False)
    assert head.endswith("\n}")
    body = ",\n".join("    " + json.dumps(item, ensure_ascii=False) for item in items)
    return head[:-2] + ',\n  "results": [\n' + body + ("\n" if body else "") + "  ]\n}"


def render_json(data: ReportData, templates: Path | None = None) -> bytes:
    integrity = data.integrity.to_dict() if data.integrity is not None else None
    doc = run_document(data.run, data.results, generated=data.generated, integrity=integrity)
    return (json.dumps(doc, indent=2, ensure_ascii=False) + "\n").encode("utf-8")


@lru_cache(maxsize=1)
def load_schema() -> dict[str, Any]:
    """The JSON Schema (draft 2020-12) of the document."""
    schema: dict[str, Any] = json.loads(SCHEMA_PATH.read_text(encoding="utf-8"))
    return schema
