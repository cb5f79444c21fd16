"""Backups: a real restore into scratch space succeeds, its data verifies, and it is fast enough for the RTO."""

from __future__ import annotations

from itops.backup.facts import BackupFacts, format_duration, format_limit
from itops.checkapi import Finding, Params, Severity, backup_check
from itops.forecast import DAY, MIN_POINTS, RESTORE_SECONDS, RTO_SECONDS, describe_days, project
from itops.yamlload import parse_duration


@backup_check(
    id="backup.restore_test_passed",
    title="A restore test of the newest backup succeeds and its data verifies",
    severity=Severity.CRITICAL,
    rationale="Only a restore proves a backup is usable: archives that test fine can still miss files, and dumps "
    "can fail to load (missing roles, extensions) or load without the expected data.",
    remediation="Read the failing verification in the message, fix the backup job (what it includes, how the dump "
    "is made), and re-run `itops backup verify --restore-test`.",
    frameworks={
        "cis-controls": ["11.5"],
        "nist-800-53": ["CP-4", "CP-9(1)", "CP-10"],
        "iso-27001": ["A.8.13", "A.5.30"],
    },
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
    frameworks={"cis-controls": ["11.5"], "nist-800-53": ["CP-10", "CP-4"], "iso-27001": ["A.5.30", "A.8.13"]},
    needs=["restore"],
    kinds=["file", "restic", "postgres_dump"],
    params={"rto": "4h"},
)
def restore_within_rto(facts: BackupFacts, params: Params) -> Finding:
    """The measured restore time is at most ``restore_test.rto`` (default: the ``rto`` param, 4h).

    A restore test without an RTO is still held to a documented default, never SKIPPED for a
    missing threshold.
    """
    r = facts.restore
    if r is None:
        return Finding.error("no restore result")
    limit = r.rto if r.rto is not None else parse_duration(params["rto"])
    rto = f"RTO {format_limit(limit)}" + ("" if r.rto is not None else " (default; set restore_test.rto)")
    if r.seconds is None:
        judged = {RTO_SECONDS: limit}  # the RTO it would be held to: shown beside the failed restore
        if r.timed_out:
            return Finding.failed(f"restore did not finish before the timeout; {rto}", expected=rto, metrics=judged)
        return Finding.skipped(f"restore did not run far enough to be timed; {rto}", metrics=judged)
    took = format_duration(r.seconds)
    observed = f"{r.seconds:.3f}s"
    metrics = {RESTORE_SECONDS: r.seconds, RTO_SECONDS: limit}  # the RTO judged against, default included
    if r.seconds > limit:
        return Finding.failed(
            f"restore took {took}, {rto}", observed=observed, expected=f"<= {limit:g}s", metrics=metrics
        )
    return Finding.passed(
        f"restore took {took}, within {rto}", observed=observed, expected=f"<= {limit:g}s", metrics=metrics
    )


#: Metrics the restore checks record per run (read by the restore-time forecast and `itops forecast`).


@backup_check(
    id="backup.restore_time_forecast_within_rto",
    title="The restore time's trend stays within the RTO over the horizon",
    severity=Severity.MEDIUM,
    rationale="Restores slow down as data grows; the trend of measured restore times shows when the RTO will "
    "be missed while there is still time to act, instead of on the day of the disaster.",
    remediation="Before the projected date: speed up restores (parallel pg_restore -j, faster storage, "
    "incremental or split backups) or agree a longer RTO; `itops forecast` shows the trend.",
    frameworks={
        "cis-controls": ["11.5"],
        "nist-800-53": ["CP-2(3)", "CP-10", "CP-4"],
        "iso-27001": ["A.5.30", "A.8.13"],
    },
    needs=["restore"],
    kinds=["file", "restic", "postgres_dump"],
    params={"restore_forecast_horizon_days": 30, "rto": "4h"},
    history=(RESTORE_SECONDS,),
)
def restore_time_forecast_within_rto(facts: BackupFacts, params: Params) -> Finding:
    """Fits the restore times of earlier runs and this one (Theil-Sen) and fails when the line reaches
    ``restore_test.rto`` (default: the ``rto`` param, 4h, as backup.restore_within_rto) within
    ``restore_forecast_horizon_days``."""
    r = facts.restore
    if r is None:
        return Finding.error("no restore result")
    limit = r.rto if r.rto is not None else parse_duration(params["rto"])
    if r.seconds is None:
        return Finding.skipped("the restore did not run far enough to be timed")
    horizon_days = params["restore_forecast_horizon_days"]
    if not isinstance(horizon_days, int | float) or horizon_days <= 0:
        return Finding.error(f"bad parameter restore_forecast_horizon_days: {horizon_days!r}")
    points = [*facts.history.get(RESTORE_SECONDS, ()), (facts.now, r.seconds)]
    projection = project(RESTORE_SECONDS, points, limit, facts.now)
    if projection is None:
        return Finding.skipped(f"not enough history ({len(points)} of {MIN_POINTS} runs) to project restore times")
    rto = format_limit(limit) + ("" if r.rto is not None else " (default; set restore_test.rto)")
    trend = f"{projection.fit.per_day:+.3g}s/day; {projection.fit.quality()}"
    if projection.within(float(horizon_days) * DAY):
        return Finding.failed(
            f"restores are projected to exceed the RTO {rto} {describe_days(projection.days_left())} "
            f"(now {format_duration(r.seconds)}, {trend})",
            observed=f"{projection.days_left():.1f} days to the RTO",
            expected=f"> {horizon_days:g} days",
        )
    return Finding.passed(
        f"restores are projected to stay within the RTO {rto} for {horizon_days:g} days "
        f"({describe_days(projection.days_left())} at this trend; now {format_duration(r.seconds)}, {trend})",
        expected=f"> {horizon_days:g} days to the RTO",
    )
