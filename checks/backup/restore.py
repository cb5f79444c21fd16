"""Backups: a real restore into scratch space succeeds, its data verifies, and it is fast enough for the RTO."""

from __future__ import annotations

from itops.backup.facts import BackupFacts, format_duration, format_limit
from itops.checkapi import Finding, Params, Severity, backup_check


@backup_check(
    id="backup.restore_test_passed",
    title="A restore test of the newest backup succeeds and its data verifies",
    severity=Severity.CRITICAL,
    rationale="Only a restore proves a backup is usable: archives that test fine can still miss files, and dumps "
    "can fail to load (missing roles, extensions) or load without the expected data.",
    remediation="Read the failing verification in the message, fix the backup job (what it includes, how the dump "
    "is made), and re-run `itops backup verify --restore-test`.",
    frameworks={"cis": ["11.5"], "nist-800-53": ["CP-4", "CP-9(1)", "CP-10"], "iso-27001": ["A.8.13", "A.5.30"]},
    needs=["restore"],
    kinds=["file", "restic", "postgres_dump"],
)
def restore_test_passed(facts: BackupFacts, params: Params) -> Finding:
    """The restore finished, every expected file/checksum/query verified, and the scratch space was removed."""
    r = facts.restore
    if r is None:
        return Finding.error("no restore result")
    took = f" in {format_duration(r.seconds)}" if r.seconds is not None else ""
    if r.ok:
        checked = "; ".join(r.verified) or "nothing further to verify"
        return Finding.passed(f"restored {r.what}{took}; verified: {checked}", observed=checked)
    of = f" of {r.what}" if r.what else ""
    return Finding.failed(
        f"restore test{of} failed: {'; '.join(r.problems)}",
        observed="; ".join(r.problems),
        expected="restore succeeds and every verification passes",
    )


@backup_check(
    id="backup.restore_within_rto",
    title="A restore of the newest backup finishes within the RTO",
    severity=Severity.HIGH,
    rationale="The recovery time objective is only met if restoring the data alone takes well under it; measuring "
    "the restore every time shows when growth makes it too slow.",
    remediation="Speed up the restore (parallel pg_restore -j, faster storage, smaller or incremental backups) or "
    "agree a longer RTO; the measured time is in the message.",
    frameworks={"cis": ["11.5"], "nist-800-53": ["CP-10", "CP-4"], "iso-27001": ["A.5.30", "A.8.13"]},
    needs=["restore"],
    kinds=["file", "restic", "postgres_dump"],
)
def restore_within_rto(facts: BackupFacts, params: Params) -> Finding:
    """The measured restore time is at most ``restore_test.rto``."""
    r = facts.restore
    if r is None:
        return Finding.error("no restore result")
    rto = f"RTO {format_limit(r.rto)}" if r.rto is not None else "no RTO set (restore_test.rto)"
    if r.seconds is None:
        if r.timed_out:
            return Finding.failed(f"restore did not finish before the timeout; {rto}", expected=rto)
        return Finding.skipped(f"restore did not run far enough to be timed; {rto}")
    took = format_duration(r.seconds)
    observed = f"{r.seconds:.3f}s"
    if r.rto is None:
        return Finding.skipped(f"restore took {took}; {rto}", observed=observed)
    if r.seconds > r.rto:
        return Finding.failed(f"restore took {took}, {rto}", observed=observed, expected=f"<= {r.rto:g}s")
    return Finding.passed(f"restore took {took}, within {rto}", observed=observed, expected=f"<= {r.rto:g}s")
