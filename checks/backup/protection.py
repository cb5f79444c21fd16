"""Backups: copies are immutable, encrypted and not shared publicly (cloud backups)."""

from __future__ import annotations

from itops.backup.facts import BackupFacts
from itops.checkapi import Finding, Params, Severity, backup_check


@backup_check(
    id="backup.immutable",
    title="Backups cannot be deleted or overwritten before they expire",
    severity=Severity.HIGH,
    rationale="Ransomware operators and careless automation delete backups first; S3 Object Lock and AWS Backup "
    "Vault Lock keep copies for their retention period whatever credentials are stolen.",
    remediation="S3: create the bucket with Object Lock and set a default retention "
    "(aws s3api put-object-lock-configuration); AWS Backup: aws backup put-backup-vault-lock-configuration.",
    frameworks={"cis-controls": ["11.4"], "nist-800-53": ["CP-9", "CP-9(7)"], "iso-27001": ["A.8.13"]},
    needs=["protection"],
    kinds=["s3", "aws_backup"],
)
def immutable(facts: BackupFacts, params: Params) -> Finding:
    """Object Lock (S3, with retention) or Vault Lock (AWS Backup) protects the copies."""
    v = facts.immutable
    if v is None or v.ok is None:
        return Finding.skipped(v.message if v else "immutability not determined")
    return (Finding.passed if v.ok else Finding.failed)(v.message)


@backup_check(
    id="backup.encrypted",
    title="The newest backup is encrypted at rest",
    severity=Severity.HIGH,
    rationale="Backups hold the same data as production, usually with weaker access controls; unencrypted "
    "snapshots and objects expose it to anyone who gets read access to the storage.",
    remediation="Enable default encryption (EBS encryption by default, encrypted RDS instances, SSE-KMS default "
    "bucket encryption, an encrypted backup vault) and re-create the copies encrypted.",
    frameworks={"cis-controls": ["11.3"], "nist-800-53": ["CP-9(8)", "SC-28"], "iso-27001": ["A.8.13", "A.8.24"]},
    needs=["copies"],
    kinds=["s3", "ebs_snapshot", "rds_snapshot", "aws_backup"],
)
def encrypted(facts: BackupFacts, params: Params) -> list[Finding]:
    """The newest copy of each volume/instance/prefix is encrypted (older unencrypted copies are counted)."""
    findings = []
    for group, copies in facts.groups().items():
        label = f"{group}: " if group else ""
        if not copies:
            findings.append(Finding.skipped(f"{label}no copy to inspect", resource=group))
            continue
        newest = copies[0]
        older = sum(1 for c in copies[1:] if c.encrypted is False)
        tail = f" ({older} older unencrypted cop{'y' if older == 1 else 'ies'})" if older else ""
        if newest.encrypted is None:
            findings.append(Finding.error(f"{label}could not tell whether {newest.name} is encrypted", resource=group))
        elif newest.encrypted:
            findings.append(Finding.passed(f"{label}newest copy {newest.name} is encrypted{tail}", resource=group))
        else:
            msg = f"{label}newest copy {newest.name} is not encrypted{tail}"
            findings.append(Finding.failed(msg, observed="unencrypted", expected="encrypted", resource=group))
    return findings or [Finding.skipped("no copy to inspect")]


@backup_check(
    id="backup.not_public",
    title="No backup copy is shared publicly",
    severity=Severity.CRITICAL,
    rationale="A snapshot shared with 'all' (or a vault policy allowing '*') lets any AWS account copy the "
    "whole disk or database.",
    remediation="Remove public sharing: aws ec2 modify-snapshot-attribute --attribute createVolumePermission "
    "--operation-type remove --group-names all; aws rds modify-db-snapshot-attribute --attribute-name restore "
    "--values-to-remove all; remove Principal '*' from the vault access policy.",
    frameworks={"cis-controls": ["11.3"], "nist-800-53": ["AC-3", "CP-9"], "iso-27001": ["A.8.13", "A.5.15"]},
    needs=["copies", "protection"],
    kinds=["ebs_snapshot", "rds_snapshot", "aws_backup"],
)
def not_public(facts: BackupFacts, params: Params) -> Finding:
    """No copy is restorable by everyone."""
    if not facts.copies:
        return Finding.skipped("no copy to inspect")
    public = [c.name for c in facts.copies if c.public]
    if public:
        more = f" and {len(public) - 5} more" if len(public) > 5 else ""
        return Finding.failed(
            f"{len(public)} cop{'y is' if len(public) == 1 else 'ies are'} shared publicly: "
            f"{', '.join(public[:5])}{more}",
            observed=", ".join(public[:20]),
            expected="no public copy",
        )
    return Finding.passed(f"none of the {len(facts.copies)} copies is shared publicly")
