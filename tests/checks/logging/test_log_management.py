"""checks/logging/log_management.py on canned service, package, config-file and find output."""

from __future__ import annotations

import dataclasses
import sys
from pathlib import Path

import pytest
from helpers import RHEL_9, make_facts, not_found, overall, run_check, timed_out

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "services"))
from services_canned import PACKAGES, SERVICES, dpkg, rpm, snapshot

from itops.model import Status

LOG_CONFIG = "log_config_files"
LOG_PATHS = "log_paths"
LOG_MODES = "log_file_modes"


def dump(files: dict[str, str], unreadable: tuple[str, ...] = ()) -> str:
    out = [f"@@itops-unreadable {p}" for p in unreadable]
    for path, text in files.items():
        out += [f"@@itops-file {path}", text, ""]
    return "\n".join(out) + "\n"


def paths(journal: bool = False, cron_logrotate: bool = True) -> str:
    return (
        f"{'present' if journal else 'absent'} /var/log/journal\n"
        f"{'present' if cron_logrotate else 'absent'} /etc/cron.daily/logrotate\n"
    )


JOURNALD_DEFAULT = "[Journal]\n#Storage=auto\n#Compress=yes\n"
LOGROTATE_CONF = "# see man logrotate\nweekly\nrotate 4\ncreate\ninclude /etc/logrotate.d\n"


def with_probe(facts, name, spec):
    """The same facts with one probe result replaced."""
    return dataclasses.replace(facts, probes={**facts.probes, name: make_facts({name: spec}).probes[name]})


def log_facts(
    files: dict[str, str] | None = None,
    journal: bool = False,
    units: dict[str, tuple[str, str]] | None = None,
    pkgs: str | None = None,
    **snap_kw,
):
    files = (
        {"/etc/systemd/journald.conf": JOURNALD_DEFAULT, "/etc/logrotate.conf": LOGROTATE_CONF}
        if files is None
        else files
    )
    return make_facts(
        {
            LOG_CONFIG: (0, dump(files)),
            LOG_PATHS: (0, paths(journal)),
            SERVICES: (0, snapshot(units, **snap_kw)),
            PACKAGES: (0, dpkg("logrotate", "auditd") if pkgs is None else pkgs),
        }
    )


# --- logging.journald_persistent_or_rsyslog --------------------------------------------------------

JOURNAL = "logging.journald_persistent_or_rsyslog"


def test_journal_pass_auto_with_directory():
    findings = run_check(JOURNAL, log_facts(journal=True))
    assert [f.status for f in findings] == [Status.PASS], findings
    assert "Storage=auto" in findings[0].message


def test_journal_pass_persistent_in_dropin():
    files = {
        "/etc/systemd/journald.conf": JOURNALD_DEFAULT,
        "/etc/systemd/journald.conf.d/60-persist.conf": "[Journal]\nStorage=persistent\n",
    }
    assert overall(run_check(JOURNAL, log_facts(files))) is Status.PASS


def test_journal_pass_with_rsyslog_active():
    assert overall(run_check(JOURNAL, log_facts(units={"rsyslog": ("active", "enabled")}))) is Status.PASS


def test_journal_pass_with_syslog_process_without_systemd():
    facts = log_facts(systemd=False, pid1="init", procs=("syslogd",))
    assert overall(run_check(JOURNAL, facts)) is Status.PASS


def test_journal_fail_volatile_even_with_directory():
    files = {"/etc/systemd/journald.conf": "[Journal]\nStorage=volatile\n"}
    findings = run_check(JOURNAL, log_facts(files, journal=True))
    assert overall(findings) is Status.FAIL
    assert "Storage=volatile" in findings[0].message


def test_journal_fail_auto_without_directory():
    assert overall(run_check(JOURNAL, log_facts(journal=False))) is Status.FAIL


def test_journal_dropin_order_last_wins_and_etc_overrides_usr_lib():
    files = {
        "/etc/systemd/journald.conf": "[Journal]\nStorage=persistent\n",
        "/usr/lib/systemd/journald.conf.d/10-vendor.conf": "[Journal]\nStorage=persistent\n",
        "/etc/systemd/journald.conf.d/10-vendor.conf": "[Journal]\nStorage=volatile\n",  # same name: replaces
    }
    assert overall(run_check(JOURNAL, log_facts(files))) is Status.FAIL


def test_journal_error_cases():
    facts = with_probe(log_facts(files={}), LOG_CONFIG, not_found("sh"))
    assert overall(run_check(JOURNAL, facts)) is Status.ERROR
    facts = make_facts(
        {
            LOG_CONFIG: (0, dump({}, unreadable=("/etc/systemd/journald.conf",))),
            LOG_PATHS: (0, paths()),
            SERVICES: (0, snapshot()),
        }
    )
    assert overall(run_check(JOURNAL, facts)) is Status.ERROR
    facts = make_facts({LOG_CONFIG: (0, dump({})), LOG_PATHS: (0, "garbage\n"), SERVICES: (0, snapshot())})
    assert overall(run_check(JOURNAL, facts)) is Status.ERROR
    facts = make_facts({LOG_CONFIG: (0, dump({})), LOG_PATHS: (0, paths()), SERVICES: timed_out()})
    assert overall(run_check(JOURNAL, facts)) is Status.ERROR


def test_journal_container_without_init_and_syslog_fails():
    # no journald (no systemd) and no syslog daemon: sshd's login records sent to /dev/log are lost
    findings = run_check(JOURNAL, log_facts(files={}, systemd=False, pid1="sleep", container="docker"))
    assert overall(findings) is Status.FAIL
    assert "docker container without an init system" in findings[0].message
    running = log_facts(files={}, systemd=False, pid1="sshd", container="docker", procs=("rsyslogd",))
    assert overall(run_check(JOURNAL, running)) is Status.PASS


# --- logging.auditd_running -------------------------------------------------------------------------

AUDITD = "logging.auditd_running"


def test_auditd_pass():
    findings = run_check(AUDITD, log_facts(units={"auditd": ("active", "enabled")}))
    assert [f.status for f in findings] == [Status.PASS], findings
    facts = make_facts(
        {PACKAGES: (0, rpm("audit")), SERVICES: (0, snapshot({"auditd": ("active", "enabled")}))}, os_release=RHEL_9
    )
    assert overall(run_check(AUDITD, facts)) is Status.PASS


def test_auditd_fail_not_installed():
    findings = run_check(AUDITD, log_facts(pkgs=dpkg("rsyslog"), units={"auditd": ("active", "enabled")}))
    assert overall(findings) is Status.FAIL
    assert "not installed" in findings[0].message


def test_auditd_fail_inactive_or_disabled():
    assert overall(run_check(AUDITD, log_facts(units={"auditd": ("inactive", "enabled")}))) is Status.FAIL
    assert overall(run_check(AUDITD, log_facts(units={"auditd": ("active", "disabled")}))) is Status.FAIL


def test_auditd_without_systemd():
    assert overall(run_check(AUDITD, log_facts(systemd=False, pid1="init", procs=("auditd",)))) is Status.PASS
    assert overall(run_check(AUDITD, log_facts(systemd=False, pid1="init"))) is Status.FAIL
    # installed in a container that has no init: nothing will start it
    findings = run_check(AUDITD, log_facts(systemd=False, pid1="bash", container="podman"))
    assert overall(findings) is Status.FAIL
    assert "podman container without an init system" in findings[0].message


def test_auditd_not_installed_in_container_is_not_applicable():
    # kernel auditing is set up by the machine the container runs on
    findings = run_check(AUDITD, log_facts(pkgs=dpkg("rsyslog"), systemd=False, pid1="sshd", container="docker"))
    assert overall(findings) is Status.SKIPPED
    assert "not applicable" in findings[0].message
    # on a host with an init system it is a FAIL
    assert overall(run_check(AUDITD, log_facts(pkgs=dpkg("rsyslog"), systemd=False, pid1="init"))) is Status.FAIL


def test_auditd_error_cases():
    assert overall(run_check(AUDITD, log_facts(pkgs="garbage"))) is Status.ERROR
    facts = make_facts({PACKAGES: not_found("dpkg-query"), SERVICES: (0, snapshot())})
    assert overall(run_check(AUDITD, facts)) is Status.ERROR
    facts = make_facts({PACKAGES: (0, dpkg("auditd")), SERVICES: (0, "nonsense")})
    assert overall(run_check(AUDITD, facts)) is Status.ERROR


# --- logging.log_files_permissions ------------------------------------------------------------------

PERMS = "logging.log_files_permissions"


def modes(text: str, rc: int = 0, stderr: str = ""):
    return make_facts({LOG_MODES: (rc, text, stderr)})


def test_perms_pass_nothing_open_or_only_allowed():
    assert [f.status for f in run_check(PERMS, modes(""))] == [Status.PASS]
    text = "664 /var/log/wtmp\n644 /var/log/lastlog\n664 /var/log/wtmp.1\n"
    assert overall(run_check(PERMS, modes(text))) is Status.PASS


def test_perms_fail_world_readable_and_world_writable():
    text = "644 /var/log/syslog\n666 /var/log/wtmp\n640 /var/log/ok.log\n"
    findings = run_check(PERMS, modes(text))
    assert overall(findings) is Status.FAIL
    assert "/var/log/syslog (0644)" in findings[0].message
    assert "/var/log/wtmp (0666)" in findings[0].message  # allow-listed for reading, never for writing
    assert "ok.log" not in findings[0].message


def test_perms_allowlist_param():
    text = "644 /var/log/nginx/access.log\n"
    assert overall(run_check(PERMS, modes(text))) is Status.FAIL
    findings = run_check(PERMS, modes(text), log_files_world_readable_allowed=["access.log"])
    assert overall(findings) is Status.PASS


def test_perms_partial_read_fails_on_evidence_else_errors():
    denied = "find: '/var/log/private': Permission denied"
    assert overall(run_check(PERMS, modes("644 /var/log/syslog\n", rc=1, stderr=denied))) is Status.FAIL
    findings = run_check(PERMS, modes("", rc=1, stderr=denied))
    assert overall(findings) is Status.ERROR
    assert "Permission denied" in findings[0].message


def test_perms_garbage_and_broken_probe_is_error():
    assert overall(run_check(PERMS, modes("stat: cannot stat\n"))) is Status.ERROR
    assert overall(run_check(PERMS, modes("", rc=2))) is Status.ERROR
    assert overall(run_check(PERMS, make_facts({LOG_MODES: timed_out()}))) is Status.ERROR
    assert overall(run_check(PERMS, make_facts({LOG_MODES: not_found("find")}))) is Status.ERROR


# --- logging.logrotate_configured -------------------------------------------------------------------

ROTATE = "logging.logrotate_configured"


def test_logrotate_pass_via_cron_or_timer():
    assert [f.status for f in run_check(ROTATE, log_facts())] == [Status.PASS]
    facts = with_probe(
        log_facts(units={"logrotate.timer": ("active", "enabled")}), LOG_PATHS, (0, paths(cron_logrotate=False))
    )
    findings = run_check(ROTATE, facts)
    assert overall(findings) is Status.PASS
    assert "logrotate.timer" in findings[0].message


def test_logrotate_fail_cases():
    assert overall(run_check(ROTATE, log_facts(pkgs=dpkg("rsyslog")))) is Status.FAIL
    findings = run_check(ROTATE, log_facts(files={"/etc/systemd/journald.conf": JOURNALD_DEFAULT}))
    assert overall(findings) is Status.FAIL and "missing" in findings[0].message
    findings = run_check(ROTATE, log_facts(files={"/etc/logrotate.conf": "include /etc/logrotate.d\n"}))
    assert overall(findings) is Status.FAIL and "no rotation" in findings[0].message
    facts = with_probe(log_facts(), LOG_PATHS, (0, paths(cron_logrotate=False)))
    findings = run_check(ROTATE, facts)
    assert overall(findings) is Status.FAIL and "nothing runs it" in findings[0].message


def test_logrotate_error_cases():
    assert overall(run_check(ROTATE, log_facts(pkgs=""))) is Status.ERROR
    facts = make_facts(
        {
            PACKAGES: (0, dpkg("logrotate")),
            LOG_CONFIG: (0, dump({}, unreadable=("/etc/logrotate.conf",))),
            LOG_PATHS: (0, paths()),
            SERVICES: (0, snapshot()),
        }
    )
    assert overall(run_check(ROTATE, facts)) is Status.ERROR
    facts = make_facts(
        {PACKAGES: (0, dpkg("logrotate")), LOG_CONFIG: timed_out(), LOG_PATHS: (0, paths()), SERVICES: (0, snapshot())}
    )
    assert overall(run_check(ROTATE, facts)) is Status.ERROR
    facts = make_facts(
        {
            PACKAGES: (0, dpkg("logrotate")),
            LOG_CONFIG: (0, dump({"/etc/logrotate.conf": "weekly"})),
            LOG_PATHS: (0, "???"),
            SERVICES: (0, "???"),
        }
    )
    assert overall(run_check(ROTATE, facts)) is Status.ERROR


@pytest.mark.parametrize("check_id", [JOURNAL, AUDITD, ROTATE])
def test_missing_probes_error(check_id):
    assert overall(run_check(check_id, make_facts({}))) is Status.ERROR


def test_journal_config_ignored_without_systemd():
    # /var/log/journal exists but journald is not running: only a syslog daemon keeps logs
    facts = log_facts(journal=True, systemd=False, pid1="init")
    findings = run_check(JOURNAL, facts)
    assert overall(findings) is Status.FAIL
    assert "no syslog daemon" in findings[0].message


def test_perms_probe_keeps_a_log_file_named_with_a_newline_as_one_entry(tmp_path):
    # before: "644 /var/log/a" (a wrong path) plus an unparsed "b"; now the real name, with its mode
    import subprocess

    from checks.logging.log_management import LOG_MODES as PROBE

    odd = tmp_path / "app\n666 forged.log"
    odd.write_text("")
    odd.chmod(0o644)
    (tmp_path / "fine.log").write_text("")
    (tmp_path / "fine.log").chmod(0o640)
    command = PROBE.command.replace("/var/log", str(tmp_path))
    proc = subprocess.run(["sh", "-c", command], capture_output=True, timeout=30, check=True)
    findings = run_check(PERMS, modes(proc.stdout.decode()))
    assert overall(findings) is Status.FAIL
    assert f"1 log file(s) open to all users: {odd} (0644)" in findings[0].message
