"""Backups: the newest copy passes its integrity test (gzip/tar/zstd test, manifest, pg_restore --list,
restic check, S3 checksum)."""

from __future__ import annotations

from itops.backup.facts import BackupFacts
from itops.checkapi import Finding, Params, Severity, backup_check


@backup_check(
    id="backup.integrity_ok",
    title="The newest backup passes its integrity test",
    severity=Severity.HIGH,
    rationale="A truncated or corrupt backup looks fine by its date and size but cannot be restored; integrity "
    "tests catch it while older good copies still exist.",
    remediation="Re-run the backup and find the cause (disk full, interrupted transfer, failing storage); for "
    "restic run `restic check --read-data` and `restic repair`/`rebuild-index` as its documentation describes.",
    frameworks={"cis-controls": ["11.5"], "nist-800-53": ["CP-9(1)", "SI-7"], "iso-27001": ["A.8.13"]},
    needs=["integrity"],
    kinds=["file", "s3", "restic", "postgres_dump"],
)
def integrity_ok(facts: BackupFacts, params: Params) -> Finding:
    """The verifier's integrity verdict on the newest copy (SKIPPED when there is nothing to test)."""
    v = facts.integrity
    if v is None:
        return Finding.skipped("no copy to verify" if not facts.copies else "integrity not tested")
    if v.ok is None:
        return Finding.skipped(v.message, observed=v.detail)
    if v.ok:
        return Finding.passed(v.message, observed=v.detail)
    return Finding.failed(v.message, observed=v.detail, expected="integrity test passes")
