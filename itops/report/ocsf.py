"""OCSF Detection Findings (class 2004) for SIEMs and data lakes, built with py-ocsf-models.

The output is a JSON array with one finding per result (PASS included, as Prowler does,
so a dashboard can compute compliance; filter on ``status_code``). ``status_code`` is
the itops status; ``status_id`` is Suppressed for WAIVED and New otherwise; framework
references, the waiver and the run id travel in ``unmapped``.
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any

from py_ocsf_models.events.findings.activity_id import ActivityID  # type: ignore[import-untyped, unused-ignore]
from py_ocsf_models.events.findings.detection_finding import DetectionFinding  # type: ignore[import-untyped, unused-ignore]
from py_ocsf_models.events.findings.detection_finding_type_id import DetectionFindingTypeID  # type: ignore[import-untyped, unused-ignore]
from py_ocsf_models.events.findings.severity_id import SeverityID  # type: ignore[import-untyped, unused-ignore]
from py_ocsf_models.events.findings.status_id import StatusID  # type: ignore[import-untyped, unused-ignore]
from py_ocsf_models.objects.analytic import Analytic  # type: ignore[import-untyped, unused-ignore]
from py_ocsf_models.objects.evidence_artifacts import EvidenceArtifacts  # type: ignore[import-untyped, unused-ignore]
from py_ocsf_models.objects.finding_info import FindingInformation  # type: ignore[import-untyped, unused-ignore]
from py_ocsf_models.objects.metadata import Metadata  # type: ignore[import-untyped, unused-ignore]
from py_ocsf_models.objects.product import Product  # type: ignore[import-untyped, unused-ignore]
from py_ocsf_models.objects.remediation import Remediation  # type: ignore[import-untyped, unused-ignore]
from py_ocsf_models.objects.resource_details import ResourceDetails  # type: ignore[import-untyped, unused-ignore]

from itops import __version__
from itops.frameworks import describe, references
from itops.model import Result, Run, Severity, Status, frameworks_doc
from itops.report.data import ReportData

_SEVERITY = {
    Severity.CRITICAL: SeverityID.Critical,
    Severity.HIGH: SeverityID.High,
    Severity.MEDIUM: SeverityID.Medium,
    Severity.LOW: SeverityID.Low,
    Severity.INFO: SeverityID.Informational,
}
_ANALYTIC_RULE = 1  # OCSF analytic type_id 1: Rule


def _ms(seconds: float) -> int:
    return round(seconds * 1000)


def finding_uid(r: Result) -> str:
    """Stable per run, check, target and resource."""
    digest = hashlib.sha256("\x1f".join((r.run_id, *r.key)).encode("utf-8", "surrogatepass")).hexdigest()
    return f"itops-{digest[:32]}"


def detection_finding(r: Result, run: Run) -> DetectionFinding:
    when = r.started or run.started
    status_id = StatusID.Suppressed if r.status is Status.WAIVED else StatusID.New
    ev = r.evidence
    evidence = EvidenceArtifacts(
        name=ev.source or None,
        data={"command": ev.source, "excerpt": ev.excerpt, "observed": ev.observed, "expected": ev.expected},
    )
    target_uid = r.target + (f"/{r.resource}" if r.resource else "")
    return DetectionFinding(
        activity_id=ActivityID.Create,
        activity_name="Create",
        type_uid=DetectionFindingTypeID.Create,
        type_name="Detection Finding: Create",
        time=_ms(when),
        start_time=_ms(when),
        end_time=_ms(when + r.duration),
        duration=_ms(r.duration),
        severity_id=_SEVERITY[r.severity],
        severity=_SEVERITY[r.severity].name,
        status_id=status_id,
        status=status_id.name,
        status_code=r.status.value,
        status_detail=r.message,
        message=r.message,
        metadata=Metadata(
            product=Product(name="itops", vendor_name="itops", version=__version__),
            event_code=r.check_id,
            correlation_uid=run.id,
            uid=finding_uid(r),
        ),
        finding_info=FindingInformation(
            uid=finding_uid(r),
            title=r.title or r.check_id,
            desc=r.message,
            created_time=_ms(when),
            types=references(r.frameworks.items()) or None,  # "cis-debian-12 v1.1.0: 5.1.20"
            analytic=Analytic(name=r.check_id, uid=r.check_id, type="Rule", type_id=_ANALYTIC_RULE),
        ),
        resources=[ResourceDetails(name=r.target, uid=target_uid, type="itops.target", data={"resource": r.resource})],
        evidences=[evidence],
        remediation=Remediation(desc=r.remediation) if r.remediation else None,
        unmapped={
            "itops": {
                "run_id": run.id,
                "run_kind": run.kind,
                "status": r.status.value,
                "frameworks": frameworks_doc(r.frameworks),
                "catalogues": describe(r.frameworks),
                "waiver": r.waiver.to_dict() if r.waiver else None,
            }
        },
    )


def ocsf_findings(data: ReportData) -> list[dict[str, Any]]:
    return [detection_finding(r, data.run).model_dump(mode="json", exclude_none=True) for r in data.results]


def render_ocsf(data: ReportData, templates: Path | None = None) -> bytes:
    return (json.dumps(ocsf_findings(data), indent=1, ensure_ascii=False) + "\n").encode("utf-8")
