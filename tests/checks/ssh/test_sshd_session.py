"""checks/ssh/sshd_session.py on canned sshd -T output and sshd_config dumps."""

from __future__ import annotations

import pytest
from helpers import SSHD_T_NEEDS_ROOT, files_dump, overall, run_check, sshd_facts, sshd_t

from itops.model import Status

CASES = [
    (
        "ssh.x11_forwarding_disabled",
        {"x11forwarding": "no", "disableforwarding": "no"},
        {"x11forwarding": "yes", "disableforwarding": "no"},
        "X11Forwarding yes\n",
    ),
    ("ssh.forwarding_disabled", {"disableforwarding": "yes"}, {"disableforwarding": "no"}, "# not set\n"),
    ("ssh.login_grace_time_limited", {"logingracetime": "45"}, {"logingracetime": "0"}, "LoginGraceTime 2m\n"),
    (
        "ssh.client_alive_configured",
        {"clientaliveinterval": "300", "clientalivecountmax": "1"},
        {"clientaliveinterval": "0"},
        "ClientAliveInterval 15\nClientAliveCountMax 0\n",
    ),
    ("ssh.banner_configured", {"banner": "/etc/issue.net"}, {"banner": "none"}, "Banner none\n"),
    ("ssh.log_level_adequate", {"loglevel": "INFO"}, {"loglevel": "QUIET"}, "LogLevel DEBUG3\n"),
    ("ssh.max_sessions_limited", {"maxsessions": "4"}, {"maxsessions": "64"}, "MaxSessions 11\n"),
    ("ssh.max_startups_limited", {"maxstartups": "5:50:5"}, {"maxstartups": "10:30:100"}, "# default 10:30:100\n"),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize(("check_id", "good", "bad", "config"), CASES, ids=IDS)
def test_pass_on_compliant_sshd_t(check_id, good, bad, config):
    findings = run_check(check_id, sshd_facts(t=(0, sshd_t(**good))))
    assert [f.status for f in findings] == [Status.PASS], findings


@pytest.mark.parametrize(("check_id", "good", "bad", "config"), CASES, ids=IDS)
def test_fail_on_weak_sshd_t(check_id, good, bad, config):
    findings = run_check(check_id, sshd_facts(t=(0, sshd_t(**bad))))
    assert overall(findings) is Status.FAIL, findings


@pytest.mark.parametrize(("check_id", "good", "bad", "config"), CASES, ids=IDS)
def test_fail_from_files(check_id, good, bad, config):
    facts = sshd_facts(t=SSHD_T_NEEDS_ROOT, files=(0, files_dump({"/etc/ssh/sshd_config": config})))
    assert overall(run_check(check_id, facts)) is Status.FAIL


@pytest.mark.parametrize("check_id", IDS)
@pytest.mark.parametrize(
    ("t", "files"),
    [
        (SSHD_T_NEEDS_ROOT, (0, files_dump({}, unreadable={"/etc/ssh/sshd_config": ""}))),
        ((0, "garbage\n"), (0, "@FILE\t600 0 0\t/etc/ssh/sshd_config\nPermitRootLogin no\n")),
        (SSHD_T_NEEDS_ROOT, (0, files_dump({"/etc/ssh/sshd_config": "Include missing.conf\n"}))),
    ],
    ids=["unreadable", "garbage", "include-not-expanded"],
)
def test_error_when_config_unknown(check_id, t, files):
    findings = run_check(check_id, sshd_facts(t=t, files=files))
    assert [f.status for f in findings] == [Status.ERROR], findings


@pytest.mark.parametrize(
    ("check_id", "overrides"),
    [
        ("ssh.login_grace_time_limited", {"logingracetime": "1 minute"}),
        ("ssh.client_alive_configured", {"clientalivecountmax": "x"}),
        ("ssh.max_startups_limited", {"maxstartups": "10:30"}),
        ("ssh.max_sessions_limited", {"maxsessions": "-"}),
    ],
)
def test_unparseable_values_are_errors(check_id, overrides):
    findings = run_check(check_id, sshd_facts(t=(0, sshd_t(**overrides))))
    assert [f.status for f in findings] == [Status.ERROR]


def test_disable_forwarding_covers_x11():
    facts = sshd_facts(t=(0, sshd_t(x11forwarding="yes", disableforwarding="yes")))
    assert overall(run_check("ssh.x11_forwarding_disabled", facts)) is Status.PASS


def test_login_grace_time_units_and_limit_var():
    facts = sshd_facts(t=SSHD_T_NEEDS_ROOT, files=(0, files_dump({"/etc/ssh/sshd_config": "LoginGraceTime 1m30s\n"})))
    [f] = run_check("ssh.login_grace_time_limited", facts)
    assert f.status is Status.FAIL and "1m30s (90s)" in f.message
    assert overall(run_check("ssh.login_grace_time_limited", facts, ssh_login_grace_time_max=90)) is Status.PASS


def test_client_alive_count_zero_disables_cutoff():
    facts = sshd_facts(t=(0, sshd_t(clientaliveinterval="15", clientalivecountmax="0")))
    assert overall(run_check("ssh.client_alive_configured", facts)) is Status.FAIL


def test_client_alive_interval_var():
    facts = sshd_facts(t=(0, sshd_t(clientaliveinterval="600")))
    assert overall(run_check("ssh.client_alive_configured", facts)) is Status.FAIL
    assert overall(run_check("ssh.client_alive_configured", facts, ssh_client_alive_interval_max=600)) is Status.PASS


def test_max_startups_single_number_is_hard_limit():
    assert (
        overall(run_check("ssh.max_startups_limited", sshd_facts(t=(0, sshd_t(maxstartups="10:100:10")))))
        is Status.PASS
    )
    facts = sshd_facts(t=SSHD_T_NEEDS_ROOT, files=(0, files_dump({"/etc/ssh/sshd_config": "MaxStartups 8\n"})))
    assert overall(run_check("ssh.max_startups_limited", facts)) is Status.PASS


def test_log_level_case_insensitive_in_files():
    facts = sshd_facts(t=SSHD_T_NEEDS_ROOT, files=(0, files_dump({"/etc/ssh/sshd_config": "loglevel verbose\n"})))
    assert overall(run_check("ssh.log_level_adequate", facts)) is Status.PASS


def test_banner_under_match_none_fails():
    config = "Banner /etc/issue.net\nMatch User svc\n  Banner none\n"
    findings = run_check("ssh.banner_configured", sshd_facts(files=(0, files_dump({"/etc/ssh/sshd_config": config}))))
    assert [f.status for f in findings] == [Status.PASS, Status.FAIL]
