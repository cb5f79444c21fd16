"""Backups: the newest copy is no older than the backup's RPO (per host/tag or volume where a backup holds several)."""

from __future__ import annotations

from itops.backup.facts import BackupFacts, format_age, format_limit, short_name
from itops.checkapi import Finding, Params, Severity, backup_check


@backup_check(
    id="backup.within_rpo",
    title="The newest backup is no older than its RPO",
    severity=Severity.HIGH,
    rationale="A backup older than the recovery point objective means more data is lost in a disaster than the "
    "business agreed to; a backup job that silently stopped is the most common way backups fail.",
    remediation="Find out why the backup job stopped (scheduler, credentials, disk space, the job's log), run it "
    "now, and alert on its failure; or change `rpo` if the agreed objective really changed.",
    frameworks={"cis-controls": ["11.2"], "nist-800-53": ["CP-9", "CP-10"], "iso-27001": ["A.8.13"]},
    needs=["copies"],
)
def within_rpo(facts: BackupFacts, params: Params) -> list[Finding]:
    """The newest copy (of each host/tag set, volume or DB instance the backup holds) is at most RPO old."""
    rpo = format_limit(facts.rpo)
    groups = facts.groups()
    if not groups:
        why = f" ({facts.absent})" if facts.absent else ""
        return [Finding.failed(f"no backup found at {facts.where}{why}", observed="no copy", expected=f"age <= {rpo}")]
    findings = []
    for group, copies in groups.items():
        label = f"{group}: " if group else ""
        if not copies:
            findings.append(
                Finding.failed(f"{label}no completed backup found", resource=group, expected=f"age <= {rpo}")
            )
            continue
        newest = copies[0]
        age = facts.now - newest.created
        observed, expected = f"age {format_age(age)} ({short_name(newest.name)})", f"age <= {rpo}"
        if age > facts.rpo:
            msg = f"{label}newest backup is {format_age(age)} old, RPO {rpo}"
            findings.append(Finding.failed(msg, observed=observed, expected=expected, resource=group))
        else:
            future = " (dated in the future: check the clock)" if age < -300 else ""
            msg = f"{label}newest backup {short_name(newest.name)} is {format_age(age)} old, RPO {rpo}{future}"
            findings.append(Finding.passed(msg, observed=observed, expected=expected, resource=group))
    return findings
