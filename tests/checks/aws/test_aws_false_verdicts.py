"""Regression tests for false verdicts found by the twins scenario (test_twins.py), each on canned data.

Every test here failed before its fix: the verdict it asserts was the opposite (or a PASS where
nothing was judged, or an unreadable ERROR message).
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from types import SimpleNamespace
from typing import Any

import pytest
from aws_canned import DENIED, PAB_ON, bucket, coll, facts, only, res, run
from botocore.exceptions import ClientError
from botocore.parsers import ResponseParserError

from itops.model import Status
from itops.transport.aws import ApiFailure, CallContext, PermissionMissing, classify
from itops.transport.aws_collections import cloudtrail_trails, kms_keys

ACCOUNT_ARN = "arn:aws:s3::123456789012:account"
HTML_500 = "<!doctype html>\n<html lang=en>\n<title>500 Internal Server Error</title>\n<h1>Internal Server Error</h1>"


# --- aws.iam.access_keys_rotated / unused_credentials_disabled: an implausible report time ----------


def _ago(days: int) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).strftime("%Y-%m-%dT%H:%M:%S+00:00")


def _report(generated: str, **rows: int) -> Any:
    """Users with one active, never-used key issued ``days`` ago; moto stamps reports 2015-02-02."""
    out = []
    for name, days in rows.items():
        out.append(
            res(
                f"arn:aws:iam::123456789012:user/{name}",
                "global",
                name=name,
                user=name,
                user_creation_time=_ago(days),
                password_enabled="false",
                access_key_1_active="true",
                access_key_1_last_rotated=_ago(days),
                access_key_1_last_used_date="N/A",
                access_key_2_active="false",
                report_generated=generated,
            )
        )
    return facts(coll("iam.credential_report", out))


@pytest.mark.parametrize("check_id", ["aws.iam.access_keys_rotated", "aws.iam.unused_credentials_disabled"])
def test_report_generated_before_its_own_rows_is_not_the_clock(check_id: str) -> None:
    # before: ages were measured from 2015, so a 200-day-old key was "-3900 days" old and PASSed
    found = {f.resource.rsplit("/", 1)[-1]: f for f in run(check_id, _report("2015-02-02T20:02:02Z", old=200, new=1))}
    assert (found["old"].status, found["new"].status) == (Status.FAIL, Status.PASS)
    assert "200 days" in found["old"].message


def test_plausible_report_time_still_keeps_evaluation_pure() -> None:
    generated = _ago(0)
    f = only(run("aws.iam.access_keys_rotated", _report(generated, fresh=10)))
    assert f.status is Status.PASS


# --- aws.s3.bucket_policy_not_public: conditions that restrict nothing -------------------------------


def _statement(**extra: Any) -> dict[str, Any]:
    return {
        "Statement": [
            {"Effect": "Allow", "Principal": "*", "Action": "s3:GetObject", "Resource": "arn:aws:s3:::b/*", **extra}
        ]
    }


@pytest.mark.parametrize(
    ("policy", "status"),
    [
        (_statement(Condition={"Bool": {"aws:SecureTransport": "true"}}), Status.FAIL),
        (_statement(Condition={"StringLike": {"aws:Referer": "https://example.com/*"}}), Status.FAIL),
        (_statement(Condition={"IpAddress": {"aws:SourceIp": "0.0.0.0/0"}}), Status.FAIL),
        (_statement(Condition={"IpAddress": {"aws:SourceIp": ["10.0.0.0/4"]}}), Status.FAIL),
        (_statement(Condition={"StringNotEquals": {"aws:SourceVpce": "vpce-1"}}), Status.FAIL),
        (_statement(Condition={"StringEqualsIfExists": {"aws:SourceVpce": "vpce-1"}}), Status.FAIL),
        (_statement(Condition={"StringEquals": {"aws:SourceAccount": "*"}}), Status.FAIL),
        (
            {
                "Statement": [
                    {
                        "Effect": "Allow",
                        "NotPrincipal": {"AWS": "arn:aws:iam::1:root"},
                        "Action": "s3:*",
                        "Resource": "*",
                    }
                ]
            },
            Status.FAIL,
        ),
        (_statement(Condition={"StringEquals": {"aws:SourceVpce": "vpce-1"}}), Status.PASS),
        (_statement(Condition={"IpAddress": {"aws:SourceIp": ["203.0.113.0/24", "2001:db8::/32"]}}), Status.PASS),
        (_statement(Condition={"ForAnyValue:StringLike": {"aws:PrincipalOrgPaths": ["o-1/r-1/ou-1/*"]}}), Status.PASS),
        (
            _statement(
                Condition={"Bool": {"aws:SecureTransport": "true"}, "StringEquals": {"aws:PrincipalOrgID": "o-1"}}
            ),
            Status.PASS,
        ),
    ],
)
def test_policy_public_unless_confined_to_fixed_callers(policy: dict[str, Any], status: Status) -> None:
    b = bucket("b", policy=policy, public_access_block=None)
    assert only(run("aws.s3.bucket_policy_not_public", facts(coll("s3.buckets", [b])))).status is status


# --- aws.s3.bucket_policy_not_public / bucket_acl_not_public: Block Public Access neutralises -------


def _account(config: dict[str, bool] | None = None, errors: dict[str, str] | None = None) -> Any:
    if errors is not None:
        return coll("s3.account_public_access_block", errors=errors)
    return coll("s3.account_public_access_block", [res(ACCOUNT_ARN, "global", config=config)])


CASES = [
    # (bucket block, account block, policy verdict, ACL verdict)
    (None, None, Status.FAIL, Status.FAIL),
    (PAB_ON, None, Status.PASS, Status.PASS),
    ({"BlockPublicAcls": True, "IgnorePublicAcls": True}, None, Status.FAIL, Status.PASS),
    ({"BlockPublicAcls": True, "BlockPublicPolicy": True}, None, Status.FAIL, Status.FAIL),  # "Block" stops new ones
    (None, {"RestrictPublicBuckets": True}, Status.PASS, Status.FAIL),
    (None, PAB_ON, Status.PASS, Status.PASS),
]


@pytest.mark.parametrize(("bucket_block", "account_block", "policy_status", "acl_status"), CASES)
def test_public_grants_blocked_by_public_access_block_are_not_exposure(
    bucket_block: Any, account_block: Any, policy_status: Status, acl_status: Status
) -> None:
    b = bucket("b", good=False, public_access_block=bucket_block)
    f = facts(coll("s3.buckets", [b]), _account(account_block))
    policy = only(run("aws.s3.bucket_policy_not_public", f))
    acl = only(run("aws.s3.bucket_acl_not_public", f))
    assert (policy.status, acl.status) == (policy_status, acl_status)
    for found in (policy, acl):
        if found.status is Status.PASS:
            assert "neutralises" in found.message  # the grant is shown, with why it does not count


def test_unknown_account_block_never_hides_a_public_bucket() -> None:
    b = bucket("b", good=False, public_access_block=None)
    denied = _account(errors={"global": DENIED.format("s3:GetAccountPublicAccessBlock")})
    f = only(run("aws.s3.bucket_policy_not_public", facts(coll("s3.buckets", [b]), denied)))
    assert f.status is Status.FAIL and "s3:GetAccountPublicAccessBlock" in f.message


def test_trail_bucket_blocked_at_account_level_is_not_public() -> None:
    trail = {"Name": "t", "TrailARN": "arn:aws:cloudtrail:eu-west-1:123456789012:trail/t", "S3BucketName": "logs"}
    trails = coll("cloudtrail.trails", [res(trail["TrailARN"], name="t", trail=trail)])
    buckets = coll("s3.buckets", [bucket("logs", good=False, public_access_block=None)])
    blocked = facts(trails, buckets, _account(PAB_ON))
    assert only(run("aws.cloudtrail.bucket_not_public", blocked)).status is Status.PASS
    assert only(run("aws.cloudtrail.bucket_not_public", facts(trails, buckets, _account(None)))).status is Status.FAIL


# --- collectors on a fake call context ---------------------------------------------------------------


class FakeContext:
    """Enough of CallContext for a collector: canned answers per method, or an exception to raise."""

    region = "eu-west-1"
    regions = ("eu-west-1", "eu-nowhere-9")
    partition, account_id = "aws", "123456789012"
    part = staticmethod(CallContext.part)

    def __init__(self, answers: dict[str, Any]) -> None:
        self.answers = answers

    def _answer(self, method: str, kw: dict[str, Any]) -> Any:
        value = self.answers[method]
        value = value(**kw) if callable(value) else value
        if isinstance(value, Exception):
            raise value
        return value

    def call(self, service: str, method: str, **kw: Any) -> Any:
        kw.pop("absent", None)
        return self._answer(method, kw)

    def pages(self, service: str, method: str, key: str, **kw: Any) -> Any:
        return self._answer(method, kw)[key]

    def map(self, fn: Any, items: Any) -> list[Any]:
        return [fn(i) for i in items]

    def arn(self, service: str, resource: str, region: str | None = None, account: bool = True) -> str:
        return f"arn:aws:{service}:{self.region}:{self.account_id}:{resource}"


def test_kms_key_behind_an_aws_alias_is_aws_managed() -> None:
    # moto creates alias/aws/ebs's key with KeyManager CUSTOMER and rotation off: it was a false FAIL
    meta = {
        "aws-ebs": {"KeyManager": "CUSTOMER", "KeyState": "Enabled", "KeySpec": "SYMMETRIC_DEFAULT"},
        "mine": {"KeyManager": "CUSTOMER", "KeyState": "Enabled", "KeySpec": "SYMMETRIC_DEFAULT"},
    }
    ctx = FakeContext(
        {
            "list_keys": {
                "Keys": [{"KeyId": k, "KeyArn": f"arn:aws:kms:eu-west-1:123456789012:key/{k}"} for k in meta]
            },
            "list_aliases": {
                "Aliases": [
                    {"AliasName": "alias/aws/ebs", "TargetKeyId": "aws-ebs"},
                    {"AliasName": "alias/mine", "TargetKeyId": "mine"},
                ]
            },
            "describe_key": lambda KeyId: {"KeyMetadata": meta[KeyId]},
            "get_key_rotation_status": {"KeyRotationEnabled": False},
        }
    )
    keys = kms_keys(ctx)  # type: ignore[arg-type]
    found = run("aws.kms.customer_key_rotation_enabled", facts(coll("kms.keys", keys)))
    assert {f.resource.rsplit("/", 1)[-1]: f.status for f in found} == {"mine": Status.FAIL}


def test_trail_listing_names_the_region_that_failed() -> None:
    def describe(region: str, **kw: Any) -> Any:
        return (
            classify(
                ClientError({"Error": {"Code": "500", "Message": HTML_500}}, "DescribeTrails"),
                "cloudtrail:DescribeTrails",
            )
            if region == "eu-nowhere-9"
            else {"trailList": []}
        )

    with pytest.raises(ApiFailure) as caught:
        cloudtrail_trails(FakeContext({"describe_trails": describe}))  # type: ignore[arg-type]
    assert str(caught.value) == (
        "could not assess: cloudtrail:DescribeTrails failed: 500: the endpoint answered with "
        "an HTML page, not the AWS API: 500 Internal Server Error (in region eu-nowhere-9)"
    )
    denied = PermissionMissing("cloudtrail:DescribeTrails")
    with pytest.raises(PermissionMissing):
        cloudtrail_trails(FakeContext({"describe_trails": denied}))  # type: ignore[arg-type]


# --- transport: an endpoint's HTML error page ---------------------------------------------------------


def test_html_error_pages_become_one_short_line() -> None:
    client_error = classify(ClientError({"Error": {"Code": "500", "Message": HTML_500}}, "ListKeys"), "kms:ListKeys")
    assert str(client_error) == (
        "could not assess: kms:ListKeys failed: 500: the endpoint answered with an HTML page, not the AWS API: "
        "500 Internal Server Error"
    )
    long = classify(ClientError({"Error": {"Code": "Throttling", "Message": "x " * 500}}, "ListKeys"), "kms:ListKeys")
    assert len(str(long)) < 250 and str(long).endswith("...")


def test_unparseable_answer_is_an_api_failure_not_a_collector_crash() -> None:
    # before: ResponseParserError is not a BotoCoreError, so it escaped as "collecting ... raised"
    body = f"Unable to parse response, invalid XML received: b'{HTML_500}'".replace("\n", "\\n")
    client = SimpleNamespace(
        meta=SimpleNamespace(method_to_api_mapping={"describe_volumes": "DescribeVolumes"}),
        get_paginator=lambda method: SimpleNamespace(
            paginate=lambda **kw: (_ for _ in ()).throw(ResponseParserError(body))
        ),
    )
    pool = SimpleNamespace(get=lambda service, region: client)
    identity = SimpleNamespace(home_region="us-east-1", account_id="123456789012", partition="aws")
    ctx = CallContext(pool, identity, "eu-nowhere-9", ("eu-nowhere-9",))  # type: ignore[arg-type]
    with pytest.raises(ApiFailure) as caught:
        ctx.pages("ec2", "describe_volumes", "Volumes")
    assert str(caught.value) == (
        "could not assess: ec2:DescribeVolumes failed: ResponseParserError: the endpoint "
        "answered with an HTML page, not the AWS API: 500 Internal Server Error"
    )


def test_trail_bucket_open_under_a_condition_that_restricts_nobody_is_public() -> None:
    """The CloudTrail bucket check shares the S3 rule: aws:SecureTransport confines no caller."""
    trail = {"Name": "t", "TrailARN": "arn:aws:cloudtrail:eu-west-1:123456789012:trail/t", "S3BucketName": "logs"}
    trails = coll("cloudtrail.trails", [res(trail["TrailARN"], name="t", trail=trail)])

    def with_policy(condition: dict[str, Any]) -> Any:
        policy = {
            "Statement": [
                {
                    "Effect": "Allow",
                    "Principal": "*",
                    "Action": "s3:GetObject",
                    "Resource": "arn:aws:s3:::logs/*",
                    "Condition": condition,
                }
            ]
        }
        logs = bucket("logs", policy=policy, public_access_block=None, acl=None)
        return facts(trails, coll("s3.buckets", [logs]), _account(None))

    open_to_all = with_policy({"Bool": {"aws:SecureTransport": "true"}})
    assert only(run("aws.cloudtrail.bucket_not_public", open_to_all)).status is Status.FAIL
    one_org = with_policy({"StringEquals": {"aws:PrincipalOrgID": "o-abc123"}})
    assert only(run("aws.cloudtrail.bucket_not_public", one_org)).status is Status.PASS
