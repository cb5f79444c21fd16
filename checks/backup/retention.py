"""Backups: the newest copy is big enough and did not shrink suspiciously; enough copies are kept."""

from __future__ import annotations

from itops.backup.facts import BackupFacts, format_size, short_name
from itops.checkapi import Finding, Params, Severity, backup_check


@backup_check(
    id="backup.size_ok",
    title="The newest backup is not too small and did not shrink suspiciously",
    severity=Severity.HIGH,
    rationale="A backup that suddenly shrinks (or is nearly empty) usually means the job backed up the wrong "
    "thing, skipped data it could not read, or was cut short, while still reporting success.",
    remediation="Compare the newest copy with the previous one (listing, row counts), check the backup job's log "
    "for skipped files or errors, and re-run it; adjust `min_size`/`max_shrink_pct` only if the data really shrank.",
    frameworks={"cis-controls": ["11.2"], "nist-800-53": ["CP-9", "CP-9(1)"], "iso-27001": ["A.8.13"]},
    needs=["copies"],
    kinds=["file", "s3", "postgres_dump"],
    params={"max_shrink_pct": 50.0},
)
def size_ok(facts: BackupFacts, params: Params) -> list[Finding]:
    """The newest copy is not empty, is at least ``min_size``, and is at most ``max_shrink_pct`` % smaller
    than the one before it."""
    shrink = float(facts.max_shrink_pct if facts.max_shrink_pct is not None else params["max_shrink_pct"])
    findings = []
    for group, copies in facts.groups().items():
        label = f"{group}: " if group else ""
        if not copies:
            findings.append(Finding.skipped(f"{label}no copy to measure", resource=group))
            continue
        newest = copies[0]
        if newest.size is None:
            findings.append(Finding.error(f"{label}the size of {short_name(newest.name)} is unknown", resource=group))
            continue
        problems = []
        if newest.size == 0:  # whatever min_size says: an empty file holds nothing to restore
            problems.append(f"newest copy {short_name(newest.name)} is empty (0 bytes)")
        elif facts.min_size is not None and newest.size < facts.min_size:
            problems.append(
                f"newest copy {format_size(newest.size)} is below the minimum {format_size(facts.min_size)}"
            )
        previous = copies[1] if len(copies) > 1 else None
        if previous is not None and previous.size and newest.size < previous.size:
            pct = (1 - newest.size / previous.size) * 100
            if pct > shrink:
                problems.append(
                    f"newest copy {format_size(newest.size)} is {pct:.0f}% smaller than the previous "
                    f"{format_size(previous.size)} (max shrink {shrink:g}%)"
                )
        observed = f"{format_size(newest.size)} ({short_name(newest.name)})" + (
            f", previous {format_size(previous.size)}" if previous is not None and previous.size is not None else ""
        )
        expected = f">= {format_size(facts.min_size)}, " if facts.min_size is not None else ""
        expected += f"shrink <= {shrink:g}%"
        size = {f"backup.size_bytes:{group}": float(newest.size)}  # recorded for growth forecasts
        if problems:
            findings.append(
                Finding.failed(
                    label + "; ".join(problems), observed=observed, expected=expected, resource=group, metrics=size
                )
            )
        else:
            findings.append(
                Finding.passed(
                    f"{label}newest copy is {observed}",
                    observed=observed,
                    expected=expected,
                    resource=group,
                    metrics=size,
                )
            )
    return findings or [Finding.skipped("no copy to measure")]


@backup_check(
    id="backup.copies_retained",
    title="At least the required number of backup copies is retained",
    severity=Severity.MEDIUM,
    rationale="With a single copy, a corrupt or encrypted-by-ransomware backup leaves nothing to restore; "
    "retention gives older, known-good restore points.",
    remediation="Fix the rotation/retention settings of the backup job (or its lifecycle rules) so that at least "
    "`min_copies` copies are kept, and check nothing deletes them early.",
    frameworks={"cis-controls": ["11.2"], "nist-800-53": ["CP-9", "CP-6"], "iso-27001": ["A.8.13"]},
    needs=["copies"],
    params={"min_copies": 2},
)
def copies_retained(facts: BackupFacts, params: Params) -> list[Finding]:
    """At least ``min_copies`` copies exist (of each host/tag set, volume or DB instance).

    Without ``min_copies`` on the backup (or in vars) two copies are required: a single copy
    is the case this check exists for, so it must not pass silently; ``min_copies: 1`` accepts it.
    """
    required = int(facts.min_copies if facts.min_copies is not None else params["min_copies"])
    findings = []
    groups = facts.groups() or {"": []}
    for group, copies in groups.items():
        label = f"{group}: " if group else ""
        n = len(copies)
        words = f"{n} cop{'y' if n == 1 else 'ies'}"
        count = {f"backup.copies:{group}": float(n)}
        if n < required:
            msg = f"{label}only {words} retained, at least {required} required"
            findings.append(
                Finding.failed(msg, observed=words, expected=f">= {required}", resource=group, metrics=count)
            )
        else:
            msg = f"{label}{words} retained (at least {required} required)"
            findings.append(
                Finding.passed(msg, observed=words, expected=f">= {required}", resource=group, metrics=count)
            )
    return findings
