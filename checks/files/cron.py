"""cron's configuration files and directories are root's alone (CIS 2.4.1.x)."""

from __future__ import annotations

from itops.checkapi import Facts, Finding, Params, Severity, host_check
from itops.checklib.fileperm import SYSTEM_FILES, FileRule, evaluate_file_rules, parse_max_mode

CRON_DIRS = ("/etc/cron.hourly", "/etc/cron.daily", "/etc/cron.weekly", "/etc/cron.monthly", "/etc/cron.d")


@host_check(
    id="files.crontab_permissions",
    fix={"files": [{"path": "/etc/crontab", "mode": "{crontab_max_mode}", "owner": "root", "group": "root"}]},
    title="/etc/crontab is accessible only to root",
    severity=Severity.MEDIUM,
    rationale="/etc/crontab runs commands as root (or any user); write access is root access, and read access "
    "shows attackers which root jobs to tamper with.",
    remediation="`chown root:root /etc/crontab && chmod og-rwx /etc/crontab` (mode 0600).",
    frameworks={"cis-debian-12": ["2.4.1.2"], "nist-800-53": ["AC-3", "CM-6"], "iso-27001": ["A.8.3", "A.8.9"]},
    probes=[SYSTEM_FILES],
    params={"crontab_max_mode": "0600"},
)
def crontab_permissions(facts: Facts, params: Params) -> list[Finding]:
    """/etc/crontab: mode crontab_max_mode (0600) or stricter, owner and group root (absent: cron not installed)."""
    rule = FileRule(
        max_mode=parse_max_mode(params["crontab_max_mode"], "crontab_max_mode"),
        groups=("root",),
        missing="pass",
        missing_note="no system crontab, cron is probably not installed",
        group_ok_without_access=True,
    )
    return evaluate_file_rules(facts, SYSTEM_FILES, [("/etc/crontab", rule)])


@host_check(
    id="files.cron_dirs_permissions",
    fix={"files": [{"path": "{resource}", "mode": "{cron_dir_max_mode}", "owner": "root", "group": "root"}]},
    title="cron job directories are accessible only to root",
    severity=Severity.MEDIUM,
    rationale="Scripts in /etc/cron.{hourly,daily,weekly,monthly} and /etc/cron.d run as root; a writable "
    "directory lets a user add a root job, a readable one reveals what runs as root.",
    remediation="For each directory listed: `chown root:root DIR && chmod og-rwx DIR` (mode 0700).",
    frameworks={
        "cis-debian-12": ["2.4.1.3", "2.4.1.4", "2.4.1.5", "2.4.1.6", "2.4.1.7"],
        "nist-800-53": ["AC-3", "CM-6"],
        "iso-27001": ["A.8.3", "A.8.9"],
    },
    probes=[SYSTEM_FILES],
    params={"cron_dir_max_mode": "0700"},
)
def cron_dirs_permissions(facts: Facts, params: Params) -> list[Finding]:
    """/etc/cron.hourly, .daily, .weekly, .monthly, /etc/cron.d: directories, mode 0700 or stricter, root:root."""
    rule = FileRule(
        max_mode=parse_max_mode(params["cron_dir_max_mode"], "cron_dir_max_mode"),
        groups=("root",),
        missing="pass",
        missing_note="nothing to protect",
        kind="directory",
        group_ok_without_access=True,
    )
    return evaluate_file_rules(facts, SYSTEM_FILES, [(d, rule) for d in CRON_DIRS])
