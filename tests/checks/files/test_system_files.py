"""checks/files/system_files.py and cron.py on canned output of the shared stat probe."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from helpers import make_facts, not_found, overall, run_check, timed_out

from itops.checklib.fileperm import SYSTEM_FILE_PATHS, parse_stat_output, stat_paths_command
from itops.model import Status

GOOD = {
    "/etc/passwd": "644|0|root|0|root|regular file",
    "/etc/passwd-": "644|0|root|0|root|regular file",
    "/etc/group": "644|0|root|0|root|regular file",
    "/etc/group-": "644|0|root|0|root|regular file",
    "/etc/shadow": "640|0|root|42|shadow|regular file",
    "/etc/shadow-": "600|0|root|42|shadow|regular file",
    "/etc/gshadow": "640|0|root|42|shadow|regular file",
    "/etc/gshadow-": "0|0|root|0|root|regular file",
    "/etc/shells": "644|0|root|0|root|regular file",
    "/etc/security/opasswd": "600|0|root|0|root|regular empty file",
    "/etc/crontab": "600|0|root|0|root|regular file",
    "/etc/cron.hourly": "700|0|root|0|root|directory",
    "/etc/cron.daily": "700|0|root|0|root|directory",
    "/etc/cron.weekly": "700|0|root|0|root|directory",
    "/etc/cron.monthly": "700|0|root|0|root|directory",
    "/etc/cron.d": "700|0|root|0|root|directory",
}


def stats(**changes):
    merged = {**GOOD, **{k.replace("__", "/"): v for k, v in changes.items()}}
    lines = []
    for path, v in merged.items():
        lines.append(f"{v}|{path}" if v in ("M", "E") else f"S|{v}|{path}")
    return make_facts({"system_file_stats": (0, "\n".join(lines) + "\n")})


def facts_with(path, value):
    return make_facts(
        {
            "system_file_stats": (
                0,
                "\n".join(
                    (f"{value}|{p}" if value in ("M", "E") else f"S|{value}|{p}") if p == path else f"S|{v}|{p}"
                    for p, v in GOOD.items()
                )
                + "\n",
            )
        }
    )


# check id, the path it judges, a failing stat, what absence means
CASES = [
    ("files.passwd_permissions", "/etc/passwd", "664|0|root|0|root|regular file", Status.ERROR),
    ("files.passwd_backup_permissions", "/etc/passwd-", "666|0|root|0|root|regular file", Status.PASS),
    ("files.group_permissions", "/etc/group", "644|1000|alice|0|root|regular file", Status.ERROR),
    ("files.group_backup_permissions", "/etc/group-", "644|0|root|4|adm|regular file", Status.PASS),
    ("files.shadow_permissions", "/etc/shadow", "644|0|root|42|shadow|regular file", Status.ERROR),
    ("files.shadow_backup_permissions", "/etc/shadow-", "640|0|root|4|adm|regular file", Status.PASS),
    ("files.gshadow_permissions", "/etc/gshadow", "660|0|root|42|shadow|regular file", Status.PASS),
    ("files.gshadow_backup_permissions", "/etc/gshadow-", "604|0|root|0|root|regular file", Status.PASS),
    ("files.shells_permissions", "/etc/shells", "646|0|root|0|root|regular file", Status.PASS),
    ("files.opasswd_permissions", "/etc/security/opasswd", "640|0|root|0|root|regular file", Status.PASS),
    ("files.crontab_permissions", "/etc/crontab", "644|0|root|0|root|regular file", Status.PASS),
    ("files.cron_dirs_permissions", "/etc/cron.d", "755|0|root|0|root|directory", Status.PASS),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize(("check_id", "path", "bad", "absent"), CASES, ids=IDS)
def test_pass(check_id, path, bad, absent):
    findings = run_check(check_id, stats())
    assert findings and all(f.status is Status.PASS for f in findings), findings
    assert path in [f.resource for f in findings]


@pytest.mark.parametrize(("check_id", "path", "bad", "absent"), CASES, ids=IDS)
def test_fail(check_id, path, bad, absent):
    findings = run_check(check_id, facts_with(path, bad))
    [f] = [f for f in findings if f.resource == path]
    assert f.status is Status.FAIL and f.observed and f.expected, f


@pytest.mark.parametrize(("check_id", "path", "bad", "absent"), CASES, ids=IDS)
def test_absent_file(check_id, path, bad, absent):
    [f] = [f for f in run_check(check_id, facts_with(path, "M")) if f.resource == path]
    assert f.status is absent and "does not exist" in f.message


@pytest.mark.parametrize(("check_id", "path", "bad", "absent"), CASES, ids=IDS)
@pytest.mark.parametrize(
    "spec",
    [(0, "total garbage\n"), (0, "S|644|0|root|0\n"), timed_out(), not_found("stat"), (0, "")],
    ids=["garbage", "short-line", "timeout", "missing-command", "empty"],
)
def test_error_never_pass(check_id, path, bad, absent, spec):
    findings = run_check(check_id, make_facts({"system_file_stats": spec}))
    assert findings and all(f.status is Status.ERROR for f in findings), findings


@pytest.mark.parametrize(("check_id", "path", "bad", "absent"), CASES, ids=IDS)
def test_stat_error_is_error(check_id, path, bad, absent):
    [f] = [f for f in run_check(check_id, facts_with(path, "E")) if f.resource == path]
    assert f.status is Status.ERROR


def test_shadow_rhel_0000_root_passes_and_group_var():
    facts = facts_with("/etc/shadow", "0|0|root|0|root|regular file")
    assert overall(run_check("files.shadow_permissions", facts)) is Status.PASS
    adm = facts_with("/etc/shadow", "640|0|root|4|adm|regular file")
    assert overall(run_check("files.shadow_permissions", adm)) is Status.FAIL
    assert (
        overall(run_check("files.shadow_permissions", adm, shadow_groups_allowed=["root", "shadow", "adm"]))
        is Status.PASS
    )


def test_setuid_bit_is_beyond_0644():
    [f] = run_check("files.passwd_permissions", facts_with("/etc/passwd", "4644|0|root|0|root|regular file"))
    assert f.status is Status.FAIL and "4000" in f.message


def test_cron_dir_that_is_a_file_fails():
    findings = run_check("files.cron_dirs_permissions", facts_with("/etc/cron.daily", "600|0|root|0|root|regular file"))
    [f] = [f for f in findings if f.resource == "/etc/cron.daily"]
    assert f.status is Status.FAIL and "expected directory" in f.message


def test_crontab_mode_var():
    facts = facts_with("/etc/crontab", "644|0|root|0|root|regular file")
    assert overall(run_check("files.crontab_permissions", facts, crontab_max_mode="0644")) is Status.PASS


def test_stat_probe_runs_locally(tmp_path):
    """The real probe command on real files: an existing file, a missing one, a name with a pipe."""
    import subprocess

    present, odd = tmp_path / "present", tmp_path / "a|b"
    present.write_text("x")
    odd.write_text("y")
    present.chmod(0o640)
    cmd = stat_paths_command([str(present), str(tmp_path / "missing"), str(odd)])
    out = subprocess.run(["sh", "-c", cmd], capture_output=True, text=True, check=True).stdout
    parsed = parse_stat_output(out)
    assert parsed[str(present)].mode == 0o640 and parsed[str(present)].kind.startswith("regular")
    assert parsed[str(tmp_path / "missing")].state == "missing"
    assert parsed[str(odd)].state == "ok"
    assert set(SYSTEM_FILE_PATHS) == set(GOOD)


def test_stat_probe_as_non_root_never_calls_an_unsearchable_path_missing():
    """A non-root login cannot see into a 0700 directory: its files are unknown, not missing."""
    import os
    import shutil
    import subprocess
    import tempfile

    if os.geteuid() != 0:
        pytest.skip("needs root to run the probe as another user")
    outer = Path(tempfile.mkdtemp(prefix="itops-stat-"))
    try:
        outer.chmod(0o755)
        private = outer / "private"
        private.mkdir(mode=0o700)
        (private / "secret").write_text("x")
        cmd = stat_paths_command([str(private / "secret"), str(outer / "gone")])
        out = subprocess.run(
            ["setpriv", "--reuid=nobody", "--regid=nogroup", "--clear-groups", "sh", "-c", cmd],
            capture_output=True,
            text=True,
            check=True,
            timeout=30,
        ).stdout
        parsed = parse_stat_output(out)
        assert str(private / "secret") not in parsed  # no line: the caller reports "could not assess"
        assert parsed[str(outer / "gone")].state == "missing"  # a searchable directory still tells
    finally:
        shutil.rmtree(outer)


# --------------------------------------------------------------------------- files.sudoers_permissions

SUDOERS_CID = "files.sudoers_permissions"
SUDOERS_GOOD = {
    "/etc/sudoers": "S|440|0|root|0|root|regular file",
    "/etc/sudoers.d": "S|750|0|root|0|root|directory",
    "/etc/sudoers.d/README": "S|440|0|root|0|root|regular file",
    "/etc/sudoers.d/90-admins": "S|400|0|root|0|root|regular file",
}


def sudoers(changes=None, probe=None):
    merged = {**SUDOERS_GOOD, **(changes or {})}
    text = "".join(f"{v}|{p}\n" for p, v in merged.items() if v is not None)
    return make_facts({"sudoers_stats": probe if probe is not None else (0, text)})


def test_sudoers_pass_judges_every_file_and_the_directory():
    findings = run_check(SUDOERS_CID, sudoers())
    assert [(f.status, f.resource) for f in findings] == [
        (Status.PASS, "/etc/sudoers"),
        (Status.PASS, "/etc/sudoers.d"),
        (Status.PASS, "/etc/sudoers.d/90-admins"),
        (Status.PASS, "/etc/sudoers.d/README"),
    ]


def test_sudoers_not_installed_passes_as_not_applicable():
    [f] = run_check(SUDOERS_CID, sudoers(probe=(0, "@NOSUDOERS\n")))
    assert f.status is Status.PASS and "sudo is not installed" in f.message


def test_sudoers_empty_or_missing_dropin_dir_passes():
    changes = {
        "/etc/sudoers.d": "M",
        "/etc/sudoers.d/README": None,
        "/etc/sudoers.d/90-admins": None,
        "/etc/sudoers.d/*": "M",
    }  # the unexpanded glob
    assert overall(run_check(SUDOERS_CID, sudoers(changes))) is Status.PASS


def test_sudoers_subdirectory_is_not_judged():
    changes = {"/etc/sudoers.d/old": "S|777|1000|alice|1000|alice|directory"}
    assert overall(run_check(SUDOERS_CID, sudoers(changes))) is Status.PASS


@pytest.mark.parametrize(
    ("path", "stat", "why"),
    [
        ("/etc/sudoers.d/90-admins", "S|644|0|root|0|root|regular file", "mode 0644 allows 0204 beyond 0440"),
        ("/etc/sudoers.d/90-admins", "S|460|0|root|0|root|regular file", "beyond 0440"),
        ("/etc/sudoers.d/90-admins", "S|440|1000|alice|0|root|regular file", "owner alice"),
        ("/etc/sudoers.d/90-admins", "S|440|0|root|27|sudo|regular file", "group sudo"),
        ("/etc/sudoers", "S|640|0|root|0|root|regular file", "beyond 0440"),
        ("/etc/sudoers.d", "S|777|0|root|0|root|directory", "beyond 0755"),
        ("/etc/sudoers.d", "S|755|1000|alice|0|root|directory", "owner alice"),
    ],
)
def test_sudoers_fail_names_the_file(path, stat, why):
    findings = run_check(SUDOERS_CID, sudoers({path: stat}))
    [bad] = [f for f in findings if f.status is Status.FAIL]
    assert bad.resource == path and why in bad.message, bad


@pytest.mark.parametrize(
    ("changes", "probe"),
    [
        (None, timed_out("sudoers_stats")),
        (None, (3, "", "/etc/sudoers.d is not readable (run as root or enable sudo)\n")),
        (None, not_found("stat")),
        (None, (0, "garbage\n")),
        ({"/etc/sudoers": None}, None),  # stat printed nothing for it
        ({"/etc/sudoers.d/90-admins": "E"}, None),  # a dangling symlink / failed stat
    ],
)
def test_sudoers_could_not_assess_is_error_never_pass(changes, probe):
    assert overall(run_check(SUDOERS_CID, sudoers(changes, probe))) is Status.ERROR


def test_sudoers_probe_on_this_machine():
    import subprocess

    from itops.checklib.sudoers import SUDOERS_STATS

    out = subprocess.run(["sh", "-c", SUDOERS_STATS.command], capture_output=True, text=True, timeout=30)
    if out.returncode == 3:
        pytest.skip("not root: /etc/sudoers.d is not readable here")
    assert out.returncode == 0, out.stderr
    findings = run_check(SUDOERS_CID, make_facts({"sudoers_stats": (0, out.stdout)}))
    assert findings and all(f.status in (Status.PASS, Status.FAIL) for f in findings), findings


@pytest.mark.parametrize("name", ["a\nb", "tab\there", "sp ace", "pipe|d", "cr\rx", "\nS|777|0|root|0|root|x|y"])
def test_stat_records_keep_odd_names_exactly(tmp_path, name):
    odd = tmp_path / name
    odd.write_text("")
    odd.chmod(0o640)
    paths = [str(odd), "/etc/passwd", str(tmp_path / "missing\nname")]
    out = subprocess.run(["sh", "-c", stat_paths_command(paths)], capture_output=True, timeout=30, check=True).stdout
    parsed = parse_stat_output(out.decode())  # as ProbeResult.text: no newline translation
    assert set(parsed) == set(paths)
    assert (parsed[str(odd)].state, parsed[str(odd)].mode) == ("ok", 0o640)
    assert parsed["/etc/passwd"].state == "ok"
    assert parsed[str(tmp_path / "missing\nname")].state == "missing"


def test_newline_records_still_parse_and_are_split_at_newlines_only():
    # busybox stat has no --printf: records end with a newline; a \x1c or \x85 in a name is not a break
    parsed = parse_stat_output("S|644|0|root|0|root|regular file|/a\x1cb\x85c\nM|/gone\n")
    assert set(parsed) == {"/a\x1cb\x85c", "/gone"}
