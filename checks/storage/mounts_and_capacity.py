# ruff: noqa: S108 - /tmp, /var/tmp and /dev/shm are the paths audited here, not temp files used
"""File systems: free space and inodes (capacity and its forecast), and hardened mount options on world-writable
temp dirs.

Usage comes from ``df -PT`` / ``df -PTi`` (POSIX output, one line per file system),
mount options from /proc/mounts (what the kernel enforces now, not /etc/fstab). The usage checks record
each file system's use per run (``fs.used_pct:MOUNT``, ``fs.inodes_pct:MOUNT``); the forecast check fits
a robust line (Theil-Sen, itops.forecast) through those points and today's ``df`` and projects when it
reaches the same threshold the usage checks apply.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Sequence

from itops.checkapi import Facts, Finding, Params, Probe, Severity, host_check
from itops.checklib.storage import DfRow, df_rows, find_mount, mount_table
from itops.forecast import DAY, MIN_POINTS, Projection, describe_days, project

DF_BLOCKS = Probe("df_blocks", "df -PT")
DF_INODES = Probe("df_inodes", "df -PTi")
MOUNTS = Probe("proc_mounts", "cat /proc/mounts")

# read-only images and pseudo file systems that are full by design
DEFAULT_IGNORE_TYPES = ["squashfs", "iso9660", "udf", "devtmpfs", "fuse.snapfuse", "nsfs"]


def _usage(facts: Facts, params: Params, probe: Probe, limit_param: str, what: str) -> list[Finding]:
    r = facts.get(probe.name)
    if r is None:
        return [Finding.error(f"could not assess: the {probe.command} probe did not run")]
    # df exits 1 when one mount cannot be read (e.g. a user's FUSE mount) but still reports the others
    if r.timed_out or r.rc is None or r.rc not in (0, 1):
        return [Finding.error(f"could not assess: {r.problem()}")]
    try:
        rows = facts.parsed(probe, df_rows)  # once per host (usage and forecast read the same df)
    except ValueError as exc:
        return [Finding.error(f"could not assess: {exc}")]
    if not rows:
        return [Finding.error(f"could not assess: `{probe.command}` listed no file system")]
    limit = params[limit_param]
    if not isinstance(limit, int | float) or not 0 < limit <= 100:
        return [Finding.error(f"bad parameter {limit_param}: {limit!r} (expected 1-100)")]
    checked = [row for row in rows if _considered(row, params)]
    over = [row for row in checked if row.use_pct is not None and row.use_pct > limit]
    expected = f"<= {limit}% {what} used"
    metrics = usage_metrics(checked, what)
    if over:
        return [
            Finding.failed(
                f"{row.mount} is {row.use_pct}% full ({what}; {row.filesystem}, {row.fstype or 'type unknown'})",
                observed=f"{row.use_pct}%",
                expected=expected,
                resource=row.mount,
                # every file system's figures ride on the first finding, so the history has them all
                metrics=metrics if i == 0 else {},
            )
            for i, row in enumerate(over)
        ]
    worst = max((row for row in checked if row.use_pct is not None), key=lambda x: x.use_pct or 0, default=None)
    partial = " (df could not read some mounts)" if r.rc == 1 else ""
    if worst is None:
        return [Finding.passed(f"no file system reports {what} usage{partial}", expected=expected)]
    return [
        Finding.passed(
            f"{len(checked)} file system(s) at or below {limit}% {what}; "
            f"fullest {worst.mount} at {worst.use_pct}%{partial}",
            observed=f"max {worst.use_pct}%",
            expected=expected,
            metrics=metrics,
        )
    ]


#: Metric name prefixes the usage checks record per mount (``fs.used_pct:/var``), read by forecasts.
USED_PCT = {"space": "fs.used_pct:", "inodes": "fs.inodes_pct:"}
USED_KB = {"space": "fs.used_kb:", "inodes": "fs.used_inodes:"}
SIZE_KB = {"space": "fs.size_kb:", "inodes": "fs.size_inodes:"}


def usage_metrics(rows: Sequence[DfRow], what: str) -> dict[str, float]:
    """Each file system's use in percent (df's own formula, unrounded), used and total, by mount."""
    metrics: dict[str, float] = {}
    for row in rows:
        pct = precise_use_pct(row)
        if pct is None:
            continue
        metrics[USED_PCT[what] + row.mount] = pct
        if row.used is not None and row.total is not None:
            metrics[USED_KB[what] + row.mount] = float(row.used)
            metrics[SIZE_KB[what] + row.mount] = float(row.total)
    return metrics


def precise_use_pct(row: DfRow) -> float | None:
    """used / (used + available), as df computes Use% (reserved blocks excluded), to two decimals."""
    if row.used is not None and row.available is not None and row.used + row.available > 0:
        return round(100.0 * row.used / (row.used + row.available), 2)
    return float(row.use_pct) if row.use_pct is not None else None


def _considered(row: DfRow, params: Params) -> bool:
    if row.fstype and row.fstype in params["fs_usage_ignore_types"]:
        return False
    return not any(fnmatch.fnmatchcase(row.mount, str(p)) for p in params["fs_usage_ignore_mounts"])


_IGNORE_PARAMS = {"fs_usage_ignore_types": DEFAULT_IGNORE_TYPES, "fs_usage_ignore_mounts": []}


@host_check(
    id="storage.filesystem_usage_below_threshold",
    title="No file system is fuller than the threshold",
    severity=Severity.MEDIUM,
    rationale=(
        "A full file system stops logging and auditing, breaks package updates and databases, and is a "
        "common cause of outages; catching it early is cheap."
    ),
    remediation=(
        "Free space on the named mount (du -xh --max-depth=2 MOUNT | sort -h | tail shows the largest "
        "directories; journalctl --vacuum-size=500M and apt-get clean / dnf clean all are quick wins) or "
        "grow it (lvextend -r -L +10G VG/LV); raise fs_usage_max_pct for the host only if the usage is expected"
    ),
    frameworks={"nist-800-53": ["AU-4", "AU-5", "SC-5(2)"], "iso-27001": ["A.8.6"]},
    probes=[DF_BLOCKS],
    params={"fs_usage_max_pct": 90, **_IGNORE_PARAMS},
)
def filesystem_usage_below_threshold(facts: Facts, params: Params) -> list[Finding]:
    """Verifies every mounted file system (bar read-only images) uses at most fs_usage_max_pct of its blocks."""
    return _usage(facts, params, DF_BLOCKS, "fs_usage_max_pct", "space")


@host_check(
    id="storage.inode_usage_below_threshold",
    title="No file system has used more inodes than the threshold",
    severity=Severity.MEDIUM,
    rationale=(
        "A file system out of inodes refuses new files even with free space left, typically after "
        "millions of small files (mail queues, caches, session files) pile up."
    ),
    remediation=(
        "Find the directory holding the most files (find MOUNT -xdev -type f | cut -d/ -f2-3 | sort | uniq -c | "
        "sort -n | tail) and clean it up; raise inode_usage_max_pct for the host only if the usage is expected"
    ),
    frameworks={"nist-800-53": ["AU-4", "SC-5(2)"], "iso-27001": ["A.8.6"]},
    probes=[DF_INODES],
    params={"inode_usage_max_pct": 90, **_IGNORE_PARAMS},
)
def inode_usage_below_threshold(facts: Facts, params: Params) -> list[Finding]:
    """Verifies every mounted file system uses at most inode_usage_max_pct of its inodes.

    File systems without a fixed inode table (btrfs, vfat: df prints "-") are ignored.
    """
    return _usage(facts, params, DF_INODES, "inode_usage_max_pct", "inodes")


def _projections(
    facts: Facts, params: Params, what: str, probe_name: str, limit: float
) -> tuple[list[Projection], list[tuple[str, int]], str | None]:
    """(projections, mounts short of history with their point count, error) for one of space/inodes."""
    r = facts.get(probe_name)
    if r is None or r.timed_out or r.rc is None or r.rc not in (0, 1):
        return [], [], f"could not assess: {r.problem() if r is not None else 'df did not run'}"
    try:
        rows = [row for row in facts.parsed(probe_name, df_rows) if _considered(row, params)]
    except ValueError as exc:
        return [], [], f"could not assess: {exc}"
    projections: list[Projection] = []
    short: list[tuple[str, int]] = []
    for row in rows:
        now_pct = precise_use_pct(row)
        if now_pct is None:
            continue
        name = USED_PCT[what] + row.mount
        points = [*facts.history.get(name, ()), (facts.time, now_pct)]
        projection = project(name, points, limit, facts.time)
        if projection is None:
            short.append((row.mount, len(points)))
        else:
            projections.append(projection)
    return projections, short, None


@host_check(
    id="storage.capacity_forecast_ok",
    title="No file system is projected to fill past the threshold within the horizon",
    severity=Severity.MEDIUM,
    rationale=(
        "A threshold check warns when a disk is already nearly full; the trend over earlier audits warns "
        "while there is still time to order storage or clean up, and sizes the capacity plan."
    ),
    remediation=(
        "Grow the file system or move data before the projected date (lvextend -r, a bigger volume), or find "
        "and stop the growth (du -xh --max-depth=2 MOUNT | sort -h); `itops forecast` shows the plan per site"
    ),
    frameworks={"nist-800-53": ["AU-4", "CP-2(2)", "SC-5(2)"], "iso-27001": ["A.8.6"]},
    probes=[DF_BLOCKS, DF_INODES],
    params={
        "capacity_forecast_horizon_days": 30,
        "fs_usage_max_pct": 90,
        "inode_usage_max_pct": 90,
        **_IGNORE_PARAMS,
    },
    history=(USED_PCT["space"], USED_PCT["inodes"]),
)
def capacity_forecast_ok(facts: Facts, params: Params) -> list[Finding]:
    """Projects each file system's space and inode use (Theil-Sen over the recorded runs and today) and
    fails those that reach fs_usage_max_pct / inode_usage_max_pct within capacity_forecast_horizon_days."""
    horizon_days = params["capacity_forecast_horizon_days"]
    if not isinstance(horizon_days, int | float) or horizon_days <= 0:
        return [Finding.error(f"bad parameter capacity_forecast_horizon_days: {horizon_days!r}")]
    horizon = float(horizon_days) * DAY
    space, short, error = _projections(facts, params, "space", DF_BLOCKS.name, float(params["fs_usage_max_pct"]))
    if error:
        return [Finding.error(error)]
    inodes, _short_inodes, error = _projections(
        facts, params, "inodes", DF_INODES.name, float(params["inode_usage_max_pct"])
    )
    if error:
        return [Finding.error(error)]
    if not space and short:
        fewest = min(n for _, n in short)
        return [Finding.skipped(f"not enough history ({fewest} of {MIN_POINTS} runs) to project file system use")]
    findings = []
    for p in [*space, *inodes]:
        if p.within(horizon):
            what = "inodes" if p.name.startswith(USED_PCT["inodes"]) else "space"
            mount = p.name.split(":", 1)[1]
            findings.append(
                Finding.failed(
                    f"{mount} is projected to reach {p.limit:g}% {what} used {describe_days(p.days_left())} "
                    f"(now {p.value:.1f}%, {p.fit.per_day:+.2f} points/day; {p.fit.quality()})",
                    observed=f"{p.days_left():.1f} days to {p.limit:g}%",
                    expected=f"> {horizon_days:g} days",
                    resource=mount,
                )
            )
    if findings:
        return findings
    soonest = min((p for p in space + inodes), key=lambda p: p.days_left() or float("inf"), default=None)
    detail = ""
    if soonest is not None and soonest.crosses_at is not None:
        detail = f"; soonest {soonest.name.split(':', 1)[1]} {describe_days(soonest.days_left())}"
    pending = f"; {len(short)} file system(s) still short of history" if short else ""
    return [
        Finding.passed(
            f"{len(space)} file system(s) projected to stay under the thresholds for {horizon_days:g} days"
            f"{detail}{pending}",
            expected=f"> {horizon_days:g} days to the threshold",
        )
    ]


def _mount_options(facts: Facts, path: str, required: Sequence[str], how_separate: str) -> Finding:
    r = facts.get(MOUNTS.name)
    if r is None:
        return Finding.error("could not assess: the /proc/mounts probe did not run")
    if not r.ok:
        return Finding.error(f"could not assess: {r.problem()}")
    try:
        mount = find_mount(facts.parsed(MOUNTS, mount_table), path)  # once per host
    except ValueError as exc:
        return Finding.error(f"could not assess: {exc}")
    expected = f"separate mount with {','.join(required)}"
    if mount is None:
        return Finding.failed(
            f"{path} is not a separate mount (it lives on its parent file system), so nodev/nosuid/noexec "
            f"cannot be enforced on it; {how_separate}",
            observed="not a separate mount",
            expected=expected,
        )
    missing = [opt for opt in required if not mount.has(opt)]
    observed = f"{mount.fstype} {','.join(mount.options)}"
    if missing:
        return Finding.failed(
            f"{path} is mounted without {', '.join(missing)} ({observed})", observed=observed, expected=expected
        )
    return Finding.passed(f"{path} is a separate {mount.fstype} mount with {', '.join(required)}", observed=observed)


_HARDENED = ["nodev", "nosuid", "noexec"]


@host_check(
    id="storage.tmp_mount_options_hardened",
    title="/tmp is a separate mount with nodev, nosuid and noexec",
    severity=Severity.MEDIUM,
    rationale=(
        "/tmp is writable by every user. Mounting it separately with noexec, nosuid and nodev stops "
        "attackers from running dropped binaries, setuid programs or device files from it, and keeps a "
        "full /tmp from filling the root file system."
    ),
    remediation=(
        "Add (or fix) the /tmp line in /etc/fstab: `tmpfs /tmp tmpfs defaults,rw,nosuid,nodev,noexec,relatime,"
        "size=2G 0 0`, then run: mount -o remount,nodev,nosuid,noexec /tmp (or `mount /tmp` when /tmp was not "
        "a mount yet). With systemd's tmp.mount instead: systemctl unmask tmp.mount && systemctl enable --now tmp.mount"
    ),
    frameworks={
        "cis-debian-12": ["1.1.2.1.1", "1.1.2.1.2", "1.1.2.1.3", "1.1.2.1.4"],
        "nist-800-53": ["CM-6", "CM-7", "AC-6"],
        "iso-27001": ["A.8.9"],
    },
    probes=[MOUNTS],
    params={"tmp_mount_options_required": _HARDENED},
)
def tmp_mount_options_hardened(facts: Facts, params: Params) -> Finding:
    """Verifies /tmp is its own mount (tmpfs or partition) with the options in tmp_mount_options_required."""
    return _mount_options(
        facts,
        "/tmp",
        [str(o) for o in params["tmp_mount_options_required"]],
        "CIS requires a separate partition or a tmpfs for /tmp",
    )


@host_check(
    id="storage.dev_shm_mount_options_hardened",
    title="/dev/shm is mounted with nodev, nosuid and noexec",
    severity=Severity.MEDIUM,
    rationale=(
        "/dev/shm is a world-writable tmpfs; without noexec, nosuid and nodev it is a convenient place "
        "to stage and run attack tools in memory."
    ),
    remediation=(
        "Add (or fix) the /dev/shm line in /etc/fstab: `tmpfs /dev/shm tmpfs defaults,rw,nosuid,nodev,noexec,"
        "relatime 0 0`, then run: mount -o remount,nodev,nosuid,noexec /dev/shm"
    ),
    frameworks={
        "cis-debian-12": ["1.1.2.2.1", "1.1.2.2.2", "1.1.2.2.3", "1.1.2.2.4"],
        "nist-800-53": ["CM-6", "CM-7", "AC-6"],
        "iso-27001": ["A.8.9"],
    },
    probes=[MOUNTS],
    params={"dev_shm_mount_options_required": _HARDENED},
)
def dev_shm_mount_options_hardened(facts: Facts, params: Params) -> Finding:
    """Verifies /dev/shm is mounted with the options in dev_shm_mount_options_required."""
    return _mount_options(
        facts,
        "/dev/shm",
        [str(o) for o in params["dev_shm_mount_options_required"]],
        "mount a tmpfs on /dev/shm",
    )


@host_check(
    id="storage.var_tmp_mount_options_hardened",
    title="/var/tmp is a separate mount with nodev, nosuid and noexec",
    severity=Severity.LOW,
    rationale=(
        "/var/tmp is world-writable and survives reboots; the same nodev, nosuid and noexec protections "
        "as /tmp keep it from being used to run or persist attack tools."
    ),
    remediation=(
        "Create a separate partition or logical volume for /var/tmp and mount it from /etc/fstab with "
        "`defaults,rw,nosuid,nodev,noexec,relatime`, e.g. `/dev/vg0/var_tmp /var/tmp ext4 "
        "defaults,rw,nosuid,nodev,noexec,relatime 0 2`, then run: mount -o remount,nodev,nosuid,noexec /var/tmp"
    ),
    frameworks={
        "cis-debian-12": ["1.1.2.5.1", "1.1.2.5.2", "1.1.2.5.3", "1.1.2.5.4"],
        "nist-800-53": ["CM-6", "CM-7", "AC-6"],
        "iso-27001": ["A.8.9"],
    },
    probes=[MOUNTS],
    params={"var_tmp_mount_options_required": _HARDENED},
)
def var_tmp_mount_options_hardened(facts: Facts, params: Params) -> Finding:
    """Verifies /var/tmp is its own mount with the options in var_tmp_mount_options_required."""
    return _mount_options(
        facts,
        "/var/tmp",
        [str(o) for o in params["var_tmp_mount_options_required"]],
        "CIS requires a separate partition for /var/tmp",
    )
