"""checks/accounts/local_users.py on canned /etc/passwd, /etc/group, login.defs and shadow probe output."""

from __future__ import annotations

import pytest
from helpers import make_facts, not_found, overall, run_check, timed_out

from itops.model import Status

PASSWD = """root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
sync:x:4:65534:sync:/bin:/bin/sync
www-data:x:33:33:www-data:/var/www:/usr/sbin/nologin
nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin
alice:x:1000:1000:Alice:/home/alice:/bin/bash
"""
GROUP = """root:x:0:
daemon:x:1:
www-data:x:33:
shadow:x:42:
nogroup:x:65534:
alice:x:1000:
"""
LOGIN_DEFS = "# comment\nUID_MIN 1000\nPASS_MAX_DAYS 365\nPASS_MIN_DAYS 1\nPASS_WARN_AGE 7\n"
SHADOW = """root:locked:19700:0:99999:7:::9
daemon:locked:19700:0:99999:7:::9
alice:set:19700:1:365:7:::9
"""


def facts(passwd=PASSWD, group=GROUP, defs=LOGIN_DEFS, shadow=SHADOW):
    def spec(v):
        return v if isinstance(v, tuple) or not isinstance(v, str) else (0, v)

    return make_facts(
        {
            "etc_passwd": spec(passwd),
            "etc_group": spec(group),
            "etc_login_defs": spec(defs),
            "shadow_status": spec(shadow),
        }
    )


# check id, facts overrides that make it fail
FAIL_CASES = [
    ("accounts.uid0_only_root", {"passwd": PASSWD + "toor:x:0:0::/root:/bin/sh\n"}, "toor"),
    ("accounts.root_only_gid0_account", {"passwd": PASSWD + "ops:x:1001:0::/home/ops:/bin/bash\n"}, "ops"),
    ("accounts.root_only_gid0_group", {"group": GROUP + "wheel0:x:0:\n"}, "wheel0"),
    ("accounts.passwords_shadowed", {"passwd": PASSWD + "old:$1$abc:1002:1000::/home/old:/bin/sh\n"}, "old"),
    ("accounts.shadow_no_empty_passwords", {"shadow": SHADOW + "guest:empty:19700:0:99999:7:::9\n"}, "guest"),
    ("accounts.no_duplicate_uids", {"passwd": PASSWD + "bob:x:1000:1000::/home/bob:/bin/bash\n"}, "1000"),
    ("accounts.no_duplicate_gids", {"group": GROUP + "staff2:x:33:\n"}, "33"),
    ("accounts.no_duplicate_usernames", {"passwd": PASSWD + "alice:x:1005:1000::/home/a2:/bin/bash\n"}, "alice"),
    ("accounts.no_duplicate_groupnames", {"group": GROUP + "alice:x:1007:\n"}, "alice"),
    ("accounts.passwd_groups_exist", {"passwd": PASSWD + "bob:x:1001:4242::/home/bob:/bin/bash\n"}, "bob"),
    ("accounts.shadow_group_empty", {"group": GROUP.replace("shadow:x:42:", "shadow:x:42:alice")}, "alice"),
    (
        "accounts.system_accounts_no_login_shell",
        {"passwd": PASSWD.replace("www-data:/var/www:/usr/sbin/nologin", "www-data:/var/www:/bin/bash")},
        "www-data",
    ),
]
IDS = [c[0] for c in FAIL_CASES]


@pytest.mark.parametrize("check_id", IDS)
def test_pass(check_id):
    findings = run_check(check_id, facts())
    assert [f.status for f in findings] == [Status.PASS], findings


@pytest.mark.parametrize(("check_id", "override", "resource"), FAIL_CASES, ids=IDS)
def test_fail_names_the_offender(check_id, override, resource):
    findings = run_check(check_id, facts(**override))
    assert [f.status for f in findings] == [Status.FAIL], findings
    assert findings[0].resource == resource and resource in findings[0].message


@pytest.mark.parametrize("check_id", IDS)
@pytest.mark.parametrize(
    "broken",
    [
        {"passwd": "root:x:0:0:root:/root\n", "group": "root:x\n", "shadow": "garbage\n"},
        {"passwd": "root:x:zero:0:root:/root:/bin/sh\n", "group": "root:x:zero:\n", "shadow": "root:set:1:2:3\n"},
        {"passwd": timed_out("cat"), "group": timed_out("cat"), "shadow": timed_out("awk")},
        {"passwd": not_found("cat"), "group": not_found("cat"), "shadow": not_found("awk")},
        {
            "passwd": (1, "", "cat: /etc/passwd: No such file"),
            "group": (1, "", "cat: /etc/group: Permission denied"),
            "shadow": (3, "", "/etc/shadow not readable (run as root or enable sudo)\n"),
        },
        {"passwd": "", "group": "", "shadow": ""},
    ],
    ids=["wrong-field-count", "non-numeric", "timeout", "missing-command", "unreadable", "empty"],
)
def test_error_never_pass(check_id, broken):
    findings = run_check(check_id, facts(**broken))
    assert Status.PASS not in [f.status for f in findings]
    assert overall(findings) is Status.ERROR
    assert all(f.message.startswith("could not assess:") for f in findings if f.status is Status.ERROR)


def test_shadow_unreadable_message():
    findings = run_check(
        "accounts.shadow_no_empty_passwords",
        facts(shadow=(3, "", "/etc/shadow not readable (run as root or enable sudo)\n")),
    )
    assert [f.message for f in findings] == ["could not assess: /etc/shadow not readable (run as root or enable sudo)"]


def test_empty_password_field_in_passwd_counts():
    findings = run_check("accounts.shadow_no_empty_passwords", facts(passwd=PASSWD + "kiosk::1003:1003::/:/bin/sh\n"))
    assert [(f.status, f.resource) for f in findings] == [(Status.FAIL, "kiosk")]


def test_nis_compat_lines_ignored():
    assert overall(run_check("accounts.uid0_only_root", facts(passwd=PASSWD + "+::::::\n"))) is Status.PASS


def test_empty_shell_is_a_login_shell():
    findings = run_check(
        "accounts.system_accounts_no_login_shell", facts(passwd=PASSWD + "svc:x:120:120::/var/lib/svc:\n")
    )
    assert [f.resource for f in findings] == ["svc"]


def test_uid_min_from_login_defs_and_allowed_var():
    passwd = PASSWD + "app:x:600:600::/srv/app:/bin/bash\n"
    assert overall(run_check("accounts.system_accounts_no_login_shell", facts(passwd=passwd))) is Status.FAIL
    assert (
        overall(
            run_check(
                "accounts.system_accounts_no_login_shell",
                facts(passwd=passwd, defs=LOGIN_DEFS.replace("UID_MIN 1000", "UID_MIN 500")),
            )
        )
        is Status.PASS
    )
    allowed = ["root", "sync", "shutdown", "halt", "app"]
    assert (
        overall(
            run_check(
                "accounts.system_accounts_no_login_shell",
                facts(passwd=passwd),
                system_accounts_login_shell_allowed=allowed,
            )
        )
        is Status.PASS
    )


def test_no_shadow_group_is_pass_on_rhel():
    group = GROUP.replace("shadow:x:42:\n", "")
    [f] = run_check("accounts.shadow_group_empty", facts(group=group))
    assert f.status is Status.PASS and "no shadow group" in f.message


def test_several_offenders_each_get_a_finding():
    passwd = PASSWD + "toor:x:0:0::/root:/bin/sh\nadmin:x:0:0::/root:/bin/sh\n"
    assert [f.resource for f in run_check("accounts.uid0_only_root", facts(passwd=passwd))] == ["toor", "admin"]


def test_gid0_expected_lists_the_allowed_accounts_as_given():
    """The expected text follows the param's order (it followed a set's, which changes with the
    interpreter's hash seed, so one host's evidence differed from run to run)."""
    (finding,) = run_check("accounts.root_only_gid0_account", facts(passwd=PASSWD + "ops:x:1001:0::/x:/bin/sh\n"))
    assert finding.expected == "GID 0 only for root, sync, shutdown, halt, operator"
    (finding,) = run_check(
        "accounts.root_only_gid0_account",
        facts(passwd=PASSWD + "ops:x:1001:0::/x:/bin/sh\n"),
        gid0_accounts_allowed=["sync", "root", "sync"],
    )
    assert finding.expected == "GID 0 only for sync, root"
