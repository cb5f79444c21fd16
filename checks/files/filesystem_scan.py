"""Filesystem scans: world-writable files, sticky bits, unowned files, SUID/SGID programs (CIS 7.1.11-7.1.13).

Each scan is one bounded ``find`` over the search paths in its params, staying on the
filesystem of each path (-xdev: other mounts such as /proc, NFS or container overlays
under it are not entered), skipping the excluded paths. A scan that hit permission or
I/O errors, timed out or was cut is ERROR, never PASS: run as root or with sudo.
Files vanishing during the scan (normal under /var) are tolerated.
"""

from __future__ import annotations

import fnmatch
from collections.abc import Callable, Sequence

from itops.checkapi import Facts, Finding, Params, Probe, Severity, host_check
from itops.checklib.common import ProbeOutputError, probe_error
from itops.checklib.fileperm import find_command, parse_find_output

SYSTEM_PATHS = [
    "/bin",
    "/boot",
    "/etc",
    "/home",
    "/lib",
    "/lib32",
    "/lib64",
    "/libx32",
    "/opt",
    "/root",
    "/sbin",
    "/srv",
    "/usr",
    "/var",
]
# paths on the audited host, not temporary files of ours
TMP = "/tmp"  # noqa: S108
VAR_TMP = "/var/tmp"  # noqa: S108
CONTAINER_STORAGE = ["/var/lib/docker", "/var/lib/containers", "/var/lib/containerd", "/var/lib/lxc"]
SCAN_TIMEOUT = 600.0
MAX_FINDINGS = 50

#: SUID/SGID programs shipped by Debian/Ubuntu and RHEL-family base installs (after /bin, /sbin, /lib → /usr).
STANDARD_SETID = [
    "/usr/bin/at",
    "/usr/bin/bsd-write",
    "/usr/bin/chage",
    "/usr/bin/chfn",
    "/usr/bin/chsh",
    "/usr/bin/crontab",
    "/usr/bin/dotlockfile",
    "/usr/bin/expiry",
    "/usr/bin/fusermount",
    "/usr/bin/fusermount3",
    "/usr/bin/gpasswd",
    "/usr/bin/ksu",
    "/usr/bin/locate",
    "/usr/bin/mail-lock",
    "/usr/bin/mail-touchlock",
    "/usr/bin/mail-unlock",
    "/usr/bin/mlocate",
    "/usr/bin/mount",
    "/usr/bin/newgidmap",
    "/usr/bin/newgrp",
    "/usr/bin/newuidmap",
    "/usr/bin/ntfs-3g",
    "/usr/bin/passwd",
    "/usr/bin/pkexec",
    "/usr/bin/plocate",
    "/usr/bin/ssh-agent",
    "/usr/bin/staprun",
    "/usr/bin/su",
    "/usr/bin/sudo",
    "/usr/bin/umount",
    "/usr/bin/wall",
    "/usr/bin/write",
    "/usr/lib/dbus-1.0/dbus-daemon-launch-helper",
    "/usr/lib/eject/dmcrypt-get-device",
    "/usr/lib/openssh/ssh-keysign",
    "/usr/lib/policykit-1/polkit-agent-helper-1",
    "/usr/lib/polkit-1/polkit-agent-helper-1",
    "/usr/lib/snapd/snap-confine",
    "/usr/lib/xorg/Xorg.wrap",
    "/usr/lib/*/utempter/utempter",
    "/usr/libexec/cockpit-session",
    "/usr/libexec/dbus-1/dbus-daemon-launch-helper",
    "/usr/libexec/openssh/ssh-keysign",
    "/usr/libexec/polkit-agent-helper-1",
    "/usr/libexec/polkit-1/polkit-agent-helper-1",
    "/usr/libexec/qemu-bridge-helper",
    "/usr/libexec/utempter/utempter",
    "/usr/sbin/exim4",
    "/usr/sbin/grub2-set-bootflag",
    "/usr/sbin/lockdev",
    "/usr/sbin/mount.cifs",
    "/usr/sbin/mount.nfs",
    "/usr/sbin/netreport",
    "/usr/sbin/pam_extrausers_chkpwd",
    "/usr/sbin/pam_timestamp_check",
    "/usr/sbin/postdrop",
    "/usr/sbin/postqueue",
    "/usr/sbin/pppd",
    "/usr/sbin/unix_chkpwd",
    "/usr/sbin/userhelper",
    "/usr/sbin/usernetctl",
]

_MERGED_USR = (
    ("/bin/", "/usr/bin/"),
    ("/sbin/", "/usr/sbin/"),
    ("/lib/", "/usr/lib/"),
    ("/lib64/", "/usr/lib64/"),
    ("/lib32/", "/usr/lib32/"),
    ("/libx32/", "/usr/libx32/"),
)


def _usr_path(path: str) -> str:
    for old, new in _MERGED_USR:
        if path.startswith(old):
            return new + path[len(old) :]
    return path


def _scan_probe(name: str, paths_param: str, exclude_param: str, expression: str) -> Probe:
    def command(params: Params) -> str:
        return find_command([str(p) for p in params[paths_param]], expression, [str(p) for p in params[exclude_param]])

    return Probe(name, command, timeout=SCAN_TIMEOUT)


def _scan_findings(
    facts: Facts,
    probe: Probe,
    what: str,
    keep: Callable[[str], bool],
    expected: str,
    ok_message: str,
) -> list[Finding]:
    """One FAIL per offending path (at most MAX_FINDINGS, then a summary), or one PASS for a clean, complete scan."""
    result = facts.get(probe.name)
    if result is None or result.rc is None or result.timed_out or result.command_missing or result.rc != 0:
        return [probe_error(result, f"scan for {what}")]
    try:
        out = parse_find_output(result.text, result.err_text)
    except ProbeOutputError as exc:
        return [Finding.error(f"could not assess: {exc}", observed=str(exc))]
    offenders = sorted({p for p in out.paths if keep(p)})
    if out.truncated:
        # unseen matches may be offenders too: report what was seen and say the list is incomplete
        offenders = offenders or ["(not listed)"]
    if not offenders:
        return [Finding.passed(ok_message, expected=expected)]
    findings = [
        Finding.failed(f"{what}: {p}", observed=p, expected=expected, resource=p) for p in offenders[:MAX_FINDINGS]
    ]
    more = len(offenders) - MAX_FINDINGS + (out.total - len(out.paths))
    if more > 0:
        findings.append(
            Finding.failed(
                f"{what}: {more} more not listed ({out.total} matches in all)",
                observed=f"{out.total} matches",
                expected=expected,
                resource="(more)",
            )
        )
    return findings


WW_FILES = _scan_probe(
    "find_world_writable_files", "world_writable_search_paths", "world_writable_exclude_paths", "-type f -perm -0002"
)


@host_check(
    id="files.world_writable_files_absent",
    fix={"sh": "itops_mode {resource} -0002 || return 1"},
    title="No world-writable files in system directories",
    severity=Severity.MEDIUM,
    rationale="A world-writable file can be changed by every local user and service: scripts, configuration "
    "and binaries among them become a path to other users' or root's privileges.",
    remediation="Remove write access for others: `chmod o-w FILE` for each file listed (or waive the path).",
    frameworks={"cis-debian-12": ["7.1.11"], "nist-800-53": ["AC-3", "AC-6"], "iso-27001": ["A.8.3"]},
    probes=[WW_FILES],
    params={
        "world_writable_search_paths": list(SYSTEM_PATHS),
        "world_writable_exclude_paths": [VAR_TMP, "/var/crash", *CONTAINER_STORAGE],
    },
)
def world_writable_files_absent(facts: Facts, params: Params) -> list[Finding]:
    """find -xdev -type f -perm -0002 over world_writable_search_paths finds nothing."""
    return _scan_findings(
        facts,
        WW_FILES,
        "world-writable file",
        lambda p: True,
        "no o+w regular files",
        "no world-writable file in " + ", ".join(params["world_writable_search_paths"]),
    )


WW_DIRS = _scan_probe(
    "find_world_writable_dirs_without_sticky",
    "world_writable_dir_search_paths",
    "world_writable_exclude_paths",
    "-type d -perm -0002 ! -perm -1000",
)


@host_check(
    id="files.world_writable_dirs_sticky",
    fix={"sh": "itops_mode {resource} +1000 || return 1"},
    title="World-writable directories have the sticky bit",
    severity=Severity.MEDIUM,
    rationale="In a world-writable directory without the sticky bit any user can delete or replace other users' "
    "files, including temporary files root is about to use.",
    remediation="`chmod a+t DIR` for each directory listed (or `chmod o-w DIR` if it need not be shared).",
    frameworks={"cis-debian-12": ["7.1.11"], "nist-800-53": ["AC-3", "AC-6"], "iso-27001": ["A.8.3"]},
    probes=[WW_DIRS],
    params={
        "world_writable_dir_search_paths": [*SYSTEM_PATHS, TMP],
        "world_writable_exclude_paths": [VAR_TMP, "/var/crash", *CONTAINER_STORAGE],
    },
)
def world_writable_dirs_sticky(facts: Facts, params: Params) -> list[Finding]:
    """find -xdev -type d -perm -0002 ! -perm -1000 over world_writable_dir_search_paths finds nothing."""
    return _scan_findings(
        facts,
        WW_DIRS,
        "world-writable directory without sticky bit",
        lambda p: True,
        "sticky bit on every o+w directory",
        "every world-writable directory has the sticky bit",
    )


UNOWNED = _scan_probe(
    "find_unowned_files", "unowned_search_paths", "unowned_exclude_paths", "\\( -nouser -o -nogroup \\)"
)


@host_check(
    id="files.unowned_files_absent",
    fix={"manual": "who should own each file is a decision"},
    title="No files without an existing owner or group",
    severity=Severity.MEDIUM,
    rationale="Files whose UID or GID has no account are left over from removed users or unpacked archives; "
    "the next account created with that ID silently owns them.",
    remediation="Give each file listed a valid owner and group: `chown OWNER:GROUP FILE` (or remove it).",
    frameworks={"cis-debian-12": ["7.1.12"], "nist-800-53": ["AC-3", "CM-6"], "iso-27001": ["A.8.3"]},
    probes=[UNOWNED],
    params={"unowned_search_paths": [*SYSTEM_PATHS, TMP], "unowned_exclude_paths": list(CONTAINER_STORAGE)},
)
def unowned_files_absent(facts: Facts, params: Params) -> list[Finding]:
    """find -xdev ( -nouser -o -nogroup ) over unowned_search_paths finds nothing."""
    return _scan_findings(
        facts,
        UNOWNED,
        "no owner or group",
        lambda p: True,
        "every file has a known owner and group",
        "every file has an existing owner and group",
    )


SETID = _scan_probe(
    "find_setid_files", "setid_search_paths", "setid_exclude_paths", "-type f \\( -perm -4000 -o -perm -2000 \\)"
)


def _allowed(patterns: Sequence[str]) -> Callable[[str], bool]:
    normalized = [_usr_path(p) for p in patterns]

    def is_allowed(path: str) -> bool:
        p = _usr_path(path)
        return any(fnmatch.fnmatchcase(p, pat) for pat in normalized)

    return is_allowed


@host_check(
    id="files.suid_sgid_allowlisted",
    fix={"manual": "each program needs a review: remove the bit, remove the file, or allow it"},
    title="Only known programs are SUID or SGID",
    severity=Severity.HIGH,
    rationale="SUID/SGID programs run with their owner's privileges; an unexpected one is a classic backdoor "
    "(a copied shell with the SUID bit) or an unreviewed privilege-escalation risk.",
    remediation="Review each program listed: remove the bit (`chmod u-s,g-s FILE`), remove the file, or add its "
    "path to setid_allowed after review.",
    frameworks={"cis-debian-12": ["7.1.13"], "nist-800-53": ["AC-6", "CM-7"], "iso-27001": ["A.8.2", "A.8.19"]},
    probes=[SETID],
    params={
        "setid_allowed": list(STANDARD_SETID),
        "setid_search_paths": [*SYSTEM_PATHS, TMP],
        "setid_exclude_paths": list(CONTAINER_STORAGE),
    },
)
def suid_sgid_allowlisted(facts: Facts, params: Params) -> list[Finding]:
    """Every SUID/SGID regular file found is in setid_allowed (glob patterns; /bin, /sbin, /lib count as /usr/...)."""
    is_allowed = _allowed([str(p) for p in params["setid_allowed"]])
    return _scan_findings(
        facts,
        SETID,
        "SUID/SGID program not in the allow-list",
        lambda p: not is_allowed(p),
        "only allow-listed SUID/SGID programs",
        "every SUID/SGID program is allow-listed",
    )
