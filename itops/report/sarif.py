"""SARIF 2.1.0 for code-scanning dashboards: the inventory is the "source" of a finding.

SARIF is a defect format, so only results a reader must act on are emitted: FAIL
(``kind: fail``, level from severity), WAIVED (a FAIL with an accepted external
suppression carrying the waiver) and ERROR/UNREACHABLE (``kind: open``: not assessed).
PASS and SKIPPED appear in the counts of ``runs[0].properties`` only; JUnit and JSON
carry every result.

Location: the inventory file and the line of the target (host, backup or cloud entry)
in it, as recorded in the run when it started (``Run.inventory_lines``): the inventory is
never re-read, so editing or moving it later cannot shift or break the locations. A run
stored before itops recorded the lines (or a target not in the inventory) keeps the file
and has no region, and a logical location names the target.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping
from pathlib import Path, PurePosixPath
from typing import Any
from urllib.parse import quote

from itops import __version__
from itops.frameworks import describe, references
from itops.model import Result, Severity, Status, frameworks_doc
from itops.report.data import ReportData, printable
from itops.report.jsondoc import iso_utc

SARIF_SCHEMA = "https://docs.oasis-open.org/sarif/sarif/v2.1.0/errata01/os/schemas/sarif-schema-2.1.0.json"
_LEVEL = {
    Severity.CRITICAL: "error",
    Severity.HIGH: "error",
    Severity.MEDIUM: "warning",
    Severity.LOW: "note",
    Severity.INFO: "note",
}
# GitHub code scanning ranks alerts by this property (0.1-10).
_SECURITY_SEVERITY = {
    Severity.CRITICAL: "9.5",
    Severity.HIGH: "8.0",
    Severity.MEDIUM: "5.5",
    Severity.LOW: "3.0",
    Severity.INFO: "0.5",
}
_EMITTED = (Status.FAIL, Status.WAIVED, Status.ERROR, Status.UNREACHABLE)


def artifact_uri(inventory: str) -> str:
    """A relative path stays relative (repository-relative for code scanning); absolute -> file URI."""
    path = Path(inventory)
    if path.is_absolute():
        return path.as_uri()
    return quote(PurePosixPath(*path.parts).as_posix(), safe="/")


def _line_of(target: str, lines: Mapping[str, int]) -> int | None:
    if target in lines:
        return lines[target]
    for sep in (":", "/"):  # cloud-style targets: "aws-prod:eu-west-1", "aws-prod/bucket"
        head = target.split(sep, 1)[0]
        if head in lines:
            return lines[head]
    return None


def _rule(r: Result) -> dict[str, Any]:
    # tags name the catalogue and its version: "cis-debian-12 v1.1.0: 5.1.20"
    tags = ["security", "compliance", *references(r.frameworks.items())]
    rule: dict[str, Any] = {
        "id": r.check_id,
        "name": r.check_id,
        "shortDescription": {"text": printable(r.title or r.check_id)},
        "defaultConfiguration": {"level": _LEVEL[r.severity]},
        "properties": {
            "tags": tags,
            "security-severity": _SECURITY_SEVERITY[r.severity],
            "severity": r.severity.value,
            "frameworks": frameworks_doc(r.frameworks),
            "catalogues": describe(r.frameworks),
        },
    }
    if r.remediation:
        rule["help"] = {"text": printable(r.remediation)}
    return rule


def _fingerprint(r: Result) -> str:
    return hashlib.sha256("\x1f".join(r.key).encode("utf-8", "surrogatepass")).hexdigest()


def _result(r: Result, rule_index: int, uri: str | None, lines: Mapping[str, int] | None) -> dict[str, Any]:
    location: dict[str, Any] = {
        "logicalLocations": [
            {
                "name": printable(r.target),
                "kind": "target",
                "fullyQualifiedName": printable(r.target + (f"/{r.resource}" if r.resource else "")),
            }
        ],
    }
    if uri:
        physical: dict[str, Any] = {"artifactLocation": {"uri": uri}}
        line = _line_of(r.target, lines) if lines is not None else None
        if line:
            physical["region"] = {"startLine": line}
        location["physicalLocation"] = physical
    where = r.target + (f" ({r.resource})" if r.resource else "")
    out: dict[str, Any] = {
        "ruleId": r.check_id,
        "ruleIndex": rule_index,
        "kind": "fail" if r.status in (Status.FAIL, Status.WAIVED) else "open",
        "message": {"text": printable(f"{r.status.value} on {where}: {r.message}")},
        "locations": [location],
        "partialFingerprints": {"itopsResult/v1": _fingerprint(r)},
        "properties": {
            "status": r.status.value,
            "severity": r.severity.value,
            "target": r.target,
            "resource": r.resource,
            "evidence": r.evidence.to_dict(),
        },
    }
    # SARIF: a result whose kind is not "fail" has level "none".
    out["level"] = _LEVEL[r.severity] if out["kind"] == "fail" else "none"
    if r.status is Status.WAIVED:
        w = r.waiver
        justification = (
            f"{w.justification} (approved by {w.approver}{', ' + w.ticket if w.ticket else ''}; expires {w.expires})"
            if w
            else "waived"
        )
        out["suppressions"] = [{"kind": "external", "status": "accepted", "justification": printable(justification)}]
    return out


def sarif_document(data: ReportData) -> dict[str, Any]:
    run = data.run
    lines = run.inventory_lines or None  # as recorded when the run started, never today's file
    uri = artifact_uri(run.inventory) if run.inventory else None
    rules: list[dict[str, Any]] = []
    index: dict[str, int] = {}
    results = []
    for r in data.results:
        if r.status not in _EMITTED:
            continue
        if r.check_id not in index:
            index[r.check_id] = len(rules)
            rules.append(_rule(r))
        results.append(_result(r, index[r.check_id], uri, lines))
    invocation: dict[str, Any] = {"executionSuccessful": run.state == "complete"}
    if run.exit_code is not None:
        invocation["exitCode"] = run.exit_code
    if started := iso_utc(run.started):
        invocation["startTimeUtc"] = started
    if finished := iso_utc(run.finished):
        invocation["endTimeUtc"] = finished
    sarif_run: dict[str, Any] = {
        "tool": {"driver": {"name": "itops", "version": __version__, "semanticVersion": __version__, "rules": rules}},
        "automationDetails": {"id": f"itops/{run.kind}/{run.id}"},
        "invocations": [invocation],
        "results": results,
        "properties": {"counts": data.counts, "inventoryDigest": run.inventory_digest, "runId": run.id},
    }
    if uri:
        sarif_run["artifacts"] = [{"location": {"uri": uri}, "roles": ["analysisTarget"]}]
    return {"$schema": SARIF_SCHEMA, "version": "2.1.0", "runs": [sarif_run]}


def render_sarif(data: ReportData, templates: Path | None = None) -> bytes:
    return (json.dumps(sarif_document(data), indent=2, ensure_ascii=False) + "\n").encode("utf-8")
