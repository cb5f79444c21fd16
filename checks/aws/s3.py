"""S3: public access, encryption, versioning, logging, TLS, and object lock on backup buckets."""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from typing import Any

from itops.checkapi import CloudFacts, CloudResource, Finding, NotAssessable, Params, Severity, Status, aws_check
from itops.checklib.aws import denies_insecure_transport, matches_any, public_acl_grants, public_statements

BUCKETS = ["s3:ListAllMyBuckets", "s3:GetBucketLocation"]
ACCOUNT_BLOCK = "s3.account_public_access_block"
PAB_KEYS = ("BlockPublicAcls", "IgnorePublicAcls", "BlockPublicPolicy", "RestrictPublicBuckets")


def _pab_missing(config: dict[str, bool] | None) -> list[str]:
    return [k for k in PAB_KEYS if not (config or {}).get(k)]


def _account_block(facts: CloudFacts) -> tuple[Mapping[str, Any], str]:
    """The account-level Block Public Access settings, and why they are unknown when they are."""
    coll = facts.collections.get(ACCOUNT_BLOCK)
    if coll is None:
        return {}, "account-level Block Public Access not read"
    if coll.errors:
        return {}, f"account-level Block Public Access unknown: {next(iter(coll.errors.values()))}"
    try:
        return next((r.part("config") or {} for r in coll.resources), {}), ""
    except NotAssessable as exc:
        return {}, f"account-level Block Public Access unknown: {exc}"


def public_exposure(facts: CloudFacts, b: CloudResource, setting: str, found: list[str]) -> tuple[str, str]:
    """Whether a public grant ``found`` on bucket ``b`` is in effect: ("", why not) when Block Public
    Access ``setting`` (RestrictPublicBuckets for policies, IgnorePublicAcls for ACLs) is on for the
    bucket or the account, else (the grant, a note when the account-level block is unknown)."""
    if not found:
        return "", ""
    account, unknown = _account_block(facts)
    if (b.part("public_access_block") or {}).get(setting):
        return "", f"Block Public Access {setting} on the bucket neutralises it"
    if account.get(setting):
        return "", f"Block Public Access {setting} on the account neutralises it"
    return "; ".join(found), unknown


@aws_check(
    id="aws.s3.account_public_access_blocked",
    title="S3 Block Public Access is on for the whole account",
    severity=Severity.HIGH,
    rationale="The account-level block overrides any bucket policy or ACL that would make data public, "
    "so one mistaken bucket setting cannot expose it.",
    remediation="aws s3control put-public-access-block --account-id ACCOUNT_ID --public-access-block-configuration "
    "BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true",
    frameworks={
        "cis-aws-foundations": ["2.1.4"],
        "nist-800-53": ["AC-3", "AC-21", "SC-7"],
        "iso-27001": ["A.8.3", "A.8.12"],
    },
    collections=["s3.account_public_access_block"],
    iam_actions=["s3:GetAccountPublicAccessBlock"],
)
def account_public_access_blocked(facts: CloudFacts, params: Params) -> list[Finding]:
    """All four account-level Block Public Access settings are enabled."""

    def judge(res: CloudResource) -> Finding:
        missing = _pab_missing(res.part("config"))
        where = facts.where()
        if missing:
            return Finding.failed(
                f"S3 account Block Public Access incomplete in {where}: {', '.join(missing)} off",
                observed=", ".join(missing) + " off",
                expected="all four settings on",
            )
        return Finding.passed(f"S3 account Block Public Access fully on in {where}")

    return facts.each("s3.account_public_access_block", judge, what="account settings")


@aws_check(
    id="aws.s3.bucket_public_access_blocked",
    title="S3 buckets have Block Public Access on",
    severity=Severity.HIGH,
    rationale="A bucket-level block stops public ACLs and policies on that bucket even if the account-level "
    "block is later turned off.",
    remediation="aws s3api put-public-access-block --bucket BUCKET --public-access-block-configuration "
    "BlockPublicAcls=true,IgnorePublicAcls=true,BlockPublicPolicy=true,RestrictPublicBuckets=true",
    frameworks={
        "cis-aws-foundations": ["2.1.4"],
        "nist-800-53": ["AC-3", "AC-21", "SC-7"],
        "iso-27001": ["A.8.3", "A.8.12"],
    },
    collections=["s3.buckets"],
    iam_actions=[*BUCKETS, "s3:GetBucketPublicAccessBlock"],
)
def bucket_public_access_blocked(facts: CloudFacts, params: Params) -> list[Finding]:
    """Every bucket has all four Block Public Access settings enabled."""

    def judge(b: CloudResource) -> Finding:
        missing = _pab_missing(b.part("public_access_block"))
        where = f"bucket {b.name} ({facts.where(b.region)})"
        if missing:
            return Finding.failed(
                f"Block Public Access incomplete on {where}: {', '.join(missing)} off",
                observed=", ".join(missing) + " off",
                expected="all four settings on",
            )
        return Finding.passed(f"Block Public Access fully on for {where}")

    return facts.each("s3.buckets", judge, what="S3 buckets")


@aws_check(
    id="aws.s3.bucket_policy_not_public",
    title="No S3 bucket policy grants access to everyone",
    severity=Severity.CRITICAL,
    rationale="An Allow statement to Principal * without conditions lets anyone on the internet read or "
    "change the bucket's objects.",
    remediation="Remove or restrict the public statement: aws s3api get-bucket-policy --bucket BUCKET, edit, then "
    "aws s3api put-bucket-policy --bucket BUCKET --policy file://policy.json",
    frameworks={
        "cis-aws-foundations": ["2.1.4"],
        "nist-800-53": ["AC-3", "AC-21", "SC-7"],
        "iso-27001": ["A.5.15", "A.8.3"],
    },
    collections=["s3.buckets", ACCOUNT_BLOCK],
    iam_actions=[*BUCKETS, "s3:GetBucketPolicy", "s3:GetBucketPublicAccessBlock", "s3:GetAccountPublicAccessBlock"],
)
def bucket_policy_not_public(facts: CloudFacts, params: Params) -> list[Finding]:
    """No bucket policy has an Allow statement for Principal ``*`` that is in effect.

    A Condition only makes a statement non-public when it confines it to fixed accounts,
    networks, VPCs or organisations (aws:SourceVpce, aws:PrincipalOrgID ...); one on
    aws:SecureTransport or aws:Referer does not. A public statement that Block Public Access
    (RestrictPublicBuckets, on the bucket or the account) makes AWS ignore is not exposure."""

    def judge(b: CloudResource) -> Finding:
        public = public_statements(b.part("policy"))
        where = f"bucket {b.name} ({facts.where(b.region)})"
        shown = json.dumps([dict(s) for s in public])[:500]
        exposed, note = public_exposure(facts, b, "RestrictPublicBuckets", [shown] if public else [])
        if exposed:
            return Finding.failed(
                f"bucket policy of {where} allows everyone" + (f" ({note})" if note else ""),
                observed=exposed,
                expected="no Allow to Principal * unless confined to fixed accounts, networks or VPCs",
            )
        if public:
            return Finding.passed(f"bucket policy of {where} allows everyone, but {note}", observed=shown)
        return Finding.passed(f"bucket policy of {where} grants nothing to everyone")

    return facts.each("s3.buckets", judge, what="S3 buckets")


@aws_check(
    id="aws.s3.bucket_acl_not_public",
    title="No S3 bucket ACL grants access to everyone or to all AWS users",
    severity=Severity.CRITICAL,
    rationale="ACL grants to the AllUsers or AuthenticatedUsers groups make a bucket readable or writable "
    "by anyone (or by any AWS account).",
    remediation="aws s3api put-bucket-acl --bucket BUCKET --acl private; then set object ownership to "
    "BucketOwnerEnforced: aws s3api put-bucket-ownership-controls --bucket BUCKET "
    "--ownership-controls Rules=[{ObjectOwnership=BucketOwnerEnforced}]",
    frameworks={"cis-aws-foundations": ["2.1.4"], "nist-800-53": ["AC-3", "AC-21"], "iso-27001": ["A.5.15", "A.8.3"]},
    collections=["s3.buckets", ACCOUNT_BLOCK],
    iam_actions=[*BUCKETS, "s3:GetBucketAcl", "s3:GetBucketPublicAccessBlock", "s3:GetAccountPublicAccessBlock"],
)
def bucket_acl_not_public(facts: CloudFacts, params: Params) -> list[Finding]:
    """No bucket ACL grant to the AllUsers / AuthenticatedUsers groups is in effect (Block Public
    Access IgnorePublicAcls, on the bucket or the account, makes AWS ignore such grants)."""

    def judge(b: CloudResource) -> Finding:
        grants = public_acl_grants(b.part("acl"))
        where = f"bucket {b.name} ({facts.where(b.region)})"
        exposed, note = public_exposure(facts, b, "IgnorePublicAcls", [", ".join(grants)] if grants else [])
        if exposed:
            return Finding.failed(
                f"ACL of {where} grants {exposed}" + (f" ({note})" if note else ""),
                observed=exposed,
                expected="no grants to AllUsers/AuthenticatedUsers",
            )
        if grants:
            return Finding.passed(f"ACL of {where} grants {', '.join(grants)}, but {note}", observed=", ".join(grants))
        return Finding.passed(f"ACL of {where} grants nothing to the public groups")

    return facts.each("s3.buckets", judge, what="S3 buckets")


@aws_check(
    id="aws.s3.bucket_default_encryption_enabled",
    title="S3 buckets encrypt new objects by default",
    severity=Severity.MEDIUM,
    rationale="Default encryption makes sure every object is stored encrypted at rest even when the "
    "uploader does not ask for it.",
    remediation="aws s3api put-bucket-encryption --bucket BUCKET --server-side-encryption-configuration "
    '\'{"Rules":[{"ApplyServerSideEncryptionByDefault":{"SSEAlgorithm":"aws:kms"}}]}\'',
    frameworks={"nist-800-53": ["SC-28", "SC-28(1)", "SC-13"], "iso-27001": ["A.8.24"]},
    collections=["s3.buckets"],
    iam_actions=[*BUCKETS, "s3:GetEncryptionConfiguration"],
)
def bucket_default_encryption_enabled(facts: CloudFacts, params: Params) -> list[Finding]:
    """Every bucket has a default server-side encryption rule."""

    def judge(b: CloudResource) -> Finding:
        rules = b.part("encryption") or []
        algos = sorted({r.get("ApplyServerSideEncryptionByDefault", {}).get("SSEAlgorithm", "") for r in rules} - {""})
        where = f"bucket {b.name} ({facts.where(b.region)})"
        if not algos:
            return Finding.failed(f"no default encryption on {where}", observed="none", expected="AES256 or aws:kms")
        return Finding.passed(f"default encryption {', '.join(algos)} on {where}", observed=", ".join(algos))

    return facts.each("s3.buckets", judge, what="S3 buckets")


@aws_check(
    id="aws.s3.bucket_versioning_enabled",
    title="S3 buckets keep object versions",
    severity=Severity.MEDIUM,
    rationale="Versioning lets overwritten or deleted objects be recovered after a mistake or ransomware.",
    remediation="aws s3api put-bucket-versioning --bucket BUCKET --versioning-configuration Status=Enabled",
    frameworks={"nist-800-53": ["CP-9", "CP-10", "SI-12"], "iso-27001": ["A.8.13"]},
    collections=["s3.buckets"],
    iam_actions=[*BUCKETS, "s3:GetBucketVersioning"],
)
def bucket_versioning_enabled(facts: CloudFacts, params: Params) -> list[Finding]:
    """Every bucket has versioning Enabled (not Suspended or never set)."""

    def judge(b: CloudResource) -> Finding:
        status = (b.part("versioning") or {}).get("Status", "Disabled")
        where = f"bucket {b.name} ({facts.where(b.region)})"
        if status != "Enabled":
            return Finding.failed(f"versioning is {status} on {where}", observed=status, expected="Enabled")
        return Finding.passed(f"versioning enabled on {where}", observed=status)

    return facts.each("s3.buckets", judge, what="S3 buckets")


@aws_check(
    id="aws.s3.bucket_access_logging_enabled",
    title="S3 buckets log access requests",
    severity=Severity.LOW,
    rationale="Server access logs record who read or changed which object: needed to investigate a leak.",
    remediation="aws s3api put-bucket-logging --bucket BUCKET --bucket-logging-status "
    '\'{"LoggingEnabled":{"TargetBucket":"LOG_BUCKET","TargetPrefix":"BUCKET/"}}\'',
    frameworks={"nist-800-53": ["AU-2", "AU-12"], "iso-27001": ["A.8.15"]},
    collections=["s3.buckets"],
    iam_actions=[*BUCKETS, "s3:GetBucketLogging"],
)
def bucket_access_logging_enabled(facts: CloudFacts, params: Params) -> list[Finding]:
    """Every bucket has server access logging to a target bucket."""

    def judge(b: CloudResource) -> Finding:
        target = (b.part("logging") or {}).get("TargetBucket")
        where = f"bucket {b.name} ({facts.where(b.region)})"
        if not target:
            return Finding.failed(f"access logging off on {where}", observed="off", expected="on")
        return Finding.passed(f"access logging on {where} to {target}", observed=f"to {target}")

    return facts.each("s3.buckets", judge, what="S3 buckets")


@aws_check(
    id="aws.s3.bucket_tls_only",
    title="S3 bucket policies deny requests that are not over TLS",
    severity=Severity.MEDIUM,
    rationale="Without a Deny on aws:SecureTransport=false, clients can read and write objects over plain "
    "HTTP, exposing data and credentials in transit.",
    remediation='Add to the bucket policy: {"Effect":"Deny","Principal":"*","Action":"s3:*",'
    '"Resource":["arn:aws:s3:::BUCKET","arn:aws:s3:::BUCKET/*"],'
    '"Condition":{"Bool":{"aws:SecureTransport":"false"}}} with '
    "aws s3api put-bucket-policy --bucket BUCKET --policy file://policy.json",
    frameworks={
        "cis-aws-foundations": ["2.1.1"],
        "nist-800-53": ["SC-8", "SC-8(1)", "SC-23"],
        "iso-27001": ["A.8.24", "A.5.14"],
    },
    collections=["s3.buckets"],
    iam_actions=[*BUCKETS, "s3:GetBucketPolicy"],
)
def bucket_tls_only(facts: CloudFacts, params: Params) -> list[Finding]:
    """Every bucket policy denies s3:* to everyone when aws:SecureTransport is false."""

    def judge(b: CloudResource) -> Finding:
        policy = b.part("policy")
        where = f"bucket {b.name} ({facts.where(b.region)})"
        if not denies_insecure_transport(policy):
            observed = "no bucket policy" if policy is None else "no Deny on aws:SecureTransport=false"
            return Finding.failed(
                f"{where} accepts plain HTTP requests",
                observed=observed,
                expected="Deny s3:* when aws:SecureTransport is false",
            )
        return Finding.passed(f"{where} denies requests without TLS")

    return facts.each("s3.buckets", judge, what="S3 buckets")


def _backup_buckets(facts: CloudFacts, judge_fn: Callable[[CloudResource], Finding]) -> list[Finding]:
    """Findings for buckets the inventory marks as backups, plus a FAIL per named bucket that does not exist."""
    patterns = facts.backup_buckets
    coll = facts["s3.buckets"]
    names = {b.name for b in coll.resources}
    missing = [
        Finding.failed(
            f"backup bucket {p} listed in the inventory does not exist in {facts.where()}",
            resource=f"arn:{facts.partition}:s3:::{p}",
            observed="missing",
            expected="exists",
        )
        for p in patterns
        if not coll.errors and not any(c in p for c in "*?[") and p not in names
    ]
    found = facts.each(
        "s3.buckets", lambda b: judge_fn(b) if matches_any(b.name, patterns) else None, what="backup buckets"
    )
    if missing:  # the "none in scope" SKIPPED is wrong when named buckets are missing
        found = [f for f in found if f.status is not Status.SKIPPED]
    return missing + found


@aws_check(
    id="aws.s3.backup_bucket_object_lock_enabled",
    title="S3 buckets holding backups have Object Lock on",
    severity=Severity.HIGH,
    rationale="Object Lock (WORM) keeps backup copies from being deleted or overwritten before their "
    "retention ends, even by an attacker holding admin credentials.",
    remediation="Object Lock can only be set when a bucket is created: aws s3api create-bucket --bucket NEW "
    "--object-lock-enabled-for-bucket; then aws s3api put-object-lock-configuration --bucket NEW "
    "--object-lock-configuration 'ObjectLockEnabled=Enabled,Rule={DefaultRetention={Mode=COMPLIANCE,Days=30}}' "
    "and copy the backups over.",
    frameworks={"nist-800-53": ["CP-9", "SI-7", "AU-9"], "iso-27001": ["A.8.13", "A.5.33"]},
    collections=["s3.buckets"],
    iam_actions=[*BUCKETS, "s3:GetBucketObjectLockConfiguration"],
)
def backup_bucket_object_lock_enabled(facts: CloudFacts, params: Params) -> list[Finding]:
    """Buckets matching the cloud entry's ``backup_buckets`` have Object Lock enabled."""

    def judge(b: CloudResource) -> Finding:
        lock = b.part("object_lock") or {}
        where = f"backup bucket {b.name} ({facts.where(b.region)})"
        if lock.get("ObjectLockEnabled") != "Enabled":
            return Finding.failed(f"Object Lock off on {where}", observed="off", expected="Enabled")
        rule = lock.get("Rule", {}).get("DefaultRetention", {})
        detail = f"{rule.get('Mode', 'no default')} {rule.get('Days') or rule.get('Years') or ''}".strip()
        return Finding.passed(f"Object Lock on for {where} ({detail})", observed=f"Enabled, {detail}")

    return _backup_buckets(facts, judge)


@aws_check(
    id="aws.s3.backup_bucket_versioning_enabled",
    title="S3 buckets holding backups keep object versions",
    severity=Severity.HIGH,
    rationale="Without versioning, an overwritten or deleted backup is gone; Object Lock also needs it.",
    remediation="aws s3api put-bucket-versioning --bucket BUCKET --versioning-configuration Status=Enabled",
    frameworks={"nist-800-53": ["CP-9", "CP-10"], "iso-27001": ["A.8.13"]},
    collections=["s3.buckets"],
    iam_actions=[*BUCKETS, "s3:GetBucketVersioning"],
)
def backup_bucket_versioning_enabled(facts: CloudFacts, params: Params) -> list[Finding]:
    """Buckets matching the cloud entry's ``backup_buckets`` have versioning Enabled."""

    def judge(b: CloudResource) -> Finding:
        status = (b.part("versioning") or {}).get("Status", "Disabled")
        where = f"backup bucket {b.name} ({facts.where(b.region)})"
        if status != "Enabled":
            return Finding.failed(f"versioning is {status} on {where}", observed=status, expected="Enabled")
        return Finding.passed(f"versioning enabled on {where}", observed=status)

    return _backup_buckets(facts, judge)
