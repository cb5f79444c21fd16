"""RDS: encryption, public exposure, backups, deletion protection, snapshots, production multi-AZ."""

from __future__ import annotations

from collections.abc import Callable

from itops.checkapi import CloudFacts, CloudResource, Finding, Params, Severity, aws_check
from itops.checklib.aws import tag_map

DB = dict(collections=["rds.instances"], iam_actions=["rds:DescribeDBInstances"])


def _instances(
    facts: CloudFacts, judge: Callable[[CloudResource, str], Finding | None], *, skip_cluster_members: bool = False
) -> list[Finding]:
    def one(db: CloudResource) -> Finding | None:
        if skip_cluster_members and db.get("DBClusterIdentifier"):
            return None  # Aurora: set on the cluster, not the instance
        return judge(db, f"DB instance {db.name} ({facts.where(db.region)})")

    return facts.each("rds.instances", one, what="RDS DB instances")


@aws_check(
    id="aws.rds.storage_encrypted",
    title="RDS DB instances encrypt their storage",
    severity=Severity.HIGH,
    rationale="Encryption at rest covers the instance's storage, automated backups, replicas and snapshots.",
    remediation="Encryption cannot be turned on in place: aws rds create-db-snapshot, aws rds copy-db-snapshot "
    "--kms-key-id KEY, aws rds restore-db-instance-from-db-snapshot, then switch clients over.",
    frameworks={"cis-aws-foundations": ["2.3.1"], "nist-800-53": ["SC-28", "SC-28(1)"], "iso-27001": ["A.8.24"]},
    **DB,
)
def storage_encrypted(facts: CloudFacts, params: Params) -> list[Finding]:
    """Every DB instance has StorageEncrypted=true."""

    def judge(db: CloudResource, where: str) -> Finding:
        if not db.get("StorageEncrypted"):
            return Finding.failed(f"{where} storage is not encrypted", observed="unencrypted", expected="encrypted")
        return Finding.passed(f"{where} storage is encrypted")

    return _instances(facts, judge)


@aws_check(
    id="aws.rds.not_publicly_accessible",
    title="RDS DB instances are not publicly accessible",
    severity=Severity.CRITICAL,
    rationale="A publicly accessible instance gets a public DNS name and IP; only the security group stands "
    "between the database and the internet.",
    remediation="aws rds modify-db-instance --db-instance-identifier DB --no-publicly-accessible --apply-immediately",
    frameworks={"cis-aws-foundations": ["2.3.3"], "nist-800-53": ["AC-3", "SC-7"], "iso-27001": ["A.8.20", "A.8.3"]},
    **DB,
)
def not_publicly_accessible(facts: CloudFacts, params: Params) -> list[Finding]:
    """Every DB instance has PubliclyAccessible=false."""

    def judge(db: CloudResource, where: str) -> Finding:
        if db.get("PubliclyAccessible"):
            return Finding.failed(f"{where} is publicly accessible", observed="public", expected="private")
        return Finding.passed(f"{where} is not publicly accessible")

    return _instances(facts, judge)


@aws_check(
    id="aws.rds.backup_retention_sufficient",
    title="RDS automated backups are kept long enough",
    severity=Severity.MEDIUM,
    rationale="Automated backups enable point-in-time restore; too short a retention loses the restore points "
    "needed after a late-detected incident.",
    remediation="aws rds modify-db-instance --db-instance-identifier DB "
    "--backup-retention-period {rds_backup_retention_days} --apply-immediately",
    frameworks={"nist-800-53": ["CP-9", "CP-10"], "iso-27001": ["A.8.13"]},
    params={"rds_backup_retention_days": 7},
    **DB,
)
def backup_retention_sufficient(facts: CloudFacts, params: Params) -> list[Finding]:
    """BackupRetentionPeriod is at least ``rds_backup_retention_days`` (Aurora members: see the cluster)."""
    need = int(params["rds_backup_retention_days"])

    def judge(db: CloudResource, where: str) -> Finding:
        have = int(db.get("BackupRetentionPeriod") or 0)
        if have < need:
            return Finding.failed(
                f"{where} keeps backups {have} day(s)", observed=f"{have} days", expected=f">= {need} days"
            )
        return Finding.passed(f"{where} keeps backups {have} days", observed=f"{have} days")

    return _instances(facts, judge, skip_cluster_members=True)


@aws_check(
    id="aws.rds.deletion_protection_enabled",
    title="RDS DB instances have deletion protection",
    severity=Severity.MEDIUM,
    rationale="Deletion protection stops a mistaken or malicious delete-db-instance from destroying the database.",
    remediation="aws rds modify-db-instance --db-instance-identifier DB --deletion-protection --apply-immediately",
    frameworks={"nist-800-53": ["CP-9", "CM-3"], "iso-27001": ["A.8.13", "A.8.32"]},
    **DB,
)
def deletion_protection_enabled(facts: CloudFacts, params: Params) -> list[Finding]:
    """Every (non-Aurora) DB instance has DeletionProtection=true."""

    def judge(db: CloudResource, where: str) -> Finding:
        if not db.get("DeletionProtection"):
            return Finding.failed(f"{where} has no deletion protection", observed="off", expected="on")
        return Finding.passed(f"{where} has deletion protection")

    return _instances(facts, judge, skip_cluster_members=True)


@aws_check(
    id="aws.rds.auto_minor_version_upgrade",
    title="RDS DB instances get minor engine upgrades automatically",
    severity=Severity.LOW,
    rationale="Minor versions carry security fixes; automatic upgrades apply them in the maintenance window.",
    remediation="aws rds modify-db-instance --db-instance-identifier DB --auto-minor-version-upgrade "
    "--apply-immediately",
    frameworks={"cis-aws-foundations": ["2.3.2"], "nist-800-53": ["SI-2"], "iso-27001": ["A.8.8"]},
    **DB,
)
def auto_minor_version_upgrade(facts: CloudFacts, params: Params) -> list[Finding]:
    """Every DB instance has AutoMinorVersionUpgrade=true."""

    def judge(db: CloudResource, where: str) -> Finding:
        if not db.get("AutoMinorVersionUpgrade"):
            return Finding.failed(f"{where} does not upgrade minor versions", observed="off", expected="on")
        return Finding.passed(f"{where} upgrades minor versions automatically")

    return _instances(facts, judge)


@aws_check(
    id="aws.rds.production_multi_az",
    title="Production RDS DB instances are Multi-AZ",
    severity=Severity.MEDIUM,
    rationale="A Multi-AZ standby takes over within minutes when an instance or an availability zone fails.",
    remediation="aws rds modify-db-instance --db-instance-identifier DB --multi-az --apply-immediately",
    frameworks={"nist-800-53": ["CP-10", "CP-7", "SC-36"], "iso-27001": ["A.8.14"]},
    params={"production_tag_key": "environment", "production_tag_values": ["prod", "production"]},
    **DB,
)
def production_multi_az(facts: CloudFacts, params: Params) -> list[Finding]:
    """Instances tagged ``production_tag_key`` in ``production_tag_values`` (case-insensitive) have MultiAZ."""
    key = str(params["production_tag_key"]).lower()
    values = {str(v).lower() for v in params["production_tag_values"]}

    def judge(db: CloudResource, where: str) -> Finding | None:
        tags = {k.lower(): v.lower() for k, v in tag_map(db.get("TagList")).items()}
        if tags.get(key) not in values or db.get("DBClusterIdentifier"):
            return None
        if not db.get("MultiAZ"):
            return Finding.failed(f"production {where} is single-AZ", observed="single-AZ", expected="Multi-AZ")
        return Finding.passed(f"production {where} is Multi-AZ")

    return _instances(facts, judge)


@aws_check(
    id="aws.rds.snapshots_not_public",
    title="No RDS snapshot is shared publicly",
    severity=Severity.CRITICAL,
    rationale="A public DB snapshot lets any AWS account restore a copy of the database.",
    remediation="aws rds modify-db-snapshot-attribute --db-snapshot-identifier SNAP --attribute-name restore "
    "--values-to-remove all",
    frameworks={"nist-800-53": ["AC-3", "AC-21"], "iso-27001": ["A.8.3", "A.8.12"]},
    collections=["rds.snapshots"],
    iam_actions=["rds:DescribeDBSnapshots", "rds:DescribeDBSnapshotAttributes"],
)
def snapshots_not_public(facts: CloudFacts, params: Params) -> list[Finding]:
    """No manual DB snapshot has ``all`` in its restore attribute."""

    def judge(s: CloudResource) -> Finding:
        where = f"DB snapshot {s.name} ({facts.where(s.region)})"
        if "all" in (s.part("restore") or []):
            return Finding.failed(f"{where} is public", observed="restore: all", expected="private")
        return Finding.passed(f"{where} is not public")

    return facts.each("rds.snapshots", judge, what="RDS snapshots")
