"""checks/accounts/sudo.py and itops.checklib.sudoers on canned sudoers dumps."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from helpers import make_facts, not_found, overall, run_check, timed_out

from itops.checklib.common import ProbeOutputError
from itops.checklib.sudoers import SUDOERS_FILES, active_lines, parse_sudoers_dump, split_list
from itops.model import Status

MAIN = """#
# This file MUST be edited with the 'visudo' command as root.
Defaults\tenv_reset
Defaults\tmail_badpass
Defaults\tsecure_path="/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
root\tALL=(ALL:ALL) ALL
%sudo\tALL=(ALL:ALL) ALL
@includedir /etc/sudoers.d
"""


def dump(files, unreadable=(), done=True):
    out = []
    for path in unreadable:
        out.append(f"@UNREADABLE\t{path}")
    for path, content in files.items():
        out.append(f"@FILE\t{path}")
        out += ["|" + line for line in content.splitlines()]
        out.append(f"@ENDFILE\t{path}")
    if done:
        out.append("@DONE")
    return "\n".join(out) + "\n"


def facts(files=None, **kw):
    files = {"/etc/sudoers": MAIN, "/etc/sudoers.d/README": "# comments only\n"} if files is None else files
    return make_facts({"sudoers_files": (0, dump(files, **kw))})


CHECKS = ["accounts.sudoers_no_nopasswd", "accounts.sudoers_authenticate_required"]


@pytest.mark.parametrize("check_id", CHECKS)
def test_pass(check_id):
    assert [f.status for f in run_check(check_id, facts())] == [Status.PASS]


def test_nopasswd_fail_reports_file_and_line():
    files = {
        "/etc/sudoers": MAIN,
        "/etc/sudoers.d/90-cloud-init-users": "# Created by cloud-init\nubuntu ALL=(ALL) NOPASSWD:ALL\n",
    }
    [f] = run_check("accounts.sudoers_no_nopasswd", facts(files))
    assert f.status is Status.FAIL and f.resource == "/etc/sudoers.d/90-cloud-init-users:2"
    assert "ubuntu ALL=(ALL) NOPASSWD:ALL" in f.message


def test_authenticate_fail_reports_scope():
    files = {"/etc/sudoers": MAIN + 'Defaults:deploy !authenticate\nDefaults env_keep += "A B", !authenticate\n'}
    findings = run_check("accounts.sudoers_authenticate_required", facts(files))
    assert [(f.status, f.resource) for f in findings] == [
        (Status.FAIL, "/etc/sudoers:9"),
        (Status.FAIL, "/etc/sudoers:10"),
    ]
    assert findings[0].message.startswith("Defaults:deploy !authenticate")


def test_nopasswd_in_comments_and_ignored_files_does_not_count():
    files = {
        "/etc/sudoers": MAIN + "# bob ALL=(ALL) NOPASSWD: ALL\n",
        "/etc/sudoers.d/old.bak": "bob ALL=(ALL) NOPASSWD: ALL\n",  # has a dot: sudo skips it
        "/etc/sudoers.d/tmp~": "bob ALL=(ALL) NOPASSWD: ALL\n",  # ends in ~: sudo skips it
    }
    assert overall(run_check("accounts.sudoers_no_nopasswd", facts(files))) is Status.PASS


def test_sudoers_d_not_included_is_not_active():
    files = {
        "/etc/sudoers": MAIN.replace("@includedir /etc/sudoers.d\n", ""),
        "/etc/sudoers.d/x": "bob ALL=(ALL) NOPASSWD: ALL\n",
    }
    assert overall(run_check("accounts.sudoers_no_nopasswd", facts(files))) is Status.PASS


def test_continuation_lines_and_hash_include():
    main = MAIN.replace("@includedir", "#includedir") + "Defaults \\\n    !authenticate\n"
    findings = run_check("accounts.sudoers_authenticate_required", facts({"/etc/sudoers": main}))
    assert [(f.status, f.resource) for f in findings] == [(Status.FAIL, "/etc/sudoers:9")]


def test_nopasswd_allowed_principals():
    files = {"/etc/sudoers": MAIN + "ansible ALL=(ALL) NOPASSWD: ALL\n%ops,bob ALL = NOPASSWD: /bin/systemctl\n"}
    findings = run_check("accounts.sudoers_no_nopasswd", facts(files), sudoers_nopasswd_allowed=["ansible"])
    assert [f.resource for f in findings] == ["/etc/sudoers:10"]


def test_sudo_not_installed_passes_and_says_so():
    for check_id in CHECKS:
        [f] = run_check(check_id, make_facts({"sudoers_files": (0, "@NOSUDOERS\n")}))
        assert f.status is Status.PASS and "not installed" in f.message


@pytest.mark.parametrize("check_id", CHECKS)
@pytest.mark.parametrize(
    "spec",
    [
        (0, dump({}, unreadable=("/etc/sudoers",))),
        (0, dump({"/etc/sudoers": MAIN}, unreadable=("/etc/sudoers.d",))),
        (0, dump({"/etc/sudoers": MAIN, "/etc/sudoers.d/x": "a"}, unreadable=("/etc/sudoers.d/y",))),
        (0, dump({"/etc/sudoers": MAIN + "@include /etc/sudoers.local\n"})),
        (0, dump({"/etc/sudoers": MAIN + "@includedir /usr/local/etc/sudoers.d\n"})),
        (0, dump({"/etc/sudoers": MAIN}, done=False)),
        (0, "garbage\n"),
        timed_out(),
        not_found("awk"),
    ],
    ids=[
        "unreadable",
        "dir-unreadable",
        "file-unreadable",
        "include-elsewhere",
        "includedir-elsewhere",
        "truncated",
        "garbage",
        "timeout",
        "missing-command",
    ],
)
def test_error_never_pass(check_id, spec):
    findings = run_check(check_id, make_facts({"sudoers_files": spec}))
    assert [f.status for f in findings] == [Status.ERROR], findings


def test_include_loop_is_error():
    d = parse_sudoers_dump(dump({"/etc/sudoers": "@include /etc/sudoers\n"}))
    with pytest.raises(ProbeOutputError, match="too deep"):
        list(active_lines(d))


def test_split_list_quotes():
    assert split_list('env_keep += "A, B", !authenticate ,x') == ['env_keep += "A, B"', "!authenticate", "x"]


@pytest.mark.skipif(not (shutil.which("sh") and shutil.which("awk")), reason="needs sh and awk")
def test_probe_script_on_a_local_tree(tmp_path):
    etc = tmp_path / "etc"
    (etc / "sudoers.d").mkdir(parents=True)
    (etc / "sudoers").write_text(MAIN)
    (etc / "sudoers.d" / "10-ops").write_text("%ops ALL=(ALL) NOPASSWD: ALL")  # no final newline
    (etc / "sudoers.d" / "20-x").write_text("@ENDFILE\t/etc/sudoers.d/20-x\n")
    cmd = SUDOERS_FILES.command
    assert isinstance(cmd, str)
    out = subprocess.run(
        ["sh", "-c", cmd.replace("/etc/sudoers", str(etc / "sudoers"))], capture_output=True, text=True, check=True
    ).stdout
    d = parse_sudoers_dump(out.replace(str(etc), "/etc"))
    assert sorted(d.files) == ["/etc/sudoers", "/etc/sudoers.d/10-ops", "/etc/sudoers.d/20-x"]
    assert d.files["/etc/sudoers.d/10-ops"] == ["%ops ALL=(ALL) NOPASSWD: ALL"]
    texts = [line.text for line in active_lines(d)]
    assert "%ops ALL=(ALL) NOPASSWD: ALL" in texts
