"""checks/accounts/ssh_keys.py on canned /etc/passwd and ~/.ssh stat output, and its probe on a real tree."""

from __future__ import annotations

import subprocess

import pytest
from helpers import make_facts, not_found, overall, run_check, timed_out

from itops.checklib.accounts import SSH_DIR_STATS, ssh_dir_of
from itops.checklib.fileperm import stat_records
from itops.model import Status

CID = "accounts.ssh_authorized_keys_protected"
PASSWD = (
    "root:x:0:0:root:/root:/bin/bash\n"
    "daemon:x:1:1:daemon:/usr/sbin:/usr/sbin/nologin\n"
    "alice:x:1000:1000:Alice:/home/alice:/bin/bash\n"
    "bob:x:1001:1001:Bob:/home/bob/:/bin/bash\n"
    "toor:x:0:0:second root:/root:/bin/sh\n"
)
# every path the probe stats for PASSWD, compliant: root has no ~/.ssh, alice has 0700/0600, bob a root-owned key
GOOD = {
    "/root/.ssh": "M",
    "/root/.ssh/authorized_keys": "M",
    "/root/.ssh/authorized_keys2": "M",
    "/usr/sbin/.ssh": "M",
    "/usr/sbin/.ssh/authorized_keys": "M",
    "/usr/sbin/.ssh/authorized_keys2": "M",
    "/home/alice/.ssh": "S|700|1000|alice|1000|alice|directory",
    "/home/alice/.ssh/authorized_keys": "S|600|1000|alice|1000|alice|regular file",
    "/home/alice/.ssh/authorized_keys2": "M",
    "/home/bob/.ssh": "S|755|1001|bob|1001|bob|directory",
    "/home/bob/.ssh/authorized_keys": "S|644|0|root|0|root|regular file",
    "/home/bob/.ssh/authorized_keys2": "M",
}


def facts(changes=None, passwd=PASSWD, probe=None):
    merged = {**GOOD, **(changes or {})}
    text = "".join(f"{v}|{p}\n" for p, v in merged.items() if v is not None)
    return make_facts({"etc_passwd": (0, passwd), "ssh_dir_stats": probe if probe is not None else (0, text)})


def test_pass_when_keys_are_the_users_or_roots_and_not_writable():
    findings = run_check(CID, facts())
    assert [f.status for f in findings] == [Status.PASS], findings
    assert "4 ~/.ssh directories and authorized_keys files" in findings[0].message


@pytest.mark.parametrize(
    ("path", "stat", "why"),
    [
        (
            "/home/alice/.ssh/authorized_keys",
            "S|666|1000|alice|1000|alice|regular file",
            "writable by group and others",
        ),
        ("/home/alice/.ssh/authorized_keys", "S|620|1000|alice|1000|alice|regular file", "writable by group"),
        ("/home/alice/.ssh/authorized_keys", "S|600|1001|bob|1000|alice|regular file", "owned by bob"),
        ("/home/alice/.ssh", "S|777|1000|alice|1000|alice|directory", "writable by group and others"),
        ("/home/alice/.ssh", "S|700|1001|bob|1001|bob|directory", "owned by bob"),
        ("/root/.ssh/authorized_keys2", "S|602|0|root|0|root|regular file", "writable by others"),
    ],
)
def test_fail_names_the_path(path, stat, why):
    changes = {path: stat}
    if path.startswith("/root/"):
        changes["/root/.ssh"] = "S|700|0|root|0|root|directory"
    findings = run_check(CID, facts(changes))
    [bad] = [f for f in findings if f.status is Status.FAIL]
    assert bad.resource == path and why in bad.message, bad
    assert overall(findings) is Status.FAIL


def test_shared_home_is_judged_once_per_uid():
    # root and toor share /root (UID 0): one finding for the loose file, not two
    changes = {
        "/root/.ssh": "S|700|0|root|0|root|directory",
        "/root/.ssh/authorized_keys": "S|666|0|root|0|root|regular file",
    }
    fails = [f for f in run_check(CID, facts(changes)) if f.status is Status.FAIL]
    assert [f.resource for f in fails] == ["/root/.ssh/authorized_keys"]


def test_no_ssh_dir_means_nothing_to_protect():
    changes = {p: "M" for p in GOOD if p.startswith(("/home/alice", "/home/bob"))}
    assert [f.status for f in run_check(CID, facts(changes))] == [Status.PASS]


@pytest.mark.parametrize(
    "probe_or_changes",
    [
        timed_out("ssh_dir_stats"),
        not_found("stat"),
        (3, "", "/etc/passwd not readable\n"),
        (0, "garbage line\n"),
        {"/home/alice/.ssh": "E"},  # a home the probe could not enter (not root)
        {"/home/alice/.ssh/authorized_keys": "E"},
        {"/home/alice/.ssh/authorized_keys": None},  # stat printed nothing for an existing .ssh
    ],
)
def test_could_not_assess_is_error_never_pass(probe_or_changes):
    f = facts(probe_or_changes) if isinstance(probe_or_changes, dict) else facts(probe=probe_or_changes)
    assert overall(run_check(CID, f)) is Status.ERROR


def test_unreadable_passwd_is_error():
    f = make_facts({"etc_passwd": (1, "", "cat: /etc/passwd: Permission denied"), "ssh_dir_stats": (0, "")})
    assert overall(run_check(CID, f)) is Status.ERROR


def test_probe_on_a_real_tree(tmp_path):
    """The probe's own shell: homes from a passwd file, E for a directory it cannot enter, M for the rest."""
    (tmp_path / "a" / ".ssh").mkdir(parents=True)
    (tmp_path / "a" / ".ssh" / "authorized_keys").write_text("ssh-ed25519 AAAA x\n")
    (tmp_path / "a" / ".ssh" / "authorized_keys").chmod(0o666)
    (tmp_path / "b").mkdir()
    passwd = tmp_path / "passwd"
    passwd.write_text(
        f"a:x:1000:1000::{tmp_path}/a/:/bin/sh\nb:x:1001:1001::{tmp_path}/b:/bin/sh\n"
        "r:x:1002:1002::relative/home:/bin/sh\n"
    )
    command = SSH_DIR_STATS.command.replace("/etc/passwd", str(passwd))
    out = subprocess.run(["sh", "-c", command], capture_output=True, text=True, timeout=30, check=True).stdout
    lines = set(stat_records(out))
    a_ssh = ssh_dir_of(f"{tmp_path}/a/")
    assert a_ssh == f"{tmp_path}/a/.ssh"
    assert any(line.startswith("S|666|") and line.endswith(f"|{a_ssh}/authorized_keys") for line in lines)
    assert f"M|{a_ssh}/authorized_keys2" in lines and f"M|{tmp_path}/b/.ssh" in lines
    assert not any("relative" in line for line in lines)
    uid = (tmp_path / "a").stat().st_uid
    passwd_text = passwd.read_text().replace("1000:1000", f"{uid}:{uid}")
    findings = run_check(CID, make_facts({"etc_passwd": (0, passwd_text), "ssh_dir_stats": (0, out)}))
    assert [(f.status, f.resource) for f in findings] == [(Status.FAIL, f"{a_ssh}/authorized_keys")]
