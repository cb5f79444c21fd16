"""KMS: automatic rotation of customer-managed keys."""

from __future__ import annotations

from itops.checkapi import CloudFacts, CloudResource, Finding, Params, Severity, aws_check


@aws_check(
    id="aws.kms.customer_key_rotation_enabled",
    title="Customer-managed KMS keys rotate automatically",
    severity=Severity.MEDIUM,
    rationale="Yearly rotation limits how much data one key version protects if it is ever compromised.",
    remediation="aws kms enable-key-rotation --key-id KEY_ID",
    frameworks={"cis-aws-foundations": ["3.6"], "nist-800-53": ["SC-12", "SC-13"], "iso-27001": ["A.8.24"]},
    collections=["kms.keys"],
    iam_actions=["kms:ListKeys", "kms:ListAliases", "kms:DescribeKey", "kms:GetKeyRotationStatus"],
)
def customer_key_rotation_enabled(facts: CloudFacts, params: Params) -> list[Finding]:
    """Every enabled symmetric customer-managed key has rotation on (AWS-managed keys rotate by themselves;
    a key behind an ``alias/aws/...`` alias is AWS-managed)."""

    def judge(k: CloudResource) -> Finding | None:
        meta = k.part("metadata") or {}
        if "rotation" not in k.data and "rotation" not in k.errors:
            return None  # AWS-managed, asymmetric, disabled or pending deletion: rotation does not apply
        where = f"KMS key {k.name} ({meta.get('Description') or 'no description'}; {facts.where(k.region)})"
        if not k.part("rotation"):
            return Finding.failed(f"{where} does not rotate", observed="rotation off", expected="rotation on")
        return Finding.passed(f"{where} rotates automatically")

    return facts.each("kms.keys", judge, what="customer-managed symmetric keys")
