"""checks/accounts/dotfiles.py on canned /etc/passwd and dot file stat output, and its probe on a real tree."""

from __future__ import annotations

import os
import shutil
import subprocess
import tempfile
from pathlib import Path

import pytest
from helpers import make_facts, not_found, overall, run_check, timed_out

from itops.checklib.accounts import HOME_DOT_FILE_STATS, SSH_DIR_STATS
from itops.checklib.fileperm import stat_records
from itops.model import Status

CID = "accounts.user_dotfiles_safe"
PASSWD = (
    "root:x:0:0:root:/root:/bin/bash\n"
    "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
    "alice:x:1000:1000:Alice:/home/alice:/bin/bash\n"
    "bob:x:1001:1001:Bob:/home/bob/:/bin/sh\n"
    "gone:x:1002:1002:Gone:/home/gone:/bin/bash\n"
    "toor:x:0:0:second root:/root:/bin/sh\n"
)
GOOD = {
    "/root": "S|700|0|root|0|root|directory",
    "/root/.bashrc": "S|644|0|root|0|root|regular file",
    "/root/.profile": "S|600|0|root|0|root|regular file",
    "/usr/sbin": "S|755|0|root|0|root|directory",
    "/usr/sbin/.rhosts": "S|666|0|root|0|root|regular file",  # daemon has no login shell: not judged
    "/home/alice": "S|750|1000|alice|1000|alice|directory",
    "/home/alice/.bashrc": "S|644|1000|alice|1000|alice|regular file",
    "/home/alice/.netrc": "S|600|1000|alice|1000|alice|regular file",
    "/home/alice/.vimrc": "S|444|0|root|0|root|regular empty file",
    "/home/bob": "S|700|1001|bob|1001|bob|directory",
    "/home/bob/.profile": "S|640|1001|bob|1001|bob|regular file",
    "/home/gone": "M",
}


def facts(changes=None, passwd=PASSWD, probe=None):
    merged = {**GOOD, **(changes or {})}
    text = "".join(f"{v}|{p}\n" for p, v in merged.items() if v is not None)
    return make_facts({"etc_passwd": (0, passwd), "home_dot_file_stats": probe if probe is not None else (0, text)})


def test_pass_when_no_forbidden_file_and_nothing_writable():
    findings = run_check(CID, facts())
    assert [f.status for f in findings] == [Status.PASS], findings
    assert "6 dot files checked in 3 login users' homes" in findings[0].message


@pytest.mark.parametrize(
    ("path", "stat", "why"),
    [
        ("/home/alice/.rhosts", "S|600|1000|alice|1000|alice|regular file", "must not exist"),
        ("/home/alice/.shosts", "S|600|1000|alice|1000|alice|regular empty file", "must not exist"),
        ("/root/.forward", "S|644|0|root|0|root|regular file", "must not exist"),
        ("/home/alice/.netrc", "S|644|1000|alice|1000|alice|regular file", "expected 0600 or stricter"),
        ("/home/alice/.netrc", "S|640|1000|alice|1000|alice|regular file", "expected 0600 or stricter"),
        ("/home/alice/.bashrc", "S|664|1000|alice|1000|alice|regular file", "writable by group"),
        ("/home/bob/.profile", "S|646|1001|bob|1001|bob|regular file", "writable by others"),
        ("/root/.profile", "S|620|0|root|0|root|regular file", "writable by group"),
        ("/home/alice/.bashrc", "S|644|1001|bob|1001|bob|regular file", "owned by bob"),
    ],
)
def test_fail_names_the_path(path, stat, why):
    findings = run_check(CID, facts({path: stat}))
    [bad] = [f for f in findings if f.status is Status.FAIL]
    assert bad.resource == path and why in bad.message, bad
    assert overall(findings) is Status.FAIL


def test_non_regular_dot_files_are_not_judged():
    # a .rhosts symlinked to /dev/null (the old way to keep one from being created) is no finding
    changes = {
        "/home/alice/.rhosts": "S|666|0|root|0|root|character special file",
        "/home/alice/.cache": "S|777|1000|alice|1000|alice|directory",
    }
    assert [f.status for f in run_check(CID, facts(changes))] == [Status.PASS]


def test_shared_home_is_judged_once_per_uid():
    fails = [
        f
        for f in run_check(CID, facts({"/root/.bashrc": "S|666|0|root|0|root|regular file"}))
        if f.status is Status.FAIL
    ]
    assert [f.resource for f in fails] == ["/root/.bashrc"]


def test_root_is_judged_even_without_a_login_shell():
    passwd = PASSWD.replace("/root:/bin/bash", "/root:/usr/sbin/nologin")
    findings = run_check(CID, facts({"/root/.rhosts": "S|600|0|root|0|root|regular file"}, passwd=passwd))
    assert [f.resource for f in findings if f.status is Status.FAIL] == ["/root/.rhosts"]


@pytest.mark.parametrize(
    "probe_or_changes",
    [
        timed_out("home_dot_file_stats"),
        not_found("stat"),
        (3, "", "/etc/passwd not readable\n"),
        (0, "garbage line\n"),
        {"/root": "E"},  # a home the probe could not list (not root)
        {"/home/alice": None},  # no line at all for a login user's home
    ],
)
def test_could_not_assess_is_error_never_pass(probe_or_changes):
    f = facts(probe_or_changes) if isinstance(probe_or_changes, dict) else facts(probe=probe_or_changes)
    assert overall(run_check(CID, f)) is Status.ERROR


def test_unlistable_home_is_error_even_beside_a_failure():
    findings = run_check(CID, facts({"/root": "E", "/home/alice/.rhosts": "S|600|1000|alice|1000|alice|regular file"}))
    assert {f.status for f in findings} == {Status.ERROR, Status.FAIL}


def test_ssh_probe_still_spells_its_lines_the_same():
    # SSH_DIR_STATS and HOME_DOT_FILE_STATS share their home-visiting loop
    assert 'printf "E|%s$_z" "$h/.ssh"' in SSH_DIR_STATS.command
    assert '[ ! -r "$h" ]' in HOME_DOT_FILE_STATS.command and '[ ! -r "$h" ]' not in SSH_DIR_STATS.command


def test_probe_on_a_real_tree(tmp_path):
    """The probe's own shell: dot files that are regular files (symlinks followed), M for a missing home,
    nothing for dangling symlinks or non-files."""
    a, b = tmp_path / "a", tmp_path / "b"
    for d in (a, b):
        d.mkdir()
    (a / ".rhosts").write_text("+ +\n")
    (a / ".bashrc").write_text("# rc\n")
    (a / ".bashrc").chmod(0o666)
    (a / "..odd").write_text("")
    (a / "visible").write_text("")
    (a / ".cache").mkdir()
    (a / ".bash_history").symlink_to("/dev/null")
    (a / ".dangling").symlink_to(tmp_path / "nowhere")
    (a / ".linked").symlink_to(a / "visible")
    passwd = tmp_path / "passwd"
    passwd.write_text(
        f"a:x:1000:1000::{a}/:/bin/sh\nb:x:1001:1001::{b}:/bin/sh\nm:x:1002:1002::{tmp_path}/missing:/bin/sh\n"
    )
    command = HOME_DOT_FILE_STATS.command.replace("/etc/passwd", str(passwd))
    out = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=30, check=True).stdout
    paths = {line.rsplit("|", 1)[1] for line in stat_records(out) if line}
    assert paths >= {
        str(a),
        f"{a}/.rhosts",
        f"{a}/.bashrc",
        f"{a}/..odd",
        f"{a}/.linked",
        str(b),
        f"{tmp_path}/missing",
    }
    assert not paths & {f"{a}/visible", f"{a}/.cache", f"{a}/.bash_history", f"{a}/.dangling"}
    assert f"M|{tmp_path}/missing" in stat_records(out)
    uid = a.stat().st_uid
    passwd_text = passwd.read_text().replace(":1000:1000:", f":{uid}:{uid}:")
    findings = run_check(CID, make_facts({"etc_passwd": (0, passwd_text), "home_dot_file_stats": (0, out)}))
    fails = sorted(f.resource for f in findings if f.status is Status.FAIL)
    assert fails == [f"{a}/.bashrc", f"{a}/.rhosts"]
    assert not [f for f in findings if f.status is Status.ERROR]


@pytest.mark.skipif(os.geteuid() != 0 or shutil.which("setpriv") is None, reason="needs root to run as nobody")
def test_probe_as_an_unprivileged_login_reports_homes_it_cannot_list():
    folder = Path(tempfile.mkdtemp(prefix="itops-dotfiles-"))
    try:
        folder.chmod(0o755)
        (folder / "open").mkdir(mode=0o755)
        (folder / "open" / ".profile").write_text("")
        (folder / "shut").mkdir(mode=0o711)  # searchable, not listable
        (folder / "shut" / ".rhosts").write_text("+ +\n")
        passwd = folder / "passwd"
        passwd.write_text(f"o:x:1000:1000::{folder}/open:/bin/sh\ns:x:1001:1001::{folder}/shut:/bin/sh\n")
        command = HOME_DOT_FILE_STATS.command.replace("/etc/passwd", str(passwd))
        out = subprocess.run(
            ["setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "sh", "-c", command],
            capture_output=True,
            text=True,
            timeout=30,
            check=True,
        ).stdout
        assert f"E|{folder}/shut" in stat_records(out) and ".rhosts" not in out
        findings = run_check(CID, make_facts({"etc_passwd": (0, passwd.read_text()), "home_dot_file_stats": (0, out)}))
        assert [(f.status, f.resource) for f in findings] == [(Status.ERROR, f"{folder}/shut")]
    finally:
        shutil.rmtree(folder)


# ----------------------------------------------------------------------- odd file names

ODD_NAMES = (".evil\nrc", ".tab\there", ".sp ace", ".pipe|d", ".esc\x1b[31m", ".cr\rx")


def test_nul_records_keep_names_with_newlines_and_every_other_file_is_judged():
    # before: one name with a newline split a stat line in two and the whole check was ERROR
    records = {
        **GOOD,
        "/home/alice/.evil\nrc": "S|666|1000|alice|1000|alice|regular file",
        "/home/alice/.tab\there": "S|644|1000|alice|1000|alice|regular file",
        "/home/bob/.rhosts": "S|600|1001|bob|1001|bob|regular file",
    }
    text = "".join(f"{v}|{p}\0" for p, v in records.items())
    findings = run_check(CID, make_facts({"etc_passwd": (0, PASSWD), "home_dot_file_stats": (0, text)}))
    assert sorted((f.status, f.resource) for f in findings) == [
        (Status.FAIL, "/home/alice/.evil\nrc"),
        (Status.FAIL, "/home/bob/.rhosts"),
    ]


def test_probe_on_a_real_tree_with_odd_names(tmp_path):
    home = tmp_path / "h"
    home.mkdir()
    for name in ODD_NAMES:
        (home / name).write_text("")
        (home / name).chmod(0o600)
    (home / ".evil\nrc").chmod(0o666)
    passwd = tmp_path / "passwd"
    passwd.write_text(f"a:x:{home.stat().st_uid}:{home.stat().st_gid}::{home}:/bin/sh\n")
    command = HOME_DOT_FILE_STATS.command.replace("/etc/passwd", str(passwd))
    out = subprocess.run(["sh", "-c", command], capture_output=True, timeout=30, check=True).stdout.decode()
    assert "\0" in out
    findings = run_check(CID, make_facts({"etc_passwd": (0, passwd.read_text()), "home_dot_file_stats": (0, out)}))
    assert [(f.status, f.resource) for f in findings] == [(Status.FAIL, f"{home}/.evil\nrc")], findings
