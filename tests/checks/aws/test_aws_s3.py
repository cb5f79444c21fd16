"""S3 checks on canned collection data: pass, fail, and a denied part -> ERROR."""

from __future__ import annotations

import pytest
from aws_canned import DENIED, PAB_ON, bucket, coll, facts, only, res, run, statuses

from itops.model import Status

GOOD, BAD = "arn:aws:s3:::good", "arn:aws:s3:::bad"

BUCKET_CHECKS = {
    # check id -> the part it reads (denying that part must give ERROR)
    "aws.s3.bucket_public_access_blocked": ("public_access_block", "s3:GetBucketPublicAccessBlock"),
    "aws.s3.bucket_policy_not_public": ("policy", "s3:GetBucketPolicy"),
    "aws.s3.bucket_acl_not_public": ("acl", "s3:GetBucketAcl"),
    "aws.s3.bucket_default_encryption_enabled": ("encryption", "s3:GetEncryptionConfiguration"),
    "aws.s3.bucket_versioning_enabled": ("versioning", "s3:GetBucketVersioning"),
    "aws.s3.bucket_access_logging_enabled": ("logging", "s3:GetBucketLogging"),
    "aws.s3.bucket_tls_only": ("policy", "s3:GetBucketPolicy"),
}


def buckets(*items):
    return facts(coll("s3.buckets", items))


@pytest.mark.parametrize("check_id", sorted(BUCKET_CHECKS))
def test_bucket_checks_pass_good_and_fail_bad(check_id: str) -> None:
    found = run(check_id, buckets(bucket("good"), bucket("bad", good=False)))
    assert statuses(found) == {GOOD: Status.PASS, BAD: Status.FAIL}
    bad = next(f for f in found if f.resource == BAD)
    assert "bucket bad" in bad.message and "eu-west-1" in bad.message and "123456789012" in bad.message


@pytest.mark.parametrize("check_id", sorted(BUCKET_CHECKS))
def test_bucket_checks_denied_part_is_error(check_id: str) -> None:
    part, action = BUCKET_CHECKS[check_id]
    denied = bucket("denied", errors={part: DENIED.format(action)}, **{part: None})
    found = run(check_id, buckets(denied, bucket("good")))
    assert statuses(found) == {"arn:aws:s3:::denied": Status.ERROR, GOOD: Status.PASS}
    assert f"not assessable: missing permission {action}" in found[0].message


def test_no_buckets_is_skipped() -> None:
    assert only(run("aws.s3.bucket_versioning_enabled", buckets())).status is Status.SKIPPED


def test_policy_with_condition_is_not_public() -> None:
    policy = {
        "Statement": [
            {
                "Effect": "Allow",
                "Principal": {"AWS": "*"},
                "Action": "s3:GetObject",
                "Resource": "*",
                "Condition": {"StringEquals": {"aws:PrincipalOrgID": "o-1"}},
            }
        ]
    }
    assert only(run("aws.s3.bucket_policy_not_public", buckets(bucket("good", policy=policy)))).status is Status.PASS
    public_aws = {"Statement": [{"Effect": "Allow", "Principal": {"AWS": ["*"]}, "Action": "s3:*", "Resource": "*"}]}
    exposed = bucket("good", policy=public_aws, public_access_block=None)  # PAB_ON would neutralise it
    f = only(run("aws.s3.bucket_policy_not_public", buckets(exposed)))
    assert f.status is Status.FAIL


def test_tls_only_needs_a_policy_and_the_right_condition() -> None:
    assert only(run("aws.s3.bucket_tls_only", buckets(bucket("good", policy=None)))).observed == "no bucket policy"
    weak = {
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": "*",
                "Action": "s3:GetObject",
                "Resource": "*",
                "Condition": {"Bool": {"aws:SecureTransport": "false"}},
            }
        ]
    }
    assert only(run("aws.s3.bucket_tls_only", buckets(bucket("good", policy=weak)))).status is Status.FAIL
    bool_false = {
        "Statement": [
            {
                "Effect": "Deny",
                "Principal": {"AWS": "*"},
                "Action": ["s3:*"],
                "Resource": "*",
                "Condition": {"Bool": {"aws:SecureTransport": False}},
            }
        ]
    }
    assert only(run("aws.s3.bucket_tls_only", buckets(bucket("good", policy=bool_false)))).status is Status.PASS


def test_partial_public_access_block_fails() -> None:
    partial = {**PAB_ON, "RestrictPublicBuckets": False}
    f = only(run("aws.s3.bucket_public_access_blocked", buckets(bucket("good", public_access_block=partial))))
    assert f.status is Status.FAIL and f.observed == "RestrictPublicBuckets off"


def test_account_public_access_block() -> None:
    arn = "arn:aws:s3::123456789012:account"
    on = facts(coll("s3.account_public_access_block", [res(arn, "global", config=PAB_ON)]))
    off = facts(coll("s3.account_public_access_block", [res(arn, "global", config=None)]))
    denied = facts(
        coll(
            "s3.account_public_access_block",
            [res(arn, "global", errors={"config": DENIED.format("s3:GetAccountPublicAccessBlock")})],
        )
    )
    assert only(run("aws.s3.account_public_access_blocked", on)).status is Status.PASS
    f = only(run("aws.s3.account_public_access_blocked", off))
    assert f.status is Status.FAIL and f.resource == arn and "123456789012" in f.message
    assert only(run("aws.s3.account_public_access_blocked", denied)).status is Status.ERROR


@pytest.mark.parametrize(
    ("check_id", "part", "action", "bad"),
    [
        ("aws.s3.backup_bucket_object_lock_enabled", "object_lock", "s3:GetBucketObjectLockConfiguration", None),
        ("aws.s3.backup_bucket_versioning_enabled", "versioning", "s3:GetBucketVersioning", {"Status": "Suspended"}),
    ],
)
def test_backup_buckets(check_id: str, part: str, action: str, bad: object) -> None:
    data = buckets(
        bucket("backup-ok"),
        bucket("backup-bad", **{part: bad}),
        bucket("other", good=False),
        bucket("backup-denied", errors={part: DENIED.format(action)}),
    )
    found = run(check_id, facts(data["s3.buckets"], backup_buckets=["backup-*", "missing-backups"]))
    assert statuses(found) == {
        "arn:aws:s3:::backup-ok": Status.PASS,
        "arn:aws:s3:::backup-bad": Status.FAIL,
        "arn:aws:s3:::backup-denied": Status.ERROR,
        "arn:aws:s3:::missing-backups": Status.FAIL,  # named in the inventory but not there
    }
    assert only(run(check_id, facts(data["s3.buckets"]))).status is Status.SKIPPED  # none marked as backups
