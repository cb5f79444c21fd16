"""Mode and ownership of the account databases and their backups (CIS 7.1.x), and of the sudo policy.

One stat probe covers every account file of this pack and of cron.py. A missing file is an
ERROR where the file must exist (/etc/passwd, /etc/group, /etc/shadow) and a PASS,
saying so, where absence is harmless (backups, /etc/gshadow, opasswd, /etc/shells).
The sudoers files have their own probe, since their names are only known on the host.
"""

from __future__ import annotations

from typing import Literal

from itops.checkapi import Facts, Finding, Params, Severity, host_check
from itops.checklib.accounts import read_probe
from itops.checklib.common import ProbeOutputError
from itops.checklib.fileperm import SYSTEM_FILES, FileRule, evaluate_file_rule, evaluate_file_rules, stat_map
from itops.checklib.sudoers import NO_SUDOERS, SUDOERS, SUDOERS_D, SUDOERS_STATS

ACCESS = {"nist-800-53": ["AC-3", "AC-6"]}
WORLD_READABLE = FileRule(max_mode=0o644, groups=("root",))
SECRET = ("root", "shadow")


def _secret_rule(params: Params, missing: Literal["pass", "error"], note: str) -> FileRule:
    groups = tuple(str(g) for g in params["shadow_groups_allowed"])
    return FileRule(max_mode=0o640, groups=groups, missing=missing, missing_note=note)


@host_check(
    id="files.passwd_permissions",
    fix={"files": [{"path": "/etc/passwd", "mode": "0644", "owner": "root", "group": "root"}]},
    title="/etc/passwd is root-owned and writable only by root",
    severity=Severity.HIGH,
    rationale="Whoever can write /etc/passwd can add a UID 0 account or change any user's shell and home.",
    remediation="`chown root:root /etc/passwd && chmod u-x,go-wx /etc/passwd` (mode 0644).",
    frameworks={"cis-debian-12": ["7.1.1"], **ACCESS, "iso-27001": ["A.8.3"]},
    probes=[SYSTEM_FILES],
    params={},
)
def passwd_permissions(facts: Facts, params: Params) -> list[Finding]:
    """/etc/passwd: mode 0644 or stricter, owner root, group root."""
    return evaluate_file_rules(facts, SYSTEM_FILES, [("/etc/passwd", WORLD_READABLE)])


@host_check(
    id="files.passwd_backup_permissions",
    fix={"files": [{"path": "/etc/passwd-", "mode": "0644", "owner": "root", "group": "root"}]},
    title="/etc/passwd- is root-owned and writable only by root",
    severity=Severity.MEDIUM,
    rationale="The backup copy holds the same account data; a writable backup can be restored over the real file.",
    remediation="`chown root:root /etc/passwd- && chmod u-x,go-wx /etc/passwd-` (mode 0644).",
    frameworks={"cis-debian-12": ["7.1.2"], **ACCESS, "iso-27001": ["A.8.3"]},
    probes=[SYSTEM_FILES],
    params={},
)
def passwd_backup_permissions(facts: Facts, params: Params) -> list[Finding]:
    """/etc/passwd-: mode 0644 or stricter, owner root, group root (absent is fine)."""
    rule = FileRule(max_mode=0o644, groups=("root",), missing="pass", missing_note="no backup file, nothing to protect")
    return evaluate_file_rules(facts, SYSTEM_FILES, [("/etc/passwd-", rule)])


@host_check(
    id="files.group_permissions",
    fix={"files": [{"path": "/etc/group", "mode": "0644", "owner": "root", "group": "root"}]},
    title="/etc/group is root-owned and writable only by root",
    severity=Severity.HIGH,
    rationale="Whoever can write /etc/group can add themselves to sudo, wheel, docker or shadow.",
    remediation="`chown root:root /etc/group && chmod u-x,go-wx /etc/group` (mode 0644).",
    frameworks={"cis-debian-12": ["7.1.3"], **ACCESS, "iso-27001": ["A.8.3"]},
    probes=[SYSTEM_FILES],
    params={},
)
def group_permissions(facts: Facts, params: Params) -> list[Finding]:
    """/etc/group: mode 0644 or stricter, owner root, group root."""
    return evaluate_file_rules(facts, SYSTEM_FILES, [("/etc/group", WORLD_READABLE)])


@host_check(
    id="files.group_backup_permissions",
    fix={"files": [{"path": "/etc/group-", "mode": "0644", "owner": "root", "group": "root"}]},
    title="/etc/group- is root-owned and writable only by root",
    severity=Severity.MEDIUM,
    rationale="The backup copy holds the same group data; a writable backup can be restored over the real file.",
    remediation="`chown root:root /etc/group- && chmod u-x,go-wx /etc/group-` (mode 0644).",
    frameworks={"cis-debian-12": ["7.1.4"], **ACCESS, "iso-27001": ["A.8.3"]},
    probes=[SYSTEM_FILES],
    params={},
)
def group_backup_permissions(facts: Facts, params: Params) -> list[Finding]:
    """/etc/group-: mode 0644 or stricter, owner root, group root (absent is fine)."""
    rule = FileRule(max_mode=0o644, groups=("root",), missing="pass", missing_note="no backup file, nothing to protect")
    return evaluate_file_rules(facts, SYSTEM_FILES, [("/etc/group-", rule)])


@host_check(
    id="files.shadow_permissions",
    fix={"files": [{"path": "/etc/shadow", "mode": "0640", "owner": "root"}]},
    title="/etc/shadow is not accessible to other users",
    severity=Severity.CRITICAL,
    rationale="/etc/shadow holds every local password hash; read access allows offline cracking, write access "
    "allows setting any password, root's included.",
    remediation="Debian/Ubuntu: `chown root:shadow /etc/shadow && chmod 0640 /etc/shadow`; "
    "RHEL: `chown root:root /etc/shadow && chmod 0000 /etc/shadow`.",
    frameworks={"cis-debian-12": ["7.1.5"], "nist-800-53": ["AC-3", "IA-5"], "iso-27001": ["A.5.17", "A.8.3"]},
    probes=[SYSTEM_FILES],
    params={"shadow_groups_allowed": list(SECRET)},
)
def shadow_permissions(facts: Facts, params: Params) -> list[Finding]:
    """/etc/shadow: mode 0640 or stricter (0000 on RHEL passes), owner root, group in shadow_groups_allowed."""
    return evaluate_file_rules(facts, SYSTEM_FILES, [("/etc/shadow", _secret_rule(params, "error", ""))])


@host_check(
    id="files.shadow_backup_permissions",
    fix={"files": [{"path": "/etc/shadow-", "mode": "0640", "owner": "root"}]},
    title="/etc/shadow- is not accessible to other users",
    severity=Severity.HIGH,
    rationale="The backup holds the same password hashes as /etc/shadow (at most one change older).",
    remediation="Debian/Ubuntu: `chown root:shadow /etc/shadow- && chmod 0640 /etc/shadow-`; "
    "RHEL: `chown root:root /etc/shadow- && chmod 0000 /etc/shadow-`.",
    frameworks={"cis-debian-12": ["7.1.6"], "nist-800-53": ["AC-3", "IA-5"], "iso-27001": ["A.5.17", "A.8.3"]},
    probes=[SYSTEM_FILES],
    params={"shadow_groups_allowed": list(SECRET)},
)
def shadow_backup_permissions(facts: Facts, params: Params) -> list[Finding]:
    """/etc/shadow-: mode 0640 or stricter, owner root, group in shadow_groups_allowed (absent is fine)."""
    rule = _secret_rule(params, "pass", "no backup file, nothing to protect")
    return evaluate_file_rules(facts, SYSTEM_FILES, [("/etc/shadow-", rule)])


@host_check(
    id="files.gshadow_permissions",
    fix={"files": [{"path": "/etc/gshadow", "mode": "0640", "owner": "root"}]},
    title="/etc/gshadow is not accessible to other users",
    severity=Severity.HIGH,
    rationale="/etc/gshadow holds group passwords and group administrators; write access allows joining any group.",
    remediation="Debian/Ubuntu: `chown root:shadow /etc/gshadow && chmod 0640 /etc/gshadow`; "
    "RHEL: `chown root:root /etc/gshadow && chmod 0000 /etc/gshadow`.",
    frameworks={"cis-debian-12": ["7.1.7"], "nist-800-53": ["AC-3", "IA-5"], "iso-27001": ["A.5.17", "A.8.3"]},
    probes=[SYSTEM_FILES],
    params={"shadow_groups_allowed": list(SECRET)},
)
def gshadow_permissions(facts: Facts, params: Params) -> list[Finding]:
    """/etc/gshadow: mode 0640 or stricter, owner root, group in shadow_groups_allowed (absent is fine)."""
    rule = _secret_rule(params, "pass", "this system keeps no group passwords")
    return evaluate_file_rules(facts, SYSTEM_FILES, [("/etc/gshadow", rule)])


@host_check(
    id="files.gshadow_backup_permissions",
    fix={"files": [{"path": "/etc/gshadow-", "mode": "0640", "owner": "root"}]},
    title="/etc/gshadow- is not accessible to other users",
    severity=Severity.MEDIUM,
    rationale="The backup holds the same group passwords as /etc/gshadow.",
    remediation="Debian/Ubuntu: `chown root:shadow /etc/gshadow- && chmod 0640 /etc/gshadow-`; "
    "RHEL: `chown root:root /etc/gshadow- && chmod 0000 /etc/gshadow-`.",
    frameworks={"cis-debian-12": ["7.1.8"], "nist-800-53": ["AC-3", "IA-5"], "iso-27001": ["A.5.17", "A.8.3"]},
    probes=[SYSTEM_FILES],
    params={"shadow_groups_allowed": list(SECRET)},
)
def gshadow_backup_permissions(facts: Facts, params: Params) -> list[Finding]:
    """/etc/gshadow-: mode 0640 or stricter, owner root, group in shadow_groups_allowed (absent is fine)."""
    rule = _secret_rule(params, "pass", "no backup file, nothing to protect")
    return evaluate_file_rules(facts, SYSTEM_FILES, [("/etc/gshadow-", rule)])


@host_check(
    id="files.shells_permissions",
    fix={"files": [{"path": "/etc/shells", "mode": "0644", "owner": "root", "group": "root"}]},
    title="/etc/shells is root-owned and writable only by root",
    severity=Severity.LOW,
    rationale="/etc/shells decides which shells chsh accepts and which accounts FTP and pam_shells let in; "
    "a writable list lets users register arbitrary programs as shells.",
    remediation="`chown root:root /etc/shells && chmod u-x,go-wx /etc/shells` (mode 0644).",
    frameworks={"cis-debian-12": ["7.1.9"], **ACCESS, "iso-27001": ["A.8.3"]},
    probes=[SYSTEM_FILES],
    params={},
)
def shells_permissions(facts: Facts, params: Params) -> list[Finding]:
    """/etc/shells: mode 0644 or stricter, owner root, group root (absent is fine)."""
    rule = FileRule(max_mode=0o644, groups=("root",), missing="pass", missing_note="no shell list to protect")
    return evaluate_file_rules(facts, SYSTEM_FILES, [("/etc/shells", rule)])


@host_check(
    id="files.opasswd_permissions",
    fix={"files": [{"path": "/etc/security/opasswd", "mode": "0600", "owner": "root", "group": "root"}]},
    title="/etc/security/opasswd is readable only by root",
    severity=Severity.MEDIUM,
    rationale="opasswd keeps users' previous password hashes (pam_pwhistory/pam_unix remember=); they often "
    "differ from the current password only slightly.",
    remediation="`chown root:root /etc/security/opasswd && chmod 0600 /etc/security/opasswd`.",
    frameworks={"cis-debian-12": ["7.1.10"], "nist-800-53": ["AC-3", "IA-5"], "iso-27001": ["A.5.17", "A.8.3"]},
    probes=[SYSTEM_FILES],
    params={},
)
def opasswd_permissions(facts: Facts, params: Params) -> list[Finding]:
    """/etc/security/opasswd: mode 0600 or stricter, owner root, group root (absent is fine)."""
    rule = FileRule(
        max_mode=0o600,
        groups=("root",),
        missing="pass",
        missing_note="password history is not kept, nothing to protect",
        group_ok_without_access=True,
    )
    return evaluate_file_rules(facts, SYSTEM_FILES, [("/etc/security/opasswd", rule)])


SUDOERS_FILE = FileRule(max_mode=0o440, groups=("root",))
SUDOERS_DIR = FileRule(max_mode=0o755, groups=(), missing="pass", missing_note="no drop-in directory", kind="directory")


@host_check(
    id="files.sudoers_permissions",
    fix={"files": [{"path": "{resource}", "mode": "0440", "owner": "root", "group": "root"}]},
    title="/etc/sudoers and the files in /etc/sudoers.d are owned by root:root with mode 0440 or stricter",
    severity=Severity.HIGH,
    rationale="Whoever can write a sudoers file can grant themselves root; a group- or world-readable one "
    "shows every user which accounts and commands lead to root. sudo itself only refuses world-writable "
    "files, so a loose mode goes unnoticed.",
    remediation="`chown root:root /etc/sudoers /etc/sudoers.d/* && chmod 0440 /etc/sudoers /etc/sudoers.d/*` "
    "(for each file listed); `chown root:root /etc/sudoers.d && chmod 0750 /etc/sudoers.d`; then `visudo -c`.",
    frameworks={"nist-800-53": ["AC-3", "AC-6", "CM-6"], "iso-27001": ["A.8.2", "A.8.3"]},
    probes=[SUDOERS_STATS],
    params={},
)
def sudoers_permissions(facts: Facts, params: Params) -> list[Finding]:
    """/etc/sudoers and every entry of /etc/sudoers.d: owner root, group root, mode 0440 or stricter;
    /etc/sudoers.d itself: a root-owned directory writable only by root. PASS when sudo is not installed.

    Subdirectories of /etc/sudoers.d are not judged (sudo does not read them).
    """
    res = read_probe(facts, SUDOERS_STATS, "stat of the sudoers files")
    if isinstance(res, Finding):
        return [res]
    if res.text.strip() == NO_SUDOERS:
        return [Finding.passed("sudo is not installed (no /etc/sudoers): not applicable", observed="no /etc/sudoers")]
    try:
        stats = stat_map(facts, SUDOERS_STATS)
    except ProbeOutputError as exc:
        return [Finding.error(f"could not assess: {exc}")]
    rules = [(SUDOERS, SUDOERS_FILE), (SUDOERS_D, SUDOERS_DIR)]
    for path, st in sorted(stats.items()):
        if not path.startswith(SUDOERS_D + "/"):
            continue
        if st.state == "missing" or (st.state == "ok" and st.kind.startswith("directory")):
            continue  # the unexpanded glob of an empty directory; a subdirectory sudo never reads
        rules.append((path, SUDOERS_FILE))
    return [evaluate_file_rule(facts, SUDOERS_STATS, path, rule, stats=stats) for path, rule in rules]
