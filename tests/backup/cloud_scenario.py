"""The moto scenario shared by the cloud tests and the CLI acceptance test: buckets, volumes, DB snapshots."""

from __future__ import annotations

from typing import Any

REGION = "eu-west-1"


def s3_setup(moto: Any) -> dict[str, object]:
    s3 = moto.client("s3")
    loc = {"LocationConstraint": REGION}
    s3.create_bucket(Bucket="bk-locked", CreateBucketConfiguration=loc, ObjectLockEnabledForBucket=True)
    s3.put_object_lock_configuration(
        Bucket="bk-locked",
        ObjectLockConfiguration={
            "ObjectLockEnabled": "Enabled",
            "Rule": {"DefaultRetention": {"Mode": "GOVERNANCE", "Days": 30}},
        },
    )
    for i in range(3):
        s3.put_object(
            Bucket="bk-locked",
            Key=f"db/dump-{i}.sql.gz",
            Body=b"x" * (20_000 + i),
            ChecksumAlgorithm="SHA256",
            ServerSideEncryption="AES256",
        )
    s3.create_bucket(Bucket="bk-plain", CreateBucketConfiguration=loc)
    s3.put_object(Bucket="bk-plain", Key="nightly/a.tar.gz", Body=b"y" * 3_100_000)
    s3.put_object(Bucket="bk-plain", Key="nightly/b.tar.gz", Body=b"y" * 1_200_000)
    return {
        "s3-locked": {
            "kind": "s3",
            "cloud": "aws-test",
            "bucket": "bk-locked",
            "prefix": "db/",
            "rpo": "26h",
            "min_copies": 3,
            "min_size": "10KB",
        },
        "s3-plain": {
            "kind": "s3",
            "cloud": "aws-test",
            "bucket": "bk-plain",
            "prefix": "nightly/",
            "rpo": "26h",
            "min_copies": 1,  # retention is not what this backup tests
            "max_shrink_pct": 20,
        },
        "s3-nobucket": {"kind": "s3", "cloud": "aws-test", "bucket": "bk-gone", "rpo": "26h"},
    }


def snapshots_setup(moto: Any) -> dict[str, object]:
    ec2 = moto.client("ec2")
    good = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=8, Encrypted=True)["VolumeId"]
    bad = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=8, Encrypted=False)["VolumeId"]
    none = ec2.create_volume(AvailabilityZone=f"{REGION}a", Size=8, Encrypted=True)["VolumeId"]
    ec2.create_snapshot(VolumeId=good)
    snap = ec2.create_snapshot(VolumeId=bad)["SnapshotId"]
    ec2.modify_snapshot_attribute(
        SnapshotId=snap, Attribute="createVolumePermission", OperationType="add", GroupNames=["all"]
    )
    rds = moto.client("rds")
    rds.create_db_instance(
        DBInstanceIdentifier="orders-db",
        DBInstanceClass="db.t3.micro",
        Engine="postgres",
        MasterUsername="admin",
        MasterUserPassword="not-a-secret-1",
        AllocatedStorage=20,
        StorageEncrypted=True,
    )
    rds.create_db_snapshot(DBInstanceIdentifier="orders-db", DBSnapshotIdentifier="orders-db-manual")
    rds.modify_db_snapshot_attribute(
        DBSnapshotIdentifier="orders-db-manual", AttributeName="restore", ValuesToAdd=["all"]
    )
    return {
        "ebs-good": {
            "kind": "ebs_snapshot",
            "cloud": "aws-test",
            "region": REGION,
            "resource_ids": [good],
            "rpo": "26h",
            "min_copies": 1,  # retention is not what this backup tests
        },
        "ebs-bad": {
            "kind": "ebs_snapshot",
            "cloud": "aws-test",
            "region": REGION,
            "resource_ids": [bad, none],
            "rpo": "26h",
            "min_copies": 1,  # retention is not what this backup tests
        },
        "rds-shared": {
            "kind": "rds_snapshot",
            "cloud": "aws-test",
            "region": REGION,
            "resource_ids": ["orders-db"],
            "rpo": "26h",
            "min_copies": 1,  # retention is not what this backup tests
        },
        "_vols": {"good": good, "bad": bad, "none": none, "snap": snap},
    }


#: every FAIL the moto scenario must produce, and what its message says
CLOUD_FAULTS = {
    ("s3-plain", "backup.immutable"): "Object Lock is not enabled on bucket bk-plain (versioning: never enabled)",
    ("s3-plain", "backup.encrypted"): "newest copy nightly/b.tar.gz is not encrypted",
    ("s3-plain", "backup.size_ok"): "newest copy 1.2 MB is 61% smaller than the previous 3.1 MB (max shrink 20%)",
    ("s3-nobucket", "backup.within_rpo"): "no backup found at s3://bk-gone/ (bucket bk-gone does not exist)",
    ("ebs-bad", "backup.encrypted"): "is not encrypted",
    ("ebs-bad", "backup.not_public"): "1 copy is shared publicly: snap-",
    ("ebs-bad", "backup.within_rpo"): "no completed backup found",
    ("ebs-bad", "backup.copies_retained"): "only 0 copies retained, at least 1 required",  # the volume without one
    ("s3-nobucket", "backup.copies_retained"): "only 0 copies retained, at least 2 required",  # the default
    ("rds-shared", "backup.not_public"): "1 copy is shared publicly: orders-db-manual",
}
