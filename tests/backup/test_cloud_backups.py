"""Cloud backups: S3, EBS and RDS snapshots on the moto server; AWS Backup through botocore's Stubber.

moto has no ListRecoveryPointsByBackupVault / GetBackupVaultAccessPolicy and does not keep a
client-supplied (wrong) object checksum, so those two cases use ``botocore.stub.Stubber`` on a
real boto3 client: the request/response shapes are still validated against the AWS models.
"""

# ruff: noqa: F811  (pytest fixtures imported from aws_fixtures are parameters here)
from __future__ import annotations

import base64
import datetime as dt
import hashlib
import io
import json
import time

import boto3
import pytest
from aws_fixtures import aws_env, cloud_entry, moto  # noqa: F401
from backup_helpers import by_check, failures, not_assessed, statuses, verify, write_inventory
from botocore.response import StreamingBody
from botocore.stub import Stubber
from cloud_scenario import CLOUD_FAULTS, REGION, s3_setup, snapshots_setup

from itops_lab.netutil import closed_port

pytestmark = pytest.mark.integration
UTC = dt.UTC


@pytest.fixture
def cloud_inventory(moto, tmp_path):
    entries = {**s3_setup(moto), **snapshots_setup(moto)}
    vols = entries.pop("_vols")
    inv = write_inventory(tmp_path / "inv.yaml", None, entries, clouds={"aws-test": cloud_entry(regions=[REGION])})
    return inv, vols


def test_cloud_backups_on_moto_report_exactly_the_planted_faults(cloud_inventory):
    inv, vols = cloud_inventory
    outcomes = verify(inv)
    assert not_assessed(outcomes) == []
    found = failures(outcomes)
    assert set(found) == set(CLOUD_FAULTS), found
    for key, fragment in CLOUD_FAULTS.items():
        assert fragment in found[key], (key, found[key])
    assert found[("ebs-bad", "backup.within_rpo")] == f"{vols['none']}: no completed backup found"
    locked = statuses(outcomes["s3-locked"])
    assert all(s == {"PASS"} for s in locked.values()), outcomes["s3-locked"].results
    integrity = by_check(outcomes["s3-locked"])["backup.integrity_ok"][0].message
    assert integrity == "db/dump-2.sql.gz: SHA256 checksum matches the object's bytes"
    immutable = by_check(outcomes["s3-locked"])["backup.immutable"][0].message
    assert immutable == "Object Lock on bucket bk-locked: GOVERNANCE retention 30 days by default"
    assert all(s <= {"PASS", "SKIPPED"} for s in statuses(outcomes["ebs-good"]).values())


def test_stale_cloud_backups_fail_rpo(cloud_inventory):
    """moto stamps snapshots and objects with the current time, so the clock is moved instead."""
    inv, _ = cloud_inventory
    later = time.time() + 3 * 86400 + 4 * 3600 + 60
    outcomes = verify(inv, ["s3-locked", "ebs-good", "rds-shared"], now=later)
    for name in ("s3-locked", "ebs-good", "rds-shared"):
        res = by_check(outcomes[name])["backup.within_rpo"]
        assert [r.status.value for r in res] == ["FAIL"], res
        assert "newest backup is 3d 4h old, RPO 26h" in res[0].message


def test_unreachable_account_is_unreachable(tmp_path, aws_env):
    entry = {"kind": "s3", "cloud": "dead", "bucket": "b", "rpo": "26h"}
    clouds = {"dead": cloud_entry(endpoint_url=f"http://127.0.0.1:{closed_port()}", regions=[REGION])}
    inv = write_inventory(tmp_path / "inv.yaml", None, {"s3-dead": entry}, clouds=clouds)
    out = verify(inv)["s3-dead"]
    assert {r.status.value for r in out.results} == {"UNREACHABLE"}


# --- Stubber: APIs / states moto does not provide ----------------------------------------------------


def _client(service: str):
    return boto3.client(service, region_name=REGION, aws_access_key_id="testing", aws_secret_access_key="testing")


def _verify_with(tmp_path, entries, clients):
    inv = write_inventory(
        tmp_path / "inv.yaml", None, entries, clouds={"acct": {"provider": "aws", "regions": [REGION]}}
    )
    return verify(inv, cloud_clients=lambda cloud: lambda service, region: clients[service])


def _point(i: int, age_h: float, arn: str, *, encrypted: bool = True, status: str = "COMPLETED") -> dict[str, object]:
    when = dt.datetime.now(UTC) - dt.timedelta(hours=age_h)
    return {
        "RecoveryPointArn": f"arn:aws:backup:{REGION}:123456789012:recovery-point:rp-{i}",
        "BackupVaultName": "v",
        "ResourceArn": arn,
        "ResourceType": "EBS",
        "Status": status,
        "CreationDate": when,
        "CompletionDate": when,
        "IsEncrypted": encrypted,
        "BackupSizeInBytes": 1000 + i,
    }


def test_aws_backup_vault_via_stubber(tmp_path):
    """AWS Backup recovery points: moto lacks ListRecoveryPointsByBackupVault, so Stubber answers."""
    vol = f"arn:aws:ec2:{REGION}:123456789012:volume/vol-0abc"
    client = _client("backup")
    stub = Stubber(client)
    # healthy: locked vault, fresh encrypted points, no access policy
    stub.add_response(
        "list_recovery_points_by_backup_vault",
        {"RecoveryPoints": [_point(1, 30, vol), _point(2, 6, vol)]},
        {"BackupVaultName": "good"},
    )
    stub.add_response(
        "describe_backup_vault",
        {"BackupVaultName": "good", "Locked": True, "MinRetentionDays": 7},
        {"BackupVaultName": "good"},
    )
    stub.add_client_error(
        "get_backup_vault_access_policy",
        service_error_code="ResourceNotFoundException",
        http_status_code=404,
        expected_params={"BackupVaultName": "good"},
    )
    # faulty: unlocked, public policy, newest completed point stale and unencrypted (a newer one still running)
    stub.add_response(
        "list_recovery_points_by_backup_vault",
        {"RecoveryPoints": [_point(3, 80, vol, encrypted=False), _point(4, 1, vol, status="RUNNING")]},
        {"BackupVaultName": "bad"},
    )
    stub.add_response("describe_backup_vault", {"BackupVaultName": "bad", "Locked": False}, {"BackupVaultName": "bad"})
    policy = {
        "Version": "2012-10-17",
        "Statement": [{"Effect": "Allow", "Principal": "*", "Action": "backup:*", "Resource": "*"}],
    }
    stub.add_response("get_backup_vault_access_policy", {"Policy": json.dumps(policy)}, {"BackupVaultName": "bad"})
    entries = {
        "vault-good": {"kind": "aws_backup", "cloud": "acct", "vault": "good", "rpo": "26h", "min_copies": 2},
        "vault-bad": {"kind": "aws_backup", "cloud": "acct", "vault": "bad", "rpo": "26h", "min_copies": 1},
    }
    with stub:
        outcomes = _verify_with(tmp_path, {"vault-good": entries["vault-good"]}, {"backup": client})
        outcomes |= _verify_with(tmp_path, {"vault-bad": entries["vault-bad"]}, {"backup": client})
        stub.assert_no_pending_responses()
    good = statuses(outcomes["vault-good"])
    assert all(s == {"PASS"} for s in good.values()), outcomes["vault-good"].results
    found = failures(outcomes)
    assert set(found) == {
        ("vault-bad", k) for k in ("backup.within_rpo", "backup.encrypted", "backup.not_public", "backup.immutable")
    }, found
    assert "newest backup is 3d 8h old, RPO 26h" in found[("vault-bad", "backup.within_rpo")]
    assert "vault bad has no Vault Lock" in found[("vault-bad", "backup.immutable")]


def test_s3_checksum_mismatch_and_missing_permission_via_stubber(tmp_path):
    """A stored SHA256 that does not match the bytes (moto cannot store one) fails integrity;
    AccessDenied on listing is ERROR "not assessable", never PASS."""
    client = _client("s3")
    stub = Stubber(client)
    now = dt.datetime.now(UTC)
    body = b"backup bytes"
    wrong = base64.b64encode(hashlib.sha256(b"other bytes").digest()).decode()
    stub.add_response(
        "list_objects_v2",
        {"Contents": [{"Key": "x/a.gz", "LastModified": now, "Size": len(body)}], "IsTruncated": False},
        {"Bucket": "b", "Prefix": "x/"},
    )
    stub.add_response(
        "head_object",
        {"ContentLength": len(body), "ChecksumSHA256": wrong, "ETag": '"abc"', "ServerSideEncryption": "aws:kms"},
        {"Bucket": "b", "Key": "x/a.gz", "ChecksumMode": "ENABLED"},
    )
    stub.add_response(
        "get_object", {"Body": StreamingBody(io.BytesIO(body), len(body))}, {"Bucket": "b", "Key": "x/a.gz"}
    )
    stub.add_response(
        "get_object_lock_configuration",
        {
            "ObjectLockConfiguration": {
                "ObjectLockEnabled": "Enabled",
                "Rule": {"DefaultRetention": {"Mode": "COMPLIANCE", "Days": 35}},
            }
        },
        {"Bucket": "b"},
    )
    stub.add_client_error(
        "list_objects_v2",
        service_error_code="AccessDenied",
        http_status_code=403,
        expected_params={"Bucket": "denied", "Prefix": ""},
    )
    stub.add_client_error(
        "get_object_lock_configuration",
        service_error_code="AccessDenied",
        http_status_code=403,
        expected_params={"Bucket": "denied"},
    )
    with stub:
        mismatch = _verify_with(
            tmp_path,
            {"s3-b": {"kind": "s3", "cloud": "acct", "bucket": "b", "prefix": "x/", "rpo": "26h"}},
            {"s3": client},
        )["s3-b"]
        denied = _verify_with(
            tmp_path, {"s3-d": {"kind": "s3", "cloud": "acct", "bucket": "denied", "rpo": "26h"}}, {"s3": client}
        )["s3-d"]
    res = by_check(mismatch)["backup.integrity_ok"][0]
    assert (
        res.status.value == "FAIL"
        and "SHA256 checksum" in res.message
        and f"does not match the stored {wrong}" in res.message
    )
    assert statuses(mismatch)["backup.immutable"] == {"PASS"}
    assert statuses(denied)["backup.within_rpo"] == {"ERROR"}
    msg = by_check(denied)["backup.within_rpo"][0].message
    assert msg == "not assessable: missing permission s3:ListBucket"
