"""Users' SSH key files: who can change the keys that let people log in as them.

sshd's own StrictModes refuses keys in a group/world-writable ~/.ssh or authorized_keys,
but only at login and silently; when StrictModes is off (or the file is made loose after
the fact) anyone who can write the file can add their key and log in as that user.
The files read are sshd's default AuthorizedKeysFile (.ssh/authorized_keys and
.ssh/authorized_keys2); a different AuthorizedKeysFile setting is not followed.
"""

from __future__ import annotations

from itops.checkapi import Facts, Finding, Params, Severity, host_check
from itops.checklib.accounts import (
    AUTHORIZED_KEYS_FILES,
    PASSWD,
    SSH_DIR_STATS,
    load_passwd,
    read_stats,
    ssh_dir_of,
)
from itops.checklib.common import format_mode
from itops.checklib.fileperm import FileStat


def _problems(st: FileStat, uid: int) -> list[str]:
    problems = []
    if st.uid not in (uid, 0):
        problems.append(f"owned by {st.user or st.uid}, not by the user or root")
    writable = [who for who, bit in (("group", 0o020), ("others", 0o002)) if st.mode & bit]
    if writable:
        problems.append(f"mode {format_mode(st.mode)} is writable by {' and '.join(writable)}")
    return problems


@host_check(
    id="accounts.ssh_authorized_keys_protected",
    title="Users' ~/.ssh directories and authorized_keys files are owned by the user (or root) and not "
    "writable by group or others",
    severity=Severity.HIGH,
    rationale="Whoever can write a user's ~/.ssh or authorized_keys can add a key and log in as that user "
    "(as root, for /root/.ssh) without any password; a directory or file owned by someone else is theirs "
    "to change.",
    remediation="For each path listed: `chown USER: ~USER/.ssh ~USER/.ssh/authorized_keys && chmod 0700 "
    "~USER/.ssh && chmod 0600 ~USER/.ssh/authorized_keys`, then review the keys in the file for ones "
    "nobody can account for.",
    frameworks={"nist-800-53": ["AC-3", "AC-6", "IA-5"], "iso-27001": ["A.8.3", "A.8.5"]},
    probes=[PASSWD, SSH_DIR_STATS],
    params={},
)
def ssh_authorized_keys_protected(facts: Facts, params: Params) -> list[Finding]:
    """For every account with an absolute home (root included): ~/.ssh and ~/.ssh/authorized_keys(2),
    where they exist, are owned by the account's UID or by root and have no group/other write bit.

    No ~/.ssh or no key file means nothing to protect for that account.
    """
    users = load_passwd(facts)
    if isinstance(users, Finding):
        return [users]
    stats = read_stats(facts, SSH_DIR_STATS, "stat of users' ~/.ssh")
    if isinstance(stats, Finding):
        return [stats]
    expected = "owned by the user or root, not writable by group or others"
    findings: list[Finding] = []
    judged: set[tuple[str, int]] = set()
    present = 0
    for u in users:
        if not u.home.startswith("/"):
            continue
        ssh_dir = ssh_dir_of(u.home)
        for path in (ssh_dir, *(f"{ssh_dir}/{name}" for name in AUTHORIZED_KEYS_FILES)):
            if (path, u.uid) in judged:
                continue  # another account with the same UID and home (root and toor)
            judged.add((path, u.uid))
            st = stats.get(path)
            if st is None or st.state == "error":
                findings.append(
                    Finding.error(
                        f"could not assess: no stat of {path} ({u.name}); its directory could not be read",
                        resource=path,
                    )
                )
                if path == ssh_dir:
                    break
                continue
            if st.state == "missing":
                if path == ssh_dir:
                    break  # no ~/.ssh: no key files below it
                continue
            present += 1
            problems = _problems(st, u.uid)
            if problems:
                findings.append(
                    Finding.failed(
                        f"{u.name}: {path} " + "; ".join(problems),
                        observed=st.describe(),
                        expected=expected,
                        resource=path,
                    )
                )
    if not findings:
        findings.append(
            Finding.passed(
                f"{present} ~/.ssh directories and authorized_keys files checked for "
                f"{len(users)} accounts; all {expected}",
                expected=expected,
            )
        )
    return findings
