"""Users' dot files: the files in a home that other people or other hosts can use to act as its user.

A group- or world-writable ~/.profile or ~/.bashrc runs whatever its writer adds the next
time the user logs in; ~/.rhosts and ~/.shosts let other hosts in without a password
(rsh, or sshd with IgnoreRhosts off); ~/.forward hands the user's mail, or a command run as
the user, to whatever it names; ~/.netrc holds passwords in clear text.
"""

from __future__ import annotations

from itops.checkapi import Facts, Finding, Params, Severity, host_check
from itops.checklib.accounts import (
    FORBIDDEN_DOT_FILES,
    HOME_DOT_FILE_STATS,
    NETRC,
    PASSWD,
    home_prefix,
    load_passwd,
    read_stats,
)
from itops.checklib.common import format_mode, is_login_shell
from itops.checklib.fileperm import FileStat

EXPECTED = (
    f"no {', '.join(FORBIDDEN_DOT_FILES)}; {NETRC} mode 0600 or stricter; dot files owned by the user "
    "or root and not writable by group or others"
)


def _problems(name: str, st: FileStat, uid: int) -> list[str]:
    problems: list[str] = []
    if name in FORBIDDEN_DOT_FILES:
        problems.append("must not exist")
    if name == NETRC and st.mode & 0o077:
        problems.append(f"mode {format_mode(st.mode)} lets group or others read it (expected 0600 or stricter)")
    else:
        writable = [who for who, bit in (("group", 0o020), ("others", 0o002)) if st.mode & bit]
        if writable:
            problems.append(f"mode {format_mode(st.mode)} is writable by {' and '.join(writable)}")
    if st.uid not in (uid, 0):
        problems.append(f"owned by {st.user or st.uid}, not by the user or root")
    return problems


@host_check(
    id="accounts.user_dotfiles_safe",
    title="Login users' homes hold no .rhosts, .shosts or .forward, .netrc is mode 0600 or stricter, and no "
    "top-level dot file is writable by group or others or owned by another user",
    severity=Severity.HIGH,
    rationale="Whoever can write a user's ~/.profile, ~/.bashrc or similar runs commands as that user (as root, "
    "for /root) at the next login; ~/.rhosts and ~/.shosts grant password-less access from other hosts, "
    "~/.forward can pipe every mail into a command run as the user, and a readable ~/.netrc gives away the "
    "passwords stored in it.",
    remediation="For each path listed: `rm ~USER/.rhosts ~USER/.shosts ~USER/.forward` (move what a .forward "
    "did to /etc/aliases if it is still needed), `chmod 0600 ~USER/.netrc` (better: remove it and use a "
    "credential store), and for other dot files `chown USER: FILE && chmod go-w FILE`.",
    frameworks={"cis-debian-12": ["7.2.10"], "nist-800-53": ["AC-3", "AC-6", "IA-5"], "iso-27001": ["A.5.17", "A.8.3"]},
    probes=[PASSWD, HOME_DOT_FILE_STATS],
    params={},
)
def user_dotfiles_safe(facts: Facts, params: Params) -> list[Finding]:
    """For root and every account with a login shell whose absolute home exists: no regular file ~/.rhosts,
    ~/.shosts or ~/.forward; ~/.netrc, if present, without any group/other permission; every top-level dot
    file that is a regular file (symlinks followed) without group/other write and owned by the account's UID
    or root.

    A home the audit cannot list (a non-root login looking into /root) is ERROR, never "no dot files".
    File contents are never read.
    """
    users = load_passwd(facts)
    if isinstance(users, Finding):
        return [users]
    stats = read_stats(facts, HOME_DOT_FILE_STATS, "dot files in users' homes")
    if isinstance(stats, Finding):
        return [stats]
    by_home: dict[str, list[FileStat]] = {}
    for path, st in stats.items():
        parent, _, name = path.rpartition("/")
        if name.startswith(".") and st.state == "ok" and st.kind.startswith("regular"):
            by_home.setdefault(parent, []).append(st)
    findings: list[Finding] = []
    judged: set[tuple[str, int]] = set()
    homes = checked = 0
    for u in users:
        if not u.home.startswith("/") or not (is_login_shell(u.shell) or u.uid == 0):
            continue
        prefix = home_prefix(u.home)
        if (prefix, u.uid) in judged:
            continue  # another account with the same UID and home (root and toor)
        judged.add((prefix, u.uid))
        home = prefix or "/"
        home_stat = stats.get(home)
        if home_stat is None or home_stat.state == "error":
            findings.append(
                Finding.error(
                    f"could not assess: {u.name}'s home {home} could not be listed (run as root or enable sudo)",
                    resource=home,
                )
            )
            continue
        if home_stat.state == "missing" or not home_stat.kind.startswith("directory"):
            continue  # no home directory: no dot files to judge
        homes += 1
        for f in sorted(by_home.get(prefix, []), key=lambda s: s.path):
            checked += 1
            problems = _problems(f.path.rpartition("/")[2], f, u.uid)
            if problems:
                findings.append(
                    Finding.failed(
                        f"{u.name}: {f.path} " + "; ".join(problems),
                        observed=f.describe(),
                        expected=EXPECTED,
                        resource=f.path,
                    )
                )
    if not findings:
        findings.append(
            Finding.passed(f"{checked} dot files checked in {homes} login users' homes; {EXPECTED}", expected=EXPECTED)
        )
    return findings
