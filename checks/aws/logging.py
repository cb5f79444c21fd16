"""Logging: CloudTrail (multi-region, validation, KMS, its bucket) and the AWS Config recorder."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from itops.checkapi import CloudFacts, CloudResource, Finding, NotAssessable, Params, Severity, aws_check
from itops.checklib.aws import public_acl_grants, public_statements

TRAILS = ["cloudtrail:DescribeTrails"]
TRAIL_BUCKET = [*TRAILS, "s3:ListAllMyBuckets", "s3:GetBucketLocation"]


def _logs_management_events(selectors: Mapping[str, Any] | None) -> bool:
    """Basic selectors with management events read+write, or advanced ones selecting the Management category."""
    sel = selectors or {}
    for s in sel.get("EventSelectors") or []:
        if s.get("IncludeManagementEvents", True) and s.get("ReadWriteType", "All") == "All":
            return True
    for adv in sel.get("AdvancedEventSelectors") or []:
        for field in adv.get("FieldSelectors", []):
            if field.get("Field") == "eventCategory" and "Management" in field.get("Equals", []):
                return True
    # a trail without any selectors logs all management events (the default)
    return not sel.get("EventSelectors") and not sel.get("AdvancedEventSelectors")


@aws_check(
    id="aws.cloudtrail.multi_region_trail_logging",
    title="A multi-region CloudTrail trail is logging management events",
    severity=Severity.HIGH,
    rationale="Without a trail covering every region, API activity in an unwatched region (a favourite of "
    "attackers) leaves no record.",
    remediation="aws cloudtrail create-trail --name org-trail --s3-bucket-name LOG_BUCKET --is-multi-region-trail "
    "--enable-log-file-validation --kms-key-id KEY; aws cloudtrail start-logging --name org-trail",
    frameworks={
        "cis-aws-foundations": ["3.1"],
        "nist-800-53": ["AU-2", "AU-3", "AU-12"],
        "iso-27001": ["A.8.15", "A.8.16"],
    },
    collections=["cloudtrail.trails"],
    iam_actions=[*TRAILS, "cloudtrail:GetTrailStatus", "cloudtrail:GetEventSelectors"],
)
def multi_region_trail_logging(facts: CloudFacts, params: Params) -> list[Finding]:
    """At least one trail is multi-region, logging now, and records read and write management events."""
    errors = facts.collection_errors("cloudtrail.trails")
    if errors:
        return errors
    resource, where = facts.region_arn("cloudtrail", "global"), facts.where()
    good, unknown, seen = [], [], []
    for t in facts["cloudtrail.trails"].resources:
        trail = t.get("trail", {})
        if not trail.get("IsMultiRegionTrail"):
            seen.append(f"{t.name}: single-region")
            continue
        try:
            logging = bool((t.part("status") or {}).get("IsLogging"))
            management = _logs_management_events(t.part("selectors"))
        except NotAssessable as exc:
            unknown.append(f"{t.name}: {exc}")
            continue
        if logging and management:
            good.append(t.name)
        else:
            seen.append(f"{t.name}: " + ("not logging" if not logging else "management events not all logged"))
    if good:
        return [Finding.passed(f"multi-region trail {', '.join(good)} logging in {where}", resource=resource)]
    if unknown:
        return [Finding.error("; ".join(unknown) + f" ({where})", resource=resource)]
    observed = "; ".join(seen) or "no trails"
    return [
        Finding.failed(
            f"no logging multi-region trail in {where} ({observed})",
            resource=resource,
            observed=observed,
            expected="a multi-region trail logging all management events",
        )
    ]


@aws_check(
    id="aws.cloudtrail.log_file_validation_enabled",
    title="CloudTrail trails validate their log files",
    severity=Severity.MEDIUM,
    rationale="Log file validation (signed digests) shows whether delivered logs were changed or deleted.",
    remediation="aws cloudtrail update-trail --name TRAIL --enable-log-file-validation",
    frameworks={"cis-aws-foundations": ["3.2"], "nist-800-53": ["AU-9", "SI-7"], "iso-27001": ["A.8.15"]},
    collections=["cloudtrail.trails"],
    iam_actions=TRAILS,
)
def log_file_validation_enabled(facts: CloudFacts, params: Params) -> list[Finding]:
    """Every trail has LogFileValidationEnabled=true."""

    def judge(t: CloudResource) -> Finding:
        where = f"trail {t.name} ({facts.where(t.region)})"
        if not t.get("trail", {}).get("LogFileValidationEnabled"):
            return Finding.failed(f"{where} does not validate log files", observed="off", expected="on")
        return Finding.passed(f"{where} validates log files")

    return facts.each("cloudtrail.trails", judge, what="CloudTrail trails")


@aws_check(
    id="aws.cloudtrail.kms_encrypted",
    title="CloudTrail logs are encrypted with a KMS key",
    severity=Severity.MEDIUM,
    rationale="SSE-KMS adds a key policy between readers and the logs, and records every decryption.",
    remediation="aws cloudtrail update-trail --name TRAIL --kms-key-id KEY_ARN (the key policy must allow "
    "cloudtrail.amazonaws.com to encrypt)",
    frameworks={"cis-aws-foundations": ["3.5"], "nist-800-53": ["SC-28", "AU-9"], "iso-27001": ["A.8.24", "A.8.15"]},
    collections=["cloudtrail.trails"],
    iam_actions=TRAILS,
)
def kms_encrypted(facts: CloudFacts, params: Params) -> list[Finding]:
    """Every trail has a KmsKeyId."""

    def judge(t: CloudResource) -> Finding:
        where = f"trail {t.name} ({facts.where(t.region)})"
        key = t.get("trail", {}).get("KmsKeyId")
        if not key:
            return Finding.failed(f"{where} logs are not KMS-encrypted", observed="SSE-S3", expected="SSE-KMS")
        return Finding.passed(f"{where} logs are encrypted with {key}", observed=str(key))

    return facts.each("cloudtrail.trails", judge, what="CloudTrail trails")


def _account_block(facts: CloudFacts) -> Mapping[str, Any]:
    """The account-level Block Public Access settings; {} when absent or unreadable (then only the
    bucket's own block counts, so an unknown account setting never hides a public bucket)."""
    coll = facts.collections.get("s3.account_public_access_block")
    if coll is None or coll.errors:
        return {}
    try:
        return next((r.part("config") or {} for r in coll.resources), {})
    except NotAssessable:
        return {}


def _trail_buckets(facts: CloudFacts, judge: Any) -> list[Finding]:
    """Per trail: its log bucket's resource (or a SKIPPED when the bucket is in another account)."""
    buckets = {b.name: b for b in facts["s3.buckets"].resources}
    bucket_errors = facts.collection_errors("s3.buckets")

    def one(t: CloudResource) -> Finding:
        name = t.get("trail", {}).get("S3BucketName", "")
        where = f"bucket {name} of trail {t.name} ({facts.where(t.region)})"
        if name in buckets:
            verdict: Finding = judge(buckets[name], where)
            return verdict
        if bucket_errors:
            return Finding.error(f"{where}: {bucket_errors[0].message}")
        return Finding.skipped(f"{where} is not in this account; audit it in its own account")

    return facts.each("cloudtrail.trails", one, what="CloudTrail trails")


@aws_check(
    id="aws.cloudtrail.bucket_not_public",
    title="CloudTrail log buckets are not public",
    severity=Severity.CRITICAL,
    rationale="Public trail logs reveal the account's whole API history to attackers, and may let them be deleted.",
    remediation="aws s3api put-public-access-block --bucket LOG_BUCKET --public-access-block-configuration "
    "BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true",
    frameworks={"nist-800-53": ["AU-9", "AC-3"], "iso-27001": ["A.8.15", "A.8.3"]},
    collections=["cloudtrail.trails", "s3.buckets", "s3.account_public_access_block"],
    iam_actions=[
        *TRAIL_BUCKET,
        "s3:GetBucketPolicy",
        "s3:GetBucketAcl",
        "s3:GetBucketPublicAccessBlock",
        "s3:GetAccountPublicAccessBlock",
    ],
)
def bucket_not_public(facts: CloudFacts, params: Params) -> list[Finding]:
    """The trail's bucket has no public policy statement or ACL grant that Block Public Access (the
    bucket's or the account's) lets through."""
    account = _account_block(facts)

    def judge(b: CloudResource, where: str) -> Finding:
        pab = {**(b.part("public_access_block") or {}), **{k: True for k, v in account.items() if v}}
        public = []
        if public_statements(b.part("policy")) and not pab.get("RestrictPublicBuckets"):
            public.append("bucket policy allows everyone")
        if public_acl_grants(b.part("acl")) and not pab.get("IgnorePublicAcls"):
            public.append("ACL grants " + ", ".join(public_acl_grants(b.part("acl"))))
        if public:
            return Finding.failed(
                f"{where} is public: {'; '.join(public)}",
                observed="; ".join(public),
                expected="not public",
            )
        return Finding.passed(f"{where} is not public")

    return _trail_buckets(facts, judge)


@aws_check(
    id="aws.cloudtrail.bucket_access_logging_enabled",
    title="CloudTrail log buckets log access requests",
    severity=Severity.LOW,
    rationale="Access logs on the trail bucket show who read or tried to delete the audit logs.",
    remediation="aws s3api put-bucket-logging --bucket LOG_BUCKET --bucket-logging-status "
    '\'{"LoggingEnabled":{"TargetBucket":"ACCESS_LOG_BUCKET","TargetPrefix":"cloudtrail/"}}\'',
    frameworks={"cis-aws-foundations": ["3.4"], "nist-800-53": ["AU-2", "AU-9"], "iso-27001": ["A.8.15"]},
    collections=["cloudtrail.trails", "s3.buckets"],
    iam_actions=[*TRAIL_BUCKET, "s3:GetBucketLogging"],
)
def bucket_access_logging_enabled(facts: CloudFacts, params: Params) -> list[Finding]:
    """The trail's bucket has server access logging on."""

    def judge(b: CloudResource, where: str) -> Finding:
        if not (b.part("logging") or {}).get("TargetBucket"):
            return Finding.failed(f"{where} has no access logging", observed="off", expected="on")
        return Finding.passed(f"{where} has access logging")

    return _trail_buckets(facts, judge)


@aws_check(
    id="aws.config.recorder_enabled",
    title="AWS Config records all resources in every region",
    severity=Severity.MEDIUM,
    rationale="The Config recorder keeps the history of every resource's configuration: what changed, when, "
    "and what it looked like before an incident.",
    remediation="aws configservice put-configuration-recorder --configuration-recorder "
    "name=default,roleARN=ROLE_ARN --recording-group allSupported=true,includeGlobalResourceTypes=true; "
    "aws configservice put-delivery-channel ...; aws configservice start-configuration-recorder "
    "--configuration-recorder-name default",
    frameworks={
        "cis-aws-foundations": ["3.3"],
        "nist-800-53": ["CM-8", "CM-3", "CA-7"],
        "iso-27001": ["A.8.9", "A.5.9"],
    },
    collections=["config.recorders"],
    iam_actions=["config:DescribeConfigurationRecorders", "config:DescribeConfigurationRecorderStatus"],
)
def recorder_enabled(facts: CloudFacts, params: Params) -> list[Finding]:
    """Each region has a recorder that records all supported resources and is recording without failure."""

    def judge(r: CloudResource) -> Finding:
        where = facts.where(r.region)
        recording = {
            s.get("name")
            for s in r.part("statuses") or []
            if s.get("recording") and str(s.get("lastStatus", "")).upper() != "FAILURE"
        }
        complete = [
            c.get("name")
            for c in r.part("recorders") or []
            if c.get("name") in recording
            and (
                c.get("recordingGroup", {}).get("allSupported")
                or c.get("recordingGroup", {}).get("recordingStrategy", {}).get("useOnly")
                == "ALL_SUPPORTED_RESOURCE_TYPES"
            )
        ]
        if not complete:
            observed = "no recorder" if not r.part("recorders") else "not recording all resources"
            return Finding.failed(
                f"AWS Config is not recording in {where} ({observed})",
                observed=observed,
                expected="recording all supported resources",
            )
        return Finding.passed(f"AWS Config recorder {', '.join(complete)} is recording in {where}")

    return facts.each("config.recorders", judge, what="regions")
