"""checks/services/system_daemons.py: time synchronization and cron on canned service probe output."""

from __future__ import annotations

import pytest
from helpers import make_facts, not_found, overall, run_check, timed_out
from services_canned import SERVICES, snapshot

from itops.model import Status


def facts(text: str, rc: int = 0):
    return make_facts({SERVICES: (rc, text)})


# --- services.time_sync_active ------------------------------------------------------------------

TIME = "services.time_sync_active"


@pytest.mark.parametrize(
    "units",
    [
        {"chrony": ("active", "enabled"), "chronyd": ("active", "alias")},  # Debian: chronyd is an alias
        {"systemd-timesyncd": ("active", "enabled")},
        {"ntpsec": ("active", "enabled"), "ntp": ("active", "alias")},
    ],
)
def test_time_sync_pass_with_one_daemon(units):
    findings = run_check(TIME, facts(snapshot(units)))
    assert [f.status for f in findings] == [Status.PASS], findings


def test_time_sync_fail_without_daemon():
    findings = run_check(TIME, facts(snapshot({"systemd-timesyncd": ("inactive", "disabled")})))
    assert overall(findings) is Status.FAIL
    assert "no time synchronization daemon" in findings[0].message


def test_time_sync_fail_with_two_daemons():
    units = {"chrony": ("active", "enabled"), "systemd-timesyncd": ("active", "enabled")}
    findings = run_check(TIME, facts(snapshot(units)))
    assert overall(findings) is Status.FAIL
    assert "chrony" in findings[0].message and "systemd-timesyncd" in findings[0].message


def test_time_sync_other_init_uses_processes():
    assert overall(run_check(TIME, facts(snapshot(systemd=False, pid1="init", procs=("chronyd",))))) is Status.PASS
    assert overall(run_check(TIME, facts(snapshot(systemd=False, pid1="openrc-init", procs=("crond",))))) is Status.FAIL


def test_time_sync_container_without_init_is_not_applicable_unless_a_daemon_is_installed():
    # the clock of a container is its machine's kernel clock: nothing to sync inside it
    findings = run_check(TIME, facts(snapshot(systemd=False, pid1="python3", container="docker")))
    assert overall(findings) is Status.SKIPPED
    assert "not applicable" in findings[0].message and "docker container" in findings[0].message
    assert overall(run_check(TIME, facts(snapshot(systemd=False, pid1="bash")))) is Status.SKIPPED
    # a daemon installed but not running: nothing will ever start it there
    findings = run_check(TIME, facts(snapshot(systemd=False, pid1="sshd", container="docker", installed=("chrony",))))
    assert overall(findings) is Status.FAIL
    assert "chrony installed but not running" in findings[0].message
    # one running in the container is judged as usual
    running = snapshot(systemd=False, pid1="sshd", container="docker", installed=("chrony",), procs=("chronyd",))
    assert overall(run_check(TIME, facts(running))) is Status.PASS


@pytest.mark.parametrize("check_id", [TIME, "services.cron_daemon_enabled"])
def test_garbage_and_broken_probe_is_error(check_id):
    assert overall(run_check(check_id, facts("Permission denied\n"))) is Status.ERROR
    assert overall(run_check(check_id, facts("", rc=1))) is Status.ERROR
    assert overall(run_check(check_id, make_facts({SERVICES: timed_out()}))) is Status.ERROR
    assert overall(run_check(check_id, make_facts({SERVICES: not_found("sh")}))) is Status.ERROR


@pytest.mark.parametrize("check_id", [TIME, "services.cron_daemon_enabled"])
def test_silent_systemctl_is_error(check_id):
    # systemd detected but systemctl printed nothing for any unit (e.g. no D-Bus in a chroot)
    text = "pid1=systemd\nsystemd=yes\n" + "".join(
        f"unit {u}\n"
        for u in (
            "chrony",
            "chronyd",
            "systemd-timesyncd",
            "ntp",
            "ntpd",
            "ntpsec",
            "openntpd",
            "cron",
            "crond",
            "cronie",
        )
    )
    assert overall(run_check(check_id, facts(text))) is Status.ERROR


# --- services.cron_daemon_enabled -----------------------------------------------------------------

CRON = "services.cron_daemon_enabled"


@pytest.mark.parametrize("unit", ["cron", "crond"])
def test_cron_pass(unit):
    findings = run_check(CRON, facts(snapshot({unit: ("active", "enabled")})))
    assert [f.status for f in findings] == [Status.PASS], findings


def test_cron_fail_when_disabled_or_stopped():
    findings = run_check(CRON, facts(snapshot({"cron": ("active", "disabled")})))
    assert overall(findings) is Status.FAIL
    assert "cron: active/disabled" in findings[0].message
    assert overall(run_check(CRON, facts(snapshot({"crond": ("inactive", "masked")})))) is Status.FAIL


def test_cron_not_installed_is_not_applicable():
    findings = run_check(CRON, facts(snapshot()))
    assert overall(findings) is Status.SKIPPED
    assert "cron is not installed" in findings[0].message
    assert overall(run_check(CRON, facts(snapshot(systemd=False, pid1="sshd", container="docker")))) is Status.SKIPPED


def test_cron_without_systemd():
    assert overall(run_check(CRON, facts(snapshot(systemd=False, pid1="init", procs=("crond",))))) is Status.PASS
    findings = run_check(CRON, facts(snapshot(systemd=False, pid1="init", installed=("cron",))))
    assert overall(findings) is Status.FAIL
    assert "cron is installed but no cron process is running (init init)" in findings[0].message
    # a container whose PID 1 is its application: an installed cron that is not running never runs
    findings = run_check(CRON, facts(snapshot(systemd=False, pid1="sleep", container="docker", installed=("cron",))))
    assert overall(findings) is Status.FAIL
    assert "docker container without an init system" in findings[0].message
    running = snapshot(systemd=False, pid1="sshd", container="docker", installed=("cron",), procs=("cron",))
    assert overall(run_check(CRON, facts(running))) is Status.PASS
