"""checks/files/filesystem_scan.py on canned bounded-find output."""

from __future__ import annotations

import os
import shutil
import subprocess

import pytest
from helpers import make_facts, not_found, overall, run_check, timed_out

from itops.checklib.fileperm import find_command, parse_find_output
from itops.model import Status

PROBES = {
    "files.world_writable_files_absent": "find_world_writable_files",
    "files.world_writable_dirs_sticky": "find_world_writable_dirs_without_sticky",
    "files.unowned_files_absent": "find_unowned_files",
    "files.suid_sgid_allowlisted": "find_setid_files",
}
IDS = list(PROBES)


def found(*paths, total=None, rc=0):
    total = len(paths) if total is None else total
    return "".join(p + "\n" for p in paths) + f"@TOTAL={total}\n@FINDRC={rc}\n"


def facts(check_id, spec):
    return make_facts({PROBES[check_id]: spec})


@pytest.mark.parametrize("check_id", IDS)
def test_pass_on_clean_scan(check_id):
    assert [f.status for f in run_check(check_id, facts(check_id, (0, found())))] == [Status.PASS]


@pytest.mark.parametrize("check_id", IDS)
def test_fail_lists_each_path(check_id):
    findings = run_check(check_id, facts(check_id, (0, found("/opt/x/run.sh", "/var/lib/y"))))
    assert [(f.status, f.resource) for f in findings] == [(Status.FAIL, "/opt/x/run.sh"), (Status.FAIL, "/var/lib/y")]


@pytest.mark.parametrize("check_id", IDS)
@pytest.mark.parametrize(
    "spec",
    [
        (0, found("/a", rc=1), "find: '/root/x': Permission denied\n"),
        (0, "/a\n/b\n"),  # totals missing: cut off
        (0, "garbage"),
        (3, "", "none of the search paths exist\n"),
        timed_out(),
        not_found("find"),
    ],
    ids=["permission-denied", "truncated", "garbage", "no-paths", "timeout", "missing-command"],
)
def test_error_never_pass(check_id, spec):
    findings = run_check(check_id, facts(check_id, spec))
    assert [f.status for f in findings] == [Status.ERROR], findings


@pytest.mark.parametrize("check_id", IDS)
def test_vanished_files_are_tolerated(check_id):
    spec = (0, found(rc=1), "find: '/var/cache/x/tmp123': No such file or directory\n")
    assert overall(run_check(check_id, facts(check_id, spec))) is Status.PASS


def test_truncated_list_still_fails_and_counts():
    paths = [f"/srv/f{i}" for i in range(60)]
    findings = run_check(
        "files.world_writable_files_absent", facts("files.world_writable_files_absent", (0, found(*paths, total=5000)))
    )
    assert all(f.status is Status.FAIL for f in findings)
    assert len(findings) == 51 and "5000 matches in all" in findings[-1].message


def test_suid_allow_list_and_merged_usr():
    spec = (
        0,
        found("/usr/bin/passwd", "/bin/su", "/usr/lib/x86_64-linux-gnu/utempter/utempter", "/home/alice/.cache/bash"),
    )
    findings = run_check("files.suid_sgid_allowlisted", facts("files.suid_sgid_allowlisted", spec))
    assert [(f.status, f.resource) for f in findings] == [(Status.FAIL, "/home/alice/.cache/bash")]
    ok = run_check(
        "files.suid_sgid_allowlisted",
        facts("files.suid_sgid_allowlisted", spec),
        setid_allowed=["/usr/bin/*", "/usr/lib/*", "/home/alice/.cache/bash"],
    )
    assert overall(ok) is Status.PASS


def test_paths_params_reach_the_command_quoted():
    from helpers import registry

    check = registry().get("files.world_writable_files_absent")
    params = check.resolve_params(
        {
            "world_writable_search_paths": ["/srv/my data", "/x;rm -rf /"],
            "world_writable_exclude_paths": ["/srv/my data/cache"],
        }
    )
    cmd = check.probes[0].render(params)
    assert "'/srv/my data'" in cmd and "'/x;rm -rf /'" in cmd and "-path '/srv/my data/cache'" in cmd


@pytest.mark.skipif(not (shutil.which("find") and shutil.which("awk")), reason="needs find and awk")
def test_find_command_runs_locally(tmp_path):
    (tmp_path / "ok").write_text("")
    ww = tmp_path / "ww"
    ww.write_text("")
    ww.chmod(0o666)
    (tmp_path / "skip").mkdir()
    skipped = tmp_path / "skip" / "ww2"
    skipped.write_text("")
    skipped.chmod(0o666)
    os.symlink(tmp_path, tmp_path.parent / f"{tmp_path.name}-link")
    cmd = find_command(
        [str(tmp_path), str(tmp_path.parent / f"{tmp_path.name}-link"), "/nonexistent-itops"],
        "-type f -perm -0002",
        [str(tmp_path / "skip")],
        limit=10,
    )
    proc = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, check=True)
    out = parse_find_output(proc.stdout, proc.stderr)
    assert out.paths == (str(ww),) and out.total == 1 and out.rc == 0


@pytest.mark.skipif(not (shutil.which("find") and shutil.which("awk")), reason="needs find and awk")
def test_find_keeps_names_with_newlines_as_one_match(tmp_path):
    # before: "a\nb" came back as two matches, "…/a" and "b", neither of them a real file
    names = ["a\nb", "tab\there", "sp ace", "\n@TOTAL=0", "plain"]
    for name in names:
        (tmp_path / name).write_text("")
        (tmp_path / name).chmod(0o666)
    cmd = find_command([str(tmp_path)], "-type f -perm -0002", limit=3)
    proc = subprocess.run(["sh", "-c", cmd], capture_output=True, check=True)
    out = parse_find_output(proc.stdout.decode(), proc.stderr.decode())
    assert out.total == 5 and out.truncated and len(out.paths) == 3
    proc = subprocess.run(
        ["sh", "-c", find_command([str(tmp_path)], "-type f -perm -0002")], capture_output=True, check=True
    )
    out = parse_find_output(proc.stdout.decode(), proc.stderr.decode())
    assert sorted(out.paths) == sorted(str(tmp_path / n) for n in names) and out.total == 5
