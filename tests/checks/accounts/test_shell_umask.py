"""checks/accounts/shell_umask.py and itops.checklib.umask on canned file dumps, and its probe on real files."""

from __future__ import annotations

import subprocess

import pytest
from helpers import make_facts, overall, registry, run_check, timed_out

from itops.checklib.storage import FILE_MARK, UNREADABLE_MARK
from itops.checklib.umask import find_umask_commands, umask_loosened_bits
from itops.model import Status

CID = "accounts.shell_umask_restrictive"
PROFILE = """\
# /etc/profile
if [ "$(id -u)" -eq 0 ]; then
  PATH="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
fi
# umask 022
"""


def dump(files: dict[str, str], unreadable=()) -> str:
    out = "".join(f"{FILE_MARK}{p}\n{t}\n" for p, t in files.items())
    return out + "".join(f"{UNREADABLE_MARK}{p}\n" for p in unreadable)


def check(files, unreadable=()):
    return run_check(CID, make_facts({"shell_start_files": (0, dump(files, unreadable))}))


@pytest.mark.parametrize(
    ("value", "loosened"),
    [
        ("027", 0),
        ("0027", 0),
        ("077", 0),
        ("0077", 0),
        ("037", 0),
        ("22", 0o005),
        ("022", 0o005),
        ("002", 0o025),
        ("0", 0o027),
        ("007", 0o020),
        ("u=rwx,g=rx,o=", 0),
        ("u=rwx,g=rwx,o=", 0o020),
        ("u=rwx,g=rx,o=rx", 0o005),
        ("a=rx", 0o005),
        ("o-rwx", 0),
        ("g-w,o-rwx", 0),
        ("o+r", 0o004),
        ("g+w", 0o020),
        ("u=rwx", 0),
        ("=rx", 0o005),
    ],
)
def test_umask_loosened_bits(value, loosened):
    assert umask_loosened_bits(value, 0o027) == loosened


@pytest.mark.parametrize("value", ["$UMASK", "0o27", "abc", "u=rwx,g=u", "999", "g=rwxs"])
def test_umask_values_that_are_not_masks(value):
    assert umask_loosened_bits(value, 0o027) is None


def test_find_umask_commands():
    text = (
        "umask 022\n"
        "    umask '027' # quoted\n"
        "# umask 000\n"
        'if [ $UID -gt 199 ] && [ "`id -gn`" = "`id -un`" ]; then umask 002; else umask 022; fi\n'
        '[ -n "$X" ] && umask 0077\n'
        "umask\n"
        "umask -S\n"
        "umask -S u=rwx,g=rx,o=\n"
        "echo umask 000\n"
        "current=$(umask)\n"
        "myumask 000\n"
    )
    found = [(c.line, c.value) for c in find_umask_commands(text)]
    assert found == [(1, "022"), (2, "027"), (4, "002"), (4, "022"), (5, "0077"), (8, "u=rwx,g=rx,o=")]


def test_pass_when_no_umask_is_set():
    findings = check({"/etc/profile": PROFILE, "/etc/bash.bashrc": "PS1='$ '\n"})
    assert [f.status for f in findings] == [Status.PASS]
    assert "accounts.login_defs_umask_restrictive" in findings[0].message


def test_pass_when_every_umask_is_strict_enough():
    findings = check({"/etc/profile": PROFILE + "umask 027\n", "/etc/profile.d/ops.sh": "umask u=rwx,g=rx,o=\n"})
    assert [f.status for f in findings] == [Status.PASS]
    assert "/etc/profile:6 `umask 027`" in findings[0].message


@pytest.mark.parametrize(
    ("path", "text", "resource", "why"),
    [
        ("/etc/profile.d/umask.sh", "umask 002\n", "/etc/profile.d/umask.sh:1", "group write, others read"),
        ("/etc/profile", PROFILE + "umask 022\n", "/etc/profile:6", "others read, others execute"),
        ("/etc/bashrc", "if true; then\n    umask 002\nfi\n", "/etc/bashrc:2", "group write"),
        ("/etc/bash.bashrc", "umask g+w\n", "/etc/bash.bashrc:1", "group write"),
    ],
)
def test_fail_names_the_file_and_line(path, text, resource, why):
    findings = check({"/etc/profile": PROFILE, path: text})
    [bad] = [f for f in findings if f.status is Status.FAIL]
    assert bad.resource == resource and why in bad.message, bad


def test_one_weak_line_fails_beside_strict_ones():
    findings = check({"/etc/profile": "umask 027\n", "/etc/profile.d/a.sh": "umask 077\n", "/etc/bashrc": "umask 0\n"})
    assert [(f.status, f.resource) for f in findings] == [(Status.FAIL, "/etc/bashrc:1")]


@pytest.mark.parametrize(
    "spec",
    [
        ({"/etc/profile": "umask $DEFAULT_UMASK\n"}, ()),  # a value the audit cannot read
        ({"/etc/profile": PROFILE}, ("/etc/profile.d/secret.sh",)),  # an unreadable file
        ({"/etc/profile": PROFILE}, ("/etc/profile.d",)),  # a drop-in directory it cannot list
    ],
)
def test_could_not_assess_is_error_never_pass(spec):
    findings = check(*spec)
    assert overall(findings) is Status.ERROR
    assert not any(f.status is Status.PASS for f in findings)


def test_unparseable_line_is_named():
    [f] = check({"/etc/profile.d/x.sh": "umask $DEFAULT_UMASK\n"})
    assert f.status is Status.ERROR and f.resource == "/etc/profile.d/x.sh:1" and "$DEFAULT_UMASK" in f.message


def test_probe_failure_is_error():
    f = make_facts({"shell_start_files": timed_out("shell_start_files")})
    assert overall(run_check(CID, f)) is Status.ERROR


def test_probe_on_real_files(tmp_path):
    """The probe's own shell over a copy of the layout: files dumped, directories and unmatched globs skipped."""
    etc = tmp_path / "etc"
    (etc / "profile.d" / "sub.sh").mkdir(parents=True)
    (etc / "profile").write_text(PROFILE)
    (etc / "profile.d" / "umask.sh").write_text("umask 002")  # no final newline
    (etc / "profile.d" / "other.sh").write_text("umask 027\n")
    (etc / "profile.d" / "readme.txt").write_text("umask 000\n")
    [probe] = registry().get(CID).probes
    command = probe.render({}).replace("/etc/", f"{etc}/")
    out = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=30, check=True).stdout
    findings = run_check(CID, make_facts({"shell_start_files": (0, out.replace(f"{etc}/", "/etc/"))}))
    assert [(f.status, f.resource) for f in findings] == [(Status.FAIL, "/etc/profile.d/umask.sh:1")]
