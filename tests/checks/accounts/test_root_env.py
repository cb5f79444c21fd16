"""checks/accounts/root_env.py: root's PATH and home directory permissions."""

from __future__ import annotations

import pytest
from helpers import make_facts, not_found, overall, run_check, timed_out

from itops.model import Status

DIRS = ["/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin"]


def root_path(path=":".join(DIRS), stats=None, shell="/bin/bash"):
    stats = stats if stats is not None else {d: "755|0|root|0|root|directory" for d in DIRS}
    lines = [f"SHELL={shell}", f"PATH={path}"] + [
        f"S|{v}|{d}" if not v.startswith("M") else f"M|{d}" for d, v in stats.items()
    ]
    return make_facts({"root_login_path": (0, "\n".join(lines) + "\n")})


def test_root_path_pass():
    [f] = run_check("accounts.root_path_sane", root_path())
    assert f.status is Status.PASS and "/usr/local/sbin" in f.message


@pytest.mark.parametrize(
    ("path", "stats", "resource", "words"),
    [
        (":".join(DIRS) + ":", None, "(empty)", "current directory"),
        (
            "/usr/bin::/bin",
            {"/usr/bin": "755|0|root|0|root|directory", "/bin": "755|0|root|0|root|directory"},
            "(empty)",
            "empty PATH entry",
        ),
        (".:/usr/bin", {"/usr/bin": "755|0|root|0|root|directory"}, ".", "relative"),
        (
            "/usr/bin:/opt/tools/bin",
            {"/usr/bin": "755|0|root|0|root|directory", "/opt/tools/bin": "775|1000|alice|1000|alice|directory"},
            "/opt/tools/bin",
            "owned by alice",
        ),
        (
            "/usr/bin:/srv/x",
            {"/usr/bin": "755|0|root|0|root|directory", "/srv/x": "757|0|root|0|root|directory"},
            "/srv/x",
            "writable by others",
        ),
        ("/usr/bin:/gone", {"/usr/bin": "755|0|root|0|root|directory", "/gone": "M"}, "/gone", "does not exist"),
        (
            "/usr/bin:/etc/hosts",
            {"/usr/bin": "755|0|root|0|root|directory", "/etc/hosts": "644|0|root|0|root|regular file"},
            "/etc/hosts",
            "not a directory",
        ),
    ],
    ids=["trailing-colon", "double-colon", "dot", "foreign-owner", "world-writable", "missing", "not-dir"],
)
def test_root_path_fail(path, stats, resource, words):
    findings = run_check("accounts.root_path_sane", root_path(path, stats))
    failed = [f for f in findings if f.status is Status.FAIL]
    assert [f.resource for f in failed] == [resource] and words in failed[0].message, findings
    assert Status.PASS not in [f.status for f in findings]


def test_root_path_missing_dir_allowed_by_var():
    facts = root_path("/usr/bin:/snap/bin", {"/usr/bin": "755|0|root|0|root|directory", "/snap/bin": "M"})
    assert overall(run_check("accounts.root_path_sane", facts, root_path_allow_missing=True)) is Status.PASS


@pytest.mark.parametrize(
    "spec",
    [
        (3, "", "root PATH not assessable: not running as root (run as root or enable sudo)\n"),
        (5, "SHELL=/bin/sh\n", "root PATH not assessable: /bin/sh -l printed no PATH\n"),
        (0, "PATH=/usr/bin\n"),
        (0, "SHELL=/bin/sh\nPATH=/usr/bin\ngarbage\n"),
        (0, "SHELL=/bin/sh\nPATH=/usr/bin\n"),  # the stat line for /usr/bin is missing
        timed_out(),
        not_found("awk"),
    ],
    ids=["not-root", "no-path", "no-header", "garbage", "stat-missing", "timeout", "missing-command"],
)
def test_root_path_error(spec):
    findings = run_check("accounts.root_path_sane", make_facts({"root_login_path": spec}))
    assert overall(findings) is Status.ERROR and Status.PASS not in [f.status for f in findings]


def test_root_path_not_root_message():
    [f] = run_check(
        "accounts.root_path_sane",
        make_facts(
            {"root_login_path": (3, "", "root PATH not assessable: not running as root (run as root or enable sudo)\n")}
        ),
    )
    assert f.message == "could not assess: root PATH not assessable: not running as root (run as root or enable sudo)"


PASSWD = """root:x:0:0:root:/root:/bin/bash
daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin
sync:x:4:65534:sync:/bin:/bin/sync
alice:x:1000:1000:Alice:/home/alice:/bin/bash
bob:x:1001:1001:Bob:/home/bob:/bin/zsh
svc:x:1002:1002:svc:/srv/svc:/usr/sbin/nologin
"""
HOMES = {
    "/root": "700|0|root|0|root|directory",
    "/usr/sbin": "755|0|root|0|root|directory",
    "/bin": "755|0|root|0|root|directory",
    "/home/alice": "750|1000|alice|1000|alice|directory",
    "/home/bob": "700|1001|bob|1001|bob|directory",
    "/srv/svc": "777|0|root|0|root|directory",
}


def homes(passwd=PASSWD, stats=None, defs="UID_MIN 1000\n"):
    stats = HOMES if stats is None else stats
    text = "".join(f"M|{p}\n" if v == "M" else f"S|{v}|{p}\n" for p, v in stats.items())
    return make_facts({"etc_passwd": (0, passwd), "etc_login_defs": (0, defs), "home_dir_stats": (0, text)})


def test_homes_pass():
    findings = run_check("accounts.home_directories_permissions", homes())
    # root, alice, bob have login shells; daemon/sync (system, UID < 1000) and svc (nologin) are not judged
    assert [(f.status, f.resource) for f in findings] == [
        (Status.PASS, "root"),
        (Status.PASS, "alice"),
        (Status.PASS, "bob"),
    ]


@pytest.mark.parametrize(
    ("change", "words"),
    [
        ({"/home/alice": "755|1000|alice|1000|alice|directory"}, "mode 0755 allows 0005"),
        ({"/home/alice": "750|1001|bob|1000|alice|directory"}, "owned by bob"),
        ({"/home/alice": "M"}, "does not exist"),
        ({"/home/alice": "640|1000|alice|1000|alice|regular file"}, "is a regular file"),
    ],
)
def test_homes_fail(change, words):
    findings = run_check("accounts.home_directories_permissions", homes(stats={**HOMES, **change}))
    [bad] = [f for f in findings if f.status is not Status.PASS]
    assert bad.status is Status.FAIL and bad.resource == "alice" and words in bad.message


def test_homes_var_override():
    stats = {**HOMES, "/home/alice": "755|1000|alice|1000|alice|directory"}
    assert overall(run_check("accounts.home_directories_permissions", homes(stats=stats))) is Status.FAIL
    assert (
        overall(run_check("accounts.home_directories_permissions", homes(stats=stats), home_dir_max_mode="0755"))
        is Status.PASS
    )
    assert (
        overall(
            run_check("accounts.home_directories_permissions", homes(stats=stats), home_dir_users_excluded=["alice"])
        )
        is Status.PASS
    )


@pytest.mark.parametrize(
    "facts",
    [
        homes(stats={k: v for k, v in HOMES.items() if k != "/home/bob"}),  # stat line missing
        make_facts({"etc_passwd": (0, PASSWD), "etc_login_defs": (0, ""), "home_dir_stats": (0, "nonsense\n")}),
        make_facts({"etc_passwd": (0, PASSWD), "etc_login_defs": (0, ""), "home_dir_stats": timed_out()}),
        make_facts({"etc_passwd": not_found("cat"), "etc_login_defs": (0, ""), "home_dir_stats": (0, "")}),
        homes(defs="UID_MIN lots\n"),
    ],
    ids=["stat-missing", "garbage", "timeout", "missing-command", "bad-uid-min"],
)
def test_homes_error(facts):
    findings = run_check("accounts.home_directories_permissions", facts)
    assert overall(findings) is Status.ERROR
