"""Local account database integrity: UID 0, empty passwords, duplicates, shells of system accounts.

Reads /etc/passwd, /etc/group and (through a probe that never transmits hashes)
/etc/shadow. NSS sources such as LDAP or SSSD are not consulted.
"""

from __future__ import annotations

from itops.checkapi import Facts, Finding, Params, Severity, host_check
from itops.checklib.accounts import (
    GROUP,
    LOGIN_DEFS,
    PASSWD,
    SHADOW_STATUS,
    duplicates,
    load_group,
    load_login_defs,
    load_passwd,
    load_shadow,
    uid_min,
)
from itops.checklib.common import is_login_shell, summarize

NIST_ACCOUNTS = ["AC-2", "IA-4"]


def _per_offender(offenders: list[tuple[str, str]], ok_message: str, expected: str) -> list[Finding]:
    """One FAIL per (resource, message), or one PASS when there is none."""
    if not offenders:
        return [Finding.passed(ok_message, expected=expected)]
    return [Finding.failed(msg, observed=msg, expected=expected, resource=res) for res, msg in offenders]


@host_check(
    id="accounts.uid0_only_root",
    fix={"manual": "renumbering or deleting an account is a decision"},
    title="root is the only account with UID 0",
    severity=Severity.HIGH,
    rationale="Any account with UID 0 is root under another name: it bypasses every permission check while "
    "its logins and sudo use are not recognisable as root activity.",
    remediation="Give the account its own UID or remove it: `usermod -u NEW_UID NAME` or `userdel NAME`.",
    frameworks={"cis-debian-12": ["5.4.2.1"], "nist-800-53": ["AC-6(5)", "IA-4"], "iso-27001": ["A.8.2"]},
    probes=[PASSWD],
    params={},
)
def uid0_only_root(facts: Facts, params: Params) -> list[Finding]:
    """No account other than root has UID 0 in /etc/passwd."""
    users = load_passwd(facts)
    if isinstance(users, Finding):
        return [users]
    others = [
        (u.name, f"{u.name} has UID 0 (/etc/passwd line {u.line})") for u in users if u.uid == 0 and u.name != "root"
    ]
    return _per_offender(others, "only root has UID 0", "UID 0 for root only")


@host_check(
    id="accounts.root_only_gid0_account",
    title="root is the only account whose primary group is GID 0",
    severity=Severity.MEDIUM,
    rationale="Members of group 0 can read and sometimes write files meant for root only (root-group-owned "
    "configuration, logs, device files).",
    remediation="Give the account another primary group: `usermod -g GROUP NAME`.",
    frameworks={"cis-debian-12": ["5.4.2.2"], "nist-800-53": ["AC-6"], "iso-27001": ["A.8.2"]},
    probes=[PASSWD],
    params={"gid0_accounts_allowed": ["root", "sync", "shutdown", "halt", "operator"]},
)
def root_only_gid0_account(facts: Facts, params: Params) -> list[Finding]:
    """No account outside gid0_accounts_allowed has primary GID 0."""
    users = load_passwd(facts)
    if isinstance(users, Finding):
        return [users]
    allowed = dict.fromkeys(params["gid0_accounts_allowed"])  # as listed: the expected text is the same every run
    others = [(u.name, f"{u.name} has primary GID 0") for u in users if u.gid == 0 and u.name not in allowed]
    return _per_offender(others, "no unexpected account has primary GID 0", "GID 0 only for " + ", ".join(allowed))


@host_check(
    id="accounts.root_only_gid0_group",
    title="The root group is the only group with GID 0",
    severity=Severity.MEDIUM,
    rationale="Another group with GID 0 grants root-group access under a name that reviews do not recognise.",
    remediation="Renumber or remove the group: `groupmod -g NEW_GID NAME` or `groupdel NAME`.",
    frameworks={"cis-debian-12": ["5.4.2.3"], "nist-800-53": ["AC-6", "IA-4"], "iso-27001": ["A.8.2"]},
    probes=[GROUP],
    params={},
)
def root_only_gid0_group(facts: Facts, params: Params) -> list[Finding]:
    """Only the group named root has GID 0 in /etc/group."""
    groups = load_group(facts)
    if isinstance(groups, Finding):
        return [groups]
    others = [(g.name, f"group {g.name} has GID 0") for g in groups if g.gid == 0 and g.name != "root"]
    return _per_offender(others, "only group root has GID 0", "GID 0 for group root only")


@host_check(
    id="accounts.passwords_shadowed",
    title="All accounts keep their password hash in /etc/shadow",
    severity=Severity.HIGH,
    rationale="/etc/passwd is world-readable: a hash stored there can be cracked offline by any local user, "
    "and an empty field there means no password at all.",
    remediation="Run `pwconv` to move hashes to /etc/shadow, then lock or fix the accounts listed.",
    frameworks={"cis-debian-12": ["7.2.1"], "nist-800-53": ["IA-5(1)"], "iso-27001": ["A.5.17", "A.8.5"]},
    probes=[PASSWD],
    params={},
)
def passwords_shadowed(facts: Facts, params: Params) -> list[Finding]:
    """Every /etc/passwd password field is "x"."""
    users = load_passwd(facts)
    if isinstance(users, Finding):
        return [users]
    bad = [
        (u.name, f"{u.name} has password field {'(empty)' if not u.password else 'set'} in /etc/passwd, not x")
        for u in users
        if u.password != "x"
    ]
    return _per_offender(bad, f"all {len(users)} accounts use shadowed passwords", "x in the /etc/passwd field")


@host_check(
    id="accounts.shadow_no_empty_passwords",
    fix={"manual": "lock the account or set a password: a decision per account"},
    title="No account has an empty password",
    severity=Severity.CRITICAL,
    rationale="An account with an empty password field can be logged into (console, su, and SSH where "
    "PermitEmptyPasswords is on) without knowing any secret.",
    remediation="Lock the account (`passwd -l NAME`) or set a password (`passwd NAME`).",
    frameworks={"cis-debian-12": ["7.2.2"], "nist-800-53": ["IA-5"], "iso-27001": ["A.5.17", "A.8.5"]},
    probes=[PASSWD, SHADOW_STATUS],
    params={},
)
def shadow_no_empty_passwords(facts: Facts, params: Params) -> list[Finding]:
    """No /etc/shadow password field is empty (and no /etc/passwd field is empty either)."""
    findings: list[Finding] = []
    users = load_passwd(facts)
    if isinstance(users, Finding):
        findings.append(users)
        users = []
    shadow = load_shadow(facts)
    if isinstance(shadow, Finding):
        return [*findings, shadow]
    empty = [(s.name, f"{s.name} has an empty password in /etc/shadow") for s in shadow if s.state == "empty"]
    empty += [(u.name, f"{u.name} has an empty password field in /etc/passwd") for u in users if u.password == ""]
    return findings + _per_offender(
        empty, f"no empty password among {len(shadow)} accounts", "a hash or a lock (! or *) in every password field"
    )


def _dup_check(keys: list[tuple[str, str]], what: str, ok: str) -> list[Finding]:
    dups = duplicates(keys)
    offenders = [(key, f"{what} {key} is used by {summarize(names)}") for key, names in dups.items()]
    return _per_offender(offenders, ok, f"each {what} used once")


@host_check(
    id="accounts.no_duplicate_uids",
    title="No two accounts share a UID",
    severity=Severity.MEDIUM,
    rationale="Accounts sharing a UID are the same user to the kernel: files, processes and audit records "
    "cannot be attributed to one person.",
    remediation="Give each account a unique UID (`usermod -u NEW_UID NAME`) and fix file ownership "
    "(`find / -xdev -uid OLD_UID -exec chown NAME {} +`).",
    frameworks={"cis-debian-12": ["7.2.5"], "nist-800-53": NIST_ACCOUNTS, "iso-27001": ["A.5.16"]},
    probes=[PASSWD],
    params={},
)
def no_duplicate_uids(facts: Facts, params: Params) -> list[Finding]:
    """Every UID in /etc/passwd belongs to one account."""
    users = load_passwd(facts)
    if isinstance(users, Finding):
        return [users]
    return _dup_check([(str(u.uid), u.name) for u in users], "UID", f"all {len(users)} UIDs are unique")


@host_check(
    id="accounts.no_duplicate_gids",
    title="No two groups share a GID",
    severity=Severity.MEDIUM,
    rationale="Groups sharing a GID grant each other's file access silently.",
    remediation="Give each group a unique GID (`groupmod -g NEW_GID NAME`) and fix group ownership of its files.",
    frameworks={"cis-debian-12": ["7.2.6"], "nist-800-53": NIST_ACCOUNTS, "iso-27001": ["A.5.16"]},
    probes=[GROUP],
    params={},
)
def no_duplicate_gids(facts: Facts, params: Params) -> list[Finding]:
    """Every GID in /etc/group belongs to one group."""
    groups = load_group(facts)
    if isinstance(groups, Finding):
        return [groups]
    return _dup_check([(str(g.gid), g.name) for g in groups], "GID", f"all {len(groups)} GIDs are unique")


@host_check(
    id="accounts.no_duplicate_usernames",
    title="No user name appears twice",
    severity=Severity.MEDIUM,
    rationale="With duplicate names only the first entry is used for logins while the second may own files "
    "or hold a different UID, confusing access reviews.",
    remediation="Rename or remove the duplicate entry: `usermod -l NEW_NAME NAME` (edit with `vipw` if needed).",
    frameworks={"cis-debian-12": ["7.2.7"], "nist-800-53": NIST_ACCOUNTS, "iso-27001": ["A.5.16"]},
    probes=[PASSWD],
    params={},
)
def no_duplicate_usernames(facts: Facts, params: Params) -> list[Finding]:
    """Every name in /etc/passwd appears once."""
    users = load_passwd(facts)
    if isinstance(users, Finding):
        return [users]
    return _dup_check(
        [(u.name, f"line {u.line}") for u in users], "user name", f"all {len(users)} user names are unique"
    )


@host_check(
    id="accounts.no_duplicate_groupnames",
    title="No group name appears twice",
    severity=Severity.MEDIUM,
    rationale="With duplicate group names, membership and file access depend on which entry a tool reads.",
    remediation="Rename or remove the duplicate entry: `groupmod -n NEW_NAME NAME` (edit with `vigr` if needed).",
    frameworks={"cis-debian-12": ["7.2.8"], "nist-800-53": NIST_ACCOUNTS, "iso-27001": ["A.5.16"]},
    probes=[GROUP],
    params={},
)
def no_duplicate_groupnames(facts: Facts, params: Params) -> list[Finding]:
    """Every name in /etc/group appears once."""
    groups = load_group(facts)
    if isinstance(groups, Finding):
        return [groups]
    return _dup_check(
        [(g.name, f"line {g.line}") for g in groups], "group name", f"all {len(groups)} group names are unique"
    )


@host_check(
    id="accounts.passwd_groups_exist",
    title="Every account's primary group exists",
    severity=Severity.LOW,
    rationale="A primary GID with no group entry is a dangling reference: whoever later creates a group with "
    "that GID silently gains access to the account's files.",
    remediation="Create the missing group (`groupadd -g GID NAME`) or change the account's group (`usermod -g`).",
    frameworks={"cis-debian-12": ["7.2.3"], "nist-800-53": ["AC-2", "CM-6"], "iso-27001": ["A.5.16"]},
    probes=[PASSWD, GROUP],
    params={},
)
def passwd_groups_exist(facts: Facts, params: Params) -> list[Finding]:
    """Every GID in /etc/passwd has an /etc/group entry."""
    users, groups = load_passwd(facts), load_group(facts)
    errors = [x for x in (users, groups) if isinstance(x, Finding)]
    if errors or isinstance(users, Finding) or isinstance(groups, Finding):
        return errors
    gids = {g.gid for g in groups}
    bad = [
        (u.name, f"{u.name} has primary GID {u.gid}, which is not in /etc/group") for u in users if u.gid not in gids
    ]
    return _per_offender(bad, "every primary GID exists in /etc/group", "primary GIDs defined in /etc/group")


@host_check(
    id="accounts.shadow_group_empty",
    title="The shadow group has no members",
    severity=Severity.MEDIUM,
    rationale="Members of the shadow group can read /etc/shadow and crack every local password hash offline.",
    remediation="Remove members: `gpasswd -M '' shadow`, and give affected accounts another primary group "
    "(`usermod -g GROUP NAME`).",
    frameworks={"cis-debian-12": ["7.2.4"], "nist-800-53": ["AC-6", "IA-5"], "iso-27001": ["A.5.17", "A.8.2"]},
    probes=[PASSWD, GROUP],
    params={},
)
def shadow_group_empty(facts: Facts, params: Params) -> list[Finding]:
    """Group shadow lists no members and is nobody's primary group (PASS when there is no shadow group)."""
    users, groups = load_passwd(facts), load_group(facts)
    errors = [x for x in (users, groups) if isinstance(x, Finding)]
    if errors or isinstance(users, Finding) or isinstance(groups, Finding):
        return errors
    shadow = [g for g in groups if g.name == "shadow"]
    if not shadow:
        return [Finding.passed("there is no shadow group (RHEL-style systems protect /etc/shadow with mode 0000)")]
    bad = [(m, f"{m} is a member of group shadow") for g in shadow for m in g.members]
    bad += [(u.name, f"{u.name} has shadow as primary group") for u in users if u.gid in {g.gid for g in shadow}]
    return _per_offender(bad, "group shadow has no members", "no members in group shadow")


@host_check(
    id="accounts.system_accounts_no_login_shell",
    title="System accounts cannot log in interactively",
    severity=Severity.MEDIUM,
    rationale="Service accounts (UID below UID_MIN) are not meant for people; a login shell on them turns "
    "a weak or default credential into an interactive foothold.",
    remediation="Set a no-login shell: `usermod -s /usr/sbin/nologin NAME` (`/sbin/nologin` on RHEL).",
    frameworks={
        "cis-debian-12": ["5.4.2.7"],
        "nist-800-53": ["AC-2", "AC-6", "CM-6"],
        "iso-27001": ["A.5.18", "A.8.2"],
    },
    probes=[PASSWD, LOGIN_DEFS],
    params={"system_accounts_login_shell_allowed": ["root", "sync", "shutdown", "halt", "nfsnobody"]},
)
def system_accounts_no_login_shell(facts: Facts, params: Params) -> list[Finding]:
    """Accounts with UID < UID_MIN (login.defs, default 1000) or UID 65534 have nologin/false as shell.

    Accounts in system_accounts_login_shell_allowed are exempt (root, and sync/shutdown/halt whose
    "shells" are /bin/sync etc.). An empty shell field counts as /bin/sh.
    """
    users = load_passwd(facts)
    if isinstance(users, Finding):
        return [users]
    defs = load_login_defs(facts)
    if isinstance(defs, Finding):
        return [defs]
    try:
        limit = uid_min(defs)
    except ValueError as exc:
        return [Finding.error(f"could not assess: /etc/login.defs {exc}")]
    allowed = set(params["system_accounts_login_shell_allowed"])
    bad = [
        (u.name, f"{u.name} (UID {u.uid}) has login shell {u.shell or '(empty: /bin/sh)'}")
        for u in users
        if (u.uid < limit or u.uid == 65534) and u.name not in allowed and is_login_shell(u.shell)
    ]
    return _per_offender(
        bad, f"no system account (UID < {limit}) has a login shell", "nologin or false as shell for system accounts"
    )
