"""CloudTrail, AWS Config, KMS and GuardDuty checks on canned collection data."""

from __future__ import annotations

import pytest
from aws_canned import DENIED, bucket, coll, facts, only, res, run, statuses

from itops.model import Status

TRAIL_ARN = "arn:aws:cloudtrail:eu-west-1:123456789012:trail/{}"


def trail(name: str, *, multi=True, logging=True, selectors=None, errors=None, **extra):
    t = {
        "Name": name,
        "TrailARN": TRAIL_ARN.format(name),
        "IsMultiRegionTrail": multi,
        "HomeRegion": "eu-west-1",
        "LogFileValidationEnabled": True,
        "KmsKeyId": "arn:aws:kms:eu-west-1:123456789012:key/k",
        "S3BucketName": "trail-logs",
        **extra,
    }
    return res(
        TRAIL_ARN.format(name),
        name=name,
        errors=errors,
        trail=t,
        status={"IsLogging": logging},
        selectors=selectors or {"EventSelectors": [{"ReadWriteType": "All", "IncludeManagementEvents": True}]},
    )


def trails(*items, buckets=()):
    return facts(coll("cloudtrail.trails", items), coll("s3.buckets", buckets))


def test_multi_region_trail() -> None:
    check = "aws.cloudtrail.multi_region_trail_logging"
    assert only(run(check, trails(trail("main"), trail("local", multi=False)))).status is Status.PASS
    f = only(run(check, trails(trail("local", multi=False), trail("stopped", logging=False))))
    assert f.status is Status.FAIL and "local: single-region" in f.observed and "stopped: not logging" in f.observed
    assert f.resource == "arn:aws:cloudtrail::123456789012:account"
    write_only = {"EventSelectors": [{"ReadWriteType": "WriteOnly", "IncludeManagementEvents": True}]}
    assert only(run(check, trails(trail("w", selectors=write_only)))).status is Status.FAIL
    advanced = {"AdvancedEventSelectors": [{"FieldSelectors": [{"Field": "eventCategory", "Equals": ["Management"]}]}]}
    assert only(run(check, trails(trail("adv", selectors=advanced)))).status is Status.PASS
    assert only(run(check, trails())).status is Status.FAIL
    denied = trail("main", errors={"status": DENIED.format("cloudtrail:GetTrailStatus")})
    f = only(run(check, trails(denied)))
    assert f.status is Status.ERROR and "cloudtrail:GetTrailStatus" in f.message


@pytest.mark.parametrize(
    ("check_id", "bad"),
    [
        ("aws.cloudtrail.log_file_validation_enabled", {"LogFileValidationEnabled": False}),
        ("aws.cloudtrail.kms_encrypted", {"KmsKeyId": None}),
    ],
)
def test_trail_settings(check_id: str, bad: dict) -> None:
    found = run(check_id, trails(trail("good"), trail("bad", **bad)))
    assert statuses(found) == {TRAIL_ARN.format("good"): Status.PASS, TRAIL_ARN.format("bad"): Status.FAIL}


@pytest.mark.parametrize(
    ("check_id", "part", "action"),
    [
        ("aws.cloudtrail.bucket_not_public", "policy", "s3:GetBucketPolicy"),
        ("aws.cloudtrail.bucket_access_logging_enabled", "logging", "s3:GetBucketLogging"),
    ],
)
def test_trail_bucket(check_id: str, part: str, action: str) -> None:
    good = trails(trail("t"), buckets=[bucket("trail-logs")])
    bad = trails(trail("t"), buckets=[bucket("trail-logs", good=False)])
    elsewhere = trails(trail("t"), buckets=[bucket("other")])
    denied = trails(trail("t"), buckets=[bucket("trail-logs", errors={part: DENIED.format(action)})])
    assert only(run(check_id, good)).status is Status.PASS
    f = only(run(check_id, bad))
    assert f.status is Status.FAIL and f.resource == TRAIL_ARN.format("t") and "trail-logs" in f.message
    assert only(run(check_id, elsewhere)).status is Status.SKIPPED  # log bucket in another account
    f = only(run(check_id, denied))
    assert f.status is Status.ERROR and action in f.message
    listing_denied = facts(
        coll("cloudtrail.trails", [trail("t")]),
        coll("s3.buckets", errors={"global": DENIED.format("s3:ListAllMyBuckets")}),
    )
    assert only(run(check_id, listing_denied)).status is Status.ERROR


def test_public_access_block_makes_trail_bucket_private() -> None:
    shielded = bucket(
        "trail-logs", good=False, public_access_block={"RestrictPublicBuckets": True, "IgnorePublicAcls": True}
    )
    assert only(run("aws.cloudtrail.bucket_not_public", trails(trail("t"), buckets=[shielded]))).status is Status.PASS


def region(service: str, name: str, errors=None, **data):
    return res(f"arn:aws:{service}:{name}:123456789012:account", name, name=name, errors=errors, **data)


def test_config_recorder() -> None:
    rec = {"name": "default", "recordingGroup": {"allSupported": True}}
    on = {"name": "default", "recording": True, "lastStatus": "SUCCESS"}
    found = run(
        "aws.config.recorder_enabled",
        facts(
            coll(
                "config.recorders",
                [
                    region("config", "eu-west-1", recorders=[rec], statuses=[on]),
                    region("config", "us-east-1", recorders=[rec], statuses=[{**on, "recording": False}]),
                    region("config", "eu-central-1", recorders=[], statuses=[]),
                    region(
                        "config",
                        "ap-south-1",
                        recorders=[{**rec, "recordingGroup": {"allSupported": False}}],
                        statuses=[on],
                    ),
                    region(
                        "config",
                        "sa-east-1",
                        errors={"recorders": DENIED.format("config:DescribeConfigurationRecorders")},
                    ),
                ],
            )
        ),
    )
    assert [f.status for f in found] == [Status.PASS, Status.FAIL, Status.FAIL, Status.FAIL, Status.ERROR]


def test_guardduty() -> None:
    found = run(
        "aws.guardduty.enabled",
        facts(
            coll(
                "guardduty.detectors",
                [
                    region("guardduty", "eu-west-1", detectors=[{"id": "d1", "status": "ENABLED"}]),
                    region("guardduty", "us-east-1", detectors=[{"id": "d2", "status": "DISABLED"}]),
                    region("guardduty", "eu-central-1", detectors=[]),
                ],
            )
        ),
    )
    assert [f.status for f in found] == [Status.PASS, Status.FAIL, Status.FAIL]
    assert "eu-central-1" in found[2].message and found[2].observed == "no detector"


def test_kms_rotation() -> None:
    def key(kid, errors=None, **data):
        return res(f"arn:aws:kms:eu-west-1:123456789012:key/{kid}", name=kid, errors=errors, **data)

    found = run(
        "aws.kms.customer_key_rotation_enabled",
        facts(
            coll(
                "kms.keys",
                [
                    key("k-on", metadata={"KeyManager": "CUSTOMER"}, rotation=True),
                    key("k-off", metadata={"KeyManager": "CUSTOMER"}, rotation=False),
                    key("k-aws", metadata={"KeyManager": "AWS"}),
                    key(
                        "k-denied",
                        metadata={"KeyManager": "CUSTOMER"},
                        errors={"rotation": DENIED.format("kms:GetKeyRotationStatus")},
                    ),
                ],
            )
        ),
    )
    assert [f.resource.rsplit("/", 1)[1] for f in found] == ["k-on", "k-off", "k-denied"]
    assert [f.status for f in found] == [Status.PASS, Status.FAIL, Status.ERROR]
