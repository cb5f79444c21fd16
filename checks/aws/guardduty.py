"""GuardDuty: threat detection on in every region."""

from __future__ import annotations

from itops.checkapi import CloudFacts, CloudResource, Finding, Params, Severity, aws_check


@aws_check(
    id="aws.guardduty.enabled",
    title="GuardDuty is enabled in every region",
    severity=Severity.MEDIUM,
    rationale="GuardDuty watches CloudTrail, VPC flow and DNS logs for compromised credentials, crypto-mining "
    "and reconnaissance; a region without it is a blind spot.",
    remediation="aws guardduty create-detector --enable --region REGION "
    "(or enable it organisation-wide from the delegated administrator account)",
    frameworks={"nist-800-53": ["SI-4", "IR-4", "RA-5"], "iso-27001": ["A.8.16", "A.5.25"]},
    collections=["guardduty.detectors"],
    iam_actions=["guardduty:ListDetectors", "guardduty:GetDetector"],
)
def enabled(facts: CloudFacts, params: Params) -> list[Finding]:
    """Each audited region has a detector with Status ENABLED."""

    def judge(r: CloudResource) -> Finding:
        detectors = r.part("detectors") or []
        on = [d["id"] for d in detectors if d.get("status") == "ENABLED"]
        where = facts.where(r.region)
        if not on:
            observed = "no detector" if not detectors else "detector suspended"
            return Finding.failed(f"GuardDuty is off in {where} ({observed})", observed=observed, expected="ENABLED")
        return Finding.passed(f"GuardDuty detector {on[0]} is enabled in {where}")

    return facts.each("guardduty.detectors", judge, what="regions")
