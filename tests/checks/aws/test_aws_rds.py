"""RDS checks on canned collection data."""

from __future__ import annotations

import pytest
from aws_canned import DENIED, coll, facts, only, res, run

from itops.model import Status

GOOD = dict(
    StorageEncrypted=True,
    PubliclyAccessible=False,
    BackupRetentionPeriod=7,
    DeletionProtection=True,
    AutoMinorVersionUpgrade=True,
    MultiAZ=True,
    TagList=[{"Key": "Environment", "Value": "Production"}],
)
BAD = dict(
    StorageEncrypted=False,
    PubliclyAccessible=True,
    BackupRetentionPeriod=1,
    DeletionProtection=False,
    AutoMinorVersionUpgrade=False,
    MultiAZ=False,
    TagList=[{"Key": "environment", "Value": "prod"}],
)


def db(name: str, **data):
    return res(f"arn:aws:rds:eu-west-1:123456789012:db:{name}", name=name, DBInstanceIdentifier=name, **data)


@pytest.mark.parametrize(
    "check_id",
    [
        "aws.rds.storage_encrypted",
        "aws.rds.not_publicly_accessible",
        "aws.rds.backup_retention_sufficient",
        "aws.rds.deletion_protection_enabled",
        "aws.rds.auto_minor_version_upgrade",
        "aws.rds.production_multi_az",
    ],
)
def test_instances(check_id: str) -> None:
    found = run(check_id, facts(coll("rds.instances", [db("good", **GOOD), db("bad", **BAD)])))
    assert [f.status for f in found] == [Status.PASS, Status.FAIL]
    assert "DB instance bad" in found[1].message and "eu-west-1" in found[1].message
    denied = facts(coll("rds.instances", errors={"eu-west-1": DENIED.format("rds:DescribeDBInstances")}))
    assert only(run(check_id, denied)).status is Status.ERROR


def test_multi_az_only_for_production_and_retention_param() -> None:
    dev = db("dev", **{**BAD, "TagList": [{"Key": "environment", "Value": "dev"}]})
    assert only(run("aws.rds.production_multi_az", facts(coll("rds.instances", [dev])))).status is Status.SKIPPED
    staging = db("staging", **{**BAD, "TagList": [{"Key": "tier", "Value": "staging"}]})
    found = run(
        "aws.rds.production_multi_az",
        facts(coll("rds.instances", [staging])),
        production_tag_key="tier",
        production_tag_values=["staging"],
    )
    assert only(found).status is Status.FAIL
    assert (
        only(
            run(
                "aws.rds.backup_retention_sufficient",
                facts(coll("rds.instances", [db("x", **GOOD)])),
                rds_backup_retention_days=14,
            )
        ).status
        is Status.FAIL
    )


def test_aurora_members_are_left_to_the_cluster() -> None:
    member = db("aurora-1", **{**BAD, "DBClusterIdentifier": "aurora"})
    found = run("aws.rds.deletion_protection_enabled", facts(coll("rds.instances", [member])))
    assert only(found).status is Status.SKIPPED


def test_public_snapshots() -> None:
    def snap(name, restore=None, errors=None):
        return res(f"arn:aws:rds:eu-west-1:123456789012:snapshot:{name}", name=name, errors=errors, restore=restore)

    found = run(
        "aws.rds.snapshots_not_public",
        facts(
            coll(
                "rds.snapshots",
                [
                    snap("pub", ["all"]),
                    snap("shared", ["111111111111"]),
                    snap("priv", []),
                    snap("denied", errors={"restore": DENIED.format("rds:DescribeDBSnapshotAttributes")}),
                ],
            )
        ),
    )
    assert [f.status for f in found] == [Status.FAIL, Status.PASS, Status.PASS, Status.ERROR]
