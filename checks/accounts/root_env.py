"""Root's command search path and users' home directories."""

from __future__ import annotations

from itops.checkapi import Facts, Finding, Params, Severity, host_check
from itops.checklib.accounts import (
    HOME_DIR_STATS,
    LOGIN_DEFS,
    PASSWD,
    ROOT_PATH,
    load_login_defs,
    load_passwd,
    parse_root_path,
    read_probe,
    uid_min,
)
from itops.checklib.common import ProbeOutputError, format_mode, is_login_shell, mode_excess
from itops.checklib.fileperm import FileStat, parse_max_mode, parse_stat_output, stat_map


def _path_entry_problem(entry: str, st: FileStat | None, allow_missing: bool) -> tuple[str, bool]:
    """(problem, is_error) for one PATH entry; ("", False) when it is fine."""
    if entry == "":
        return "empty PATH entry (means the current directory)", False
    if not entry.startswith("/"):
        return f"relative PATH entry {entry!r} (resolved against the current directory)", False
    if st is None:
        return f"the probe did not report {entry}", True
    if st.state == "error":
        return f"stat {entry} failed", True
    if st.state == "missing":
        return (
            ("", False)
            if allow_missing
            else (f"{entry} does not exist (whoever can create it can plant commands root will run)", False)
        )
    problems = []
    if not st.kind.startswith("directory"):
        problems.append(f"is a {st.kind}, not a directory")
    if st.uid != 0:
        problems.append(f"owned by {st.user or st.uid}, not root")
    writers = [who for who, bit in (("group", 0o020), ("others", 0o002)) if st.mode & bit]
    if writers:
        problems.append(f"writable by {' and '.join(writers)} (mode {format_mode(st.mode)})")
    return (f"{entry} " + "; ".join(problems), False) if problems else ("", False)


@host_check(
    id="accounts.root_path_sane",
    title="Root's PATH contains only root-owned, non-writable absolute directories",
    severity=Severity.HIGH,
    rationale="Root runs commands found through PATH; an empty or relative entry, or a directory another user "
    "can write, lets that user plant a program (e.g. a fake `ls`) that root will run.",
    remediation="Fix PATH in /etc/profile, /etc/environment and root's ~/.profile, ~/.bashrc, ~/.bash_profile "
    "(no empty entries, no `.`, no trailing `:`), and for each listed directory `chown root:root DIR && "
    "chmod go-w DIR`.",
    frameworks={"cis-debian-12": ["5.4.2.5"], "nist-800-53": ["CM-6", "AC-6"], "iso-27001": ["A.8.2", "A.8.9"]},
    probes=[ROOT_PATH],
    params={"root_path_allow_missing": False},
)
def root_path_sane(facts: Facts, params: Params) -> list[Finding]:
    """Every entry of root's login PATH is absolute, exists, is a root-owned directory without group/other write.

    The PATH is the one root's login shell builds (/etc/profile, root's profile files)
    with a clean environment, as `sudo -i` would; PATH changes made by PAM
    (/etc/environment via pam_env) or only in interactive rc files are not seen.
    Root's profile scripts run on the host to get it. Needs root (or sudo).
    """
    res = read_probe(facts, ROOT_PATH, "root PATH")
    if isinstance(res, Finding):
        return [res]
    try:
        rp, stat_text = parse_root_path(res.text)
        stats = parse_stat_output(stat_text)
    except ProbeOutputError as exc:
        return [Finding.error(f"could not assess: {exc}")]
    allow_missing = bool(params["root_path_allow_missing"])
    findings: list[Finding] = []
    for entry in dict.fromkeys(rp.entries):  # each distinct entry once, in order
        problem, is_error = _path_entry_problem(entry, stats.get(entry), allow_missing)
        if not problem:
            continue
        resource = entry or "(empty)"
        if is_error:
            findings.append(Finding.error(f"could not assess: {problem}", resource=resource))
        else:
            findings.append(
                Finding.failed(
                    f"root PATH: {problem}",
                    observed=rp.path,
                    expected="absolute root-owned directories, not group/world-writable",
                    resource=resource,
                )
            )
    if not findings:
        findings.append(Finding.passed(f"root PATH ({rp.shell} -l) is {rp.path}", observed=rp.path))
    return findings


@host_check(
    id="accounts.home_directories_permissions",
    title="Interactive users' home directories exist, are theirs and are not open to others",
    severity=Severity.MEDIUM,
    rationale="A home directory writable or readable by others exposes SSH keys, shell startup files and "
    "credentials; one owned by someone else lets that person plant startup scripts.",
    remediation="For each listed user: `chown USER HOME && chmod {home_dir_max_mode} HOME` (or create it with "
    "`mkhomedir_helper USER`).",
    frameworks={"cis-debian-12": ["7.2.9"], "nist-800-53": ["AC-3", "AC-6"], "iso-27001": ["A.8.3"]},
    probes=[PASSWD, LOGIN_DEFS, HOME_DIR_STATS],
    params={"home_dir_max_mode": "0750", "home_dir_users_excluded": []},
)
def home_directories_permissions(facts: Facts, params: Params) -> list[Finding]:
    """Users with a login shell and UID >= UID_MIN (plus root): home exists, owned by them, mode <= 0750."""
    max_mode = parse_max_mode(params["home_dir_max_mode"], "home_dir_max_mode")
    users = load_passwd(facts)
    if isinstance(users, Finding):
        return [users]
    defs = load_login_defs(facts)
    if isinstance(defs, Finding):
        return [defs]
    res = read_probe(facts, HOME_DIR_STATS, "stat of home directories")
    if isinstance(res, Finding):
        return [res]
    try:
        limit = uid_min(defs)
        stats = stat_map(facts, HOME_DIR_STATS)
    except (ValueError, ProbeOutputError) as exc:
        return [Finding.error(f"could not assess: {exc}")]
    excluded = set(params["home_dir_users_excluded"])
    expected = f"directory owned by the user, mode {format_mode(max_mode)} or stricter"
    findings: list[Finding] = []
    interactive = [
        u
        for u in users
        if is_login_shell(u.shell) and u.name not in excluded and (u.uid == 0 or (u.uid >= limit and u.uid != 65534))
    ]
    for u in interactive:
        st = stats.get(u.home)
        if st is None or st.state == "error":
            findings.append(Finding.error(f"could not assess: no stat of {u.home} ({u.name})", resource=u.name))
            continue
        if st.state == "missing":
            findings.append(
                Finding.failed(
                    f"{u.name}: home directory {u.home} does not exist",
                    observed="absent",
                    expected=expected,
                    resource=u.name,
                )
            )
            continue
        problems = []
        if not st.kind.startswith("directory"):
            problems.append(f"is a {st.kind}")
        if st.uid != u.uid:
            problems.append(f"owned by {st.user or st.uid}")
        excess = mode_excess(st.mode, max_mode)
        if excess:
            problems.append(f"mode {format_mode(st.mode)} allows {format_mode(excess)} beyond {format_mode(max_mode)}")
        observed = st.describe()
        if problems:
            findings.append(
                Finding.failed(
                    f"{u.name}: {u.home} " + "; ".join(problems), observed=observed, expected=expected, resource=u.name
                )
            )
        else:
            findings.append(
                Finding.passed(
                    f"{u.name}: {u.home} is {observed}", observed=observed, expected=expected, resource=u.name
                )
            )
    if not findings:
        findings.append(
            Finding.passed(
                f"no interactive user accounts (login shell, UID >= {limit}) besides excluded ones", expected=expected
            )
        )
    return findings
