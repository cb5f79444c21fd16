# ruff: noqa: F811  (pytest fixtures imported from aws_fixtures are parameters here)
"""The AWS transport against moto: sessions, preflight, regions, shared collections, permission errors.

Every API the collectors call is implemented by moto 5.x, so botocore's Stubber is used
only where a response moto cannot produce is needed: AccessDenied on a single item
(one bucket's GetBucketPolicy) while the other calls succeed.
"""

from __future__ import annotations

import json
import socket
import time
from collections import Counter
from datetime import datetime
from pathlib import Path

import boto3
import pytest
from aws_fixtures import ACCOUNT_ID, REGIONS, aws_env, cloud_model, enforce_iam, moto, write_inventory  # noqa: F401
from botocore.stub import Stubber

from itops.checkapi import CloudFacts
from itops.cli.aws_cmd import policy_document
from itops.cloud import run_cloud_account
from itops.inventory import load_inventory
from itops.model import Status
from itops.registry import load_registry
from itops.transport.aws import _IAM_ACTION as IAM_ACTION_OF_OPERATION
from itops.transport.aws import (
    ClientPool,
    Identity,
    client_config,
    collect,
    discover_regions,
    iam_action,
    open_account,
)

pytestmark = pytest.mark.integration


def aws_checks(pattern: str = "aws.*"):
    return load_registry(entry_point_packs=False).select([pattern], target="aws")


def test_timeouts_and_retries_come_from_the_inventory(tmp_path: Path) -> None:
    path = write_inventory(
        tmp_path / "inv.yaml",
        {
            "plain": {"regions": ["eu-west-1"]},
            "tuned": {"regions": ["eu-west-1"], "connect_timeout": "3s", "read_timeout": "1m", "max_attempts": 7},
        },
        defaults={"ssh": {"connect_timeout": 7, "command_timeout": "2m"}, "vars": {"rds_backup_retention_days": 14}},
    )
    inv = load_inventory(path)
    plain, tuned = inv.clouds["plain"], inv.clouds["tuned"]
    assert (plain.connect_timeout, plain.read_timeout) == (7.0, 120.0)
    config = client_config(tuned)
    assert (config.connect_timeout, config.read_timeout) == (3.0, 60.0)
    assert config.retries == {"mode": "adaptive", "max_attempts": 7}
    assert client_config(plain).retries == {"mode": "adaptive", "max_attempts": 5}
    assert inv.default_vars["rds_backup_retention_days"] == 14


def test_iam_action_names() -> None:
    assert iam_action("s3", "ListBuckets") == "s3:ListAllMyBuckets"
    assert iam_action("s3control", "GetPublicAccessBlock") == "s3:GetAccountPublicAccessBlock"
    assert iam_action("ec2", "DescribeVolumes") == "ec2:DescribeVolumes"


def test_preflight_and_all_enabled_regions(moto, tmp_path: Path) -> None:
    cloud = cloud_model(tmp_path, regions=[])
    session, identity = open_account(cloud)
    assert identity == Identity(ACCOUNT_ID, f"arn:aws:sts::{ACCOUNT_ID}:user/moto", "aws")
    regions = discover_regions(session, cloud)
    assert {"eu-west-1", "us-east-1", "ap-southeast-2"} <= set(regions) and len(regions) > 10


def test_silent_endpoint_is_unreachable_within_the_timeout(aws_env, tmp_path: Path) -> None:
    with socket.socket() as silent:  # accepts connections (kernel backlog), never answers
        silent.bind(("127.0.0.1", 0))
        silent.listen(8)
        url = f"http://127.0.0.1:{silent.getsockname()[1]}"
        cloud = cloud_model(tmp_path, endpoint_url=url, connect_timeout=1, read_timeout=30)
        t0 = time.monotonic()
        out = run_cloud_account("r", "silent", cloud, aws_checks("aws.s3.*"), {}, concurrency=4)
        elapsed = time.monotonic() - t0
    assert elapsed < 10, f"took {elapsed:.1f}s"  # 2 attempts x 1s read timeout, plus backoff and load
    assert out.results and {r.status for r in out.results} == {Status.UNREACHABLE}
    assert "unreachable: sts:GetCallerIdentity failed" in out.results[0].message and "timeout" in out.unreachable


def test_unknown_profile_is_unreachable_and_other_accounts_go_on(moto, tmp_path: Path) -> None:
    bad = run_cloud_account(
        "r", "bad", cloud_model(tmp_path, "bad", profile="nope"), aws_checks("aws.s3.*"), {}, concurrency=2
    )
    good = run_cloud_account("r", "good", cloud_model(tmp_path, "good"), aws_checks("aws.s3.*"), {}, concurrency=2)
    assert {r.status for r in bad.results} == {Status.UNREACHABLE}
    assert "nope" in bad.results[0].message
    assert good.account_id == ACCOUNT_ID and Status.UNREACHABLE not in {r.status for r in good.results}


def test_each_collection_is_made_once_per_account_and_region(moto, tmp_path: Path) -> None:
    for region in REGIONS:
        moto.client("ec2", region).create_volume(Size=1, AvailabilityZone=f"{region}a")
    moto.client("s3").create_bucket(Bucket="one-bucket", CreateBucketConfiguration={"LocationConstraint": REGIONS[0]})
    cloud = cloud_model(tmp_path)
    session, identity = open_account(cloud)
    calls: Counter[str] = Counter()
    session.events.register("before-call.*.*", lambda model, **kw: calls.update([model.name]))
    checks = aws_checks("aws.s3.bucket_*") + aws_checks("aws.ec2.volumes_*")
    collections = collect(
        ClientPool(session, cloud), identity, REGIONS, {n for c in checks for n in c.collections}, concurrency=4
    )
    assert calls["ListBuckets"] == 1 and calls["GetBucketPolicy"] == 1  # shared by 7 bucket checks
    assert calls["DescribeVolumes"] == len(REGIONS)  # once per region
    assert len(collections["ec2.volumes"].resources) == len(REGIONS)


def test_access_denied_on_one_item_is_error_not_pass(tmp_path: Path) -> None:
    cloud = cloud_model(tmp_path)
    s3 = boto3.client("s3", region_name="us-east-1", aws_access_key_id="x", aws_secret_access_key="y")
    stub = Stubber(s3)
    bucket = {"Bucket": "secret-data"}
    stub.add_response("list_buckets", {"Buckets": [{"Name": "secret-data", "CreationDate": datetime(2026, 1, 1)}]})
    stub.add_response("get_bucket_location", {"LocationConstraint": "eu-west-1"}, bucket)
    stub.add_client_error(
        "get_public_access_block", "NoSuchPublicAccessBlockConfiguration", http_status_code=404, expected_params=bucket
    )
    stub.add_client_error("get_bucket_policy", "AccessDenied", "Access Denied", 403, expected_params=bucket)
    stub.add_response("get_bucket_acl", {"Owner": {"ID": "o"}, "Grants": []}, bucket)
    stub.add_response(
        "get_bucket_encryption",
        {
            "ServerSideEncryptionConfiguration": {
                "Rules": [{"ApplyServerSideEncryptionByDefault": {"SSEAlgorithm": "AES256"}}]
            }
        },
        bucket,
    )
    stub.add_response("get_bucket_versioning", {"Status": "Enabled"}, bucket)
    stub.add_response("get_bucket_logging", {}, bucket)
    stub.add_client_error(
        "get_object_lock_configuration",
        "ObjectLockConfigurationNotFoundError",
        http_status_code=404,
        expected_params=bucket,
    )

    class StubbedPool(ClientPool):
        def get(self, service: str, region: str):
            return s3

    identity = Identity(ACCOUNT_ID, "arn:aws:iam::123456789012:user/auditor", "aws")
    with stub:
        collections = collect(
            StubbedPool(boto3.Session(), cloud), identity, ["eu-west-1"], ["s3.buckets"], concurrency=1
        )
        stub.assert_no_pending_responses()
    (res,) = collections["s3.buckets"].resources
    assert res.errors == {"policy": "not assessable: missing permission s3:GetBucketPolicy"}
    assert res.data["public_access_block"] is None and res.data["object_lock"] is None  # "not configured" = data
    facts = CloudFacts("aws-test", ACCOUNT_ID, "aws", ("eu-west-1",), collections)
    by_check = {c.id: c.evaluate(facts, dict(c.meta.params))[0] for c in aws_checks("aws.s3.bucket_*")}
    for check_id in ("aws.s3.bucket_policy_not_public", "aws.s3.bucket_tls_only"):
        assert by_check[check_id].status is Status.ERROR
        assert by_check[check_id].message.startswith("not assessable: missing permission s3:GetBucketPolicy")
    assert by_check["aws.s3.bucket_versioning_enabled"].status is Status.PASS
    assert by_check["aws.s3.bucket_public_access_blocked"].status is Status.FAIL


def _auditor(moto, policy: dict, tmp_path: Path, monkeypatch) -> None:
    iam = moto.client("iam")
    iam.create_user(UserName="auditor")
    iam.put_user_policy(UserName="auditor", PolicyName="itops", PolicyDocument=json.dumps(policy))
    key = iam.create_access_key(UserName="auditor")["AccessKey"]
    creds = tmp_path / "credentials"
    creds.write_text(
        f"[auditor]\naws_access_key_id = {key['AccessKeyId']}\naws_secret_access_key = {key['SecretAccessKey']}\n"
    )
    monkeypatch.setenv("AWS_SHARED_CREDENTIALS_FILE", str(creds))


def test_moto_iam_enforcement_policy_is_sufficient_and_denials_are_errors(moto, tmp_path: Path, monkeypatch) -> None:
    """With IAM enforced, the generated policy lets every check assess; removing one action gives ERROR."""
    checks = aws_checks("aws.s3.*") + aws_checks("aws.iam.*")
    moto.client("s3").create_bucket(Bucket="data", CreateBucketConfiguration={"LocationConstraint": REGIONS[0]})
    policy = policy_document(checks)
    # moto authorises some S3 calls under other names than AWS does, so the policy given to moto is the generated
    # one PLUS moto's names (never instead of AWS's, so a gap in the generated policy still shows):
    # - GetBucketEncryption, GetPublicAccessBlock, GetObjectLockConfiguration -> s3:ListBucket;
    #   s3control's GetPublicAccessBlock is not mapped to s3:GetAccountPublicAccessBlock;
    # - from moto 5.2.6 on, S3 calls are checked under their API operation name (s3:ListBuckets,
    #   s3:GetBucketEncryption, ...), while AWS checks the IAM action (s3:ListAllMyBuckets,
    #   s3:GetEncryptionConfiguration, ...; there is no IAM action s3:ListBuckets). moto 5.2.1 checked
    #   s3:ListAllMyBuckets. So moto also gets the operation name of every S3 call whose IAM action differs,
    #   and the generated policy is asserted to hold AWS's names, independently of moto.
    moto_names = ["s3:ListBucket", "s3:GetPublicAccessBlock"]
    moto_names += [f"s3:{op}" for (service, op) in IAM_ACTION_OF_OPERATION if service in ("s3", "s3control")]
    assert {"s3:ListAllMyBuckets", "s3:GetEncryptionConfiguration"} <= set(policy["Statement"][0]["Action"])
    without = [a for a in policy["Statement"][0]["Action"] if a != "s3:GetBucketPolicy"] + moto_names
    _auditor(
        moto,
        {"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": without, "Resource": "*"}]},
        tmp_path,
        monkeypatch,
    )
    enforce_iam()
    cloud = cloud_model(tmp_path, profile="auditor", regions=[REGIONS[0]])
    out = run_cloud_account("r", "enforced", cloud, checks, {}, concurrency=4)
    errors = {(r.check_id, r.message) for r in out.results if r.status is Status.ERROR}
    assert errors == {
        (
            check_id,
            "not assessable: missing permission s3:GetBucketPolicy "
            f"(data, region eu-west-1, account {ACCOUNT_ID} (enforced))",
        )
        for check_id in ("aws.s3.bucket_policy_not_public", "aws.s3.bucket_tls_only")
    }


def test_stop_request_leaves_collections_unassessed(tmp_path: Path) -> None:
    import threading

    stop = threading.Event()
    stop.set()
    identity = Identity(ACCOUNT_ID, "arn:aws:iam::123456789012:user/a", "aws")
    out = collect(
        ClientPool(boto3.Session(), cloud_model(tmp_path)),
        identity,
        ["eu-west-1"],
        ["s3.buckets", "ec2.volumes", "no.such_collection"],
        concurrency=2,
        stop=stop,
    )
    assert out["s3.buckets"].errors == {"global": "could not assess: run interrupted before this collection was made"}
    assert "interrupted" in out["ec2.volumes"].errors["eu-west-1"]
    assert "unknown collection" in out["no.such_collection"].errors["global"]
