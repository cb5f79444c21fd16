"""checks/kernel/sysctl_network.py on canned /proc/sys probe output."""

from __future__ import annotations

import pytest
from helpers import make_facts, not_found, overall, run_check, timed_out
from kernel_canned import HARDENED, NO_IPV6, PROC_SYS, facts, proc_sys

from itops.checklib.sysctl import ABSENT, AUDITED_KEYS, UNREADABLE
from itops.model import Status


def test_baseline_covers_every_audited_key():
    assert set(HARDENED) == set(AUDITED_KEYS)
    assert set(NO_IPV6) <= set(AUDITED_KEYS)


# check id, overrides that make it FAIL, a key whose absence makes it ERROR
CASES = [
    ("kernel.ip_forwarding_disabled", {"net.ipv6.conf.all.forwarding": "1"}, "net.ipv4.ip_forward"),
    (
        "kernel.icmp_redirects_not_sent",
        {"net.ipv4.conf.default.send_redirects": "1"},
        "net.ipv4.conf.all.send_redirects",
    ),
    (
        "kernel.bogus_icmp_responses_ignored",
        {"net.ipv4.icmp_ignore_bogus_error_responses": "0"},
        "net.ipv4.icmp_ignore_bogus_error_responses",
    ),
    (
        "kernel.icmp_broadcasts_ignored",
        {"net.ipv4.icmp_echo_ignore_broadcasts": "0"},
        "net.ipv4.icmp_echo_ignore_broadcasts",
    ),
    (
        "kernel.icmp_redirects_not_accepted",
        {"net.ipv6.conf.default.accept_redirects": "1"},
        "net.ipv4.conf.all.accept_redirects",
    ),
    (
        "kernel.secure_redirects_not_accepted",
        {"net.ipv4.conf.all.secure_redirects": "1"},
        "net.ipv4.conf.default.secure_redirects",
    ),
    ("kernel.rp_filter_enabled", {"net.ipv4.conf.all.rp_filter": "2"}, "net.ipv4.conf.all.rp_filter"),
    (
        "kernel.source_routing_disabled",
        {"net.ipv4.conf.default.accept_source_route": "1"},
        "net.ipv6.conf.all.accept_source_route",
    ),
    ("kernel.martians_logged", {"net.ipv4.conf.all.log_martians": "0"}, "net.ipv4.conf.default.log_martians"),
    ("kernel.tcp_syncookies_enabled", {"net.ipv4.tcp_syncookies": "0"}, "net.ipv4.tcp_syncookies"),
    (
        "kernel.ipv6_router_advertisements_not_accepted",
        {"net.ipv6.conf.all.accept_ra": "1"},
        "net.ipv6.conf.default.accept_ra",
    ),
]
IDS = [c[0] for c in CASES]


@pytest.mark.parametrize(("check_id", "bad", "key"), CASES, ids=IDS)
def test_pass_on_hardened_values(check_id, bad, key):
    findings = run_check(check_id, facts())
    assert [f.status for f in findings] == [Status.PASS], findings


@pytest.mark.parametrize(("check_id", "bad", "key"), CASES, ids=IDS)
def test_fail_on_weak_value(check_id, bad, key):
    findings = run_check(check_id, facts(proc_sys(bad)))
    assert overall(findings) is Status.FAIL
    assert next(iter(bad)) in findings[0].message


@pytest.mark.parametrize(("check_id", "bad", "key"), CASES, ids=IDS)
def test_error_when_key_unreadable_or_missing_from_output(check_id, bad, key):
    assert overall(run_check(check_id, facts(proc_sys({key: UNREADABLE})))) is Status.ERROR
    assert overall(run_check(check_id, facts(proc_sys({key: None})))) is Status.ERROR


@pytest.mark.parametrize(("check_id", "bad", "key"), CASES, ids=IDS)
def test_error_on_garbage_timeout_and_missing_shell(check_id, bad, key):
    assert overall(run_check(check_id, facts("Segmentation fault\n"))) is Status.ERROR
    assert overall(run_check(check_id, make_facts({PROC_SYS: timed_out()}))) is Status.ERROR
    assert overall(run_check(check_id, make_facts({PROC_SYS: not_found("sh")}))) is Status.ERROR
    assert overall(run_check(check_id, make_facts({}))) is Status.ERROR


def test_wrong_value_fails_even_when_another_key_is_unreadable():
    text = proc_sys({"net.ipv4.conf.all.accept_redirects": "1", "net.ipv6.conf.all.accept_redirects": UNREADABLE})
    findings = run_check("kernel.icmp_redirects_not_accepted", facts(text))
    assert overall(findings) is Status.FAIL
    assert "could not assess" in findings[0].message


def test_ipv6_only_check_skipped_without_ipv6():
    findings = run_check("kernel.ipv6_router_advertisements_not_accepted", facts(proc_sys(NO_IPV6)))
    assert overall(findings) is Status.SKIPPED
    assert "IPv6" in findings[0].message


def test_ipv6_disabled_by_sysctl_skips_ipv6_keys():
    text = proc_sys({"net.ipv6.conf.all.disable_ipv6": "1", "net.ipv6.conf.all.forwarding": "1"})
    assert overall(run_check("kernel.ip_forwarding_disabled", facts(text))) is Status.PASS


def test_mixed_check_passes_on_ipv4_alone_without_ipv6():
    findings = run_check("kernel.source_routing_disabled", facts(proc_sys(NO_IPV6)))
    assert overall(findings) is Status.PASS
    assert "IPv6 disabled" in findings[0].message


def test_ipv6_key_absent_while_ipv6_enabled_is_error():
    text = proc_sys({"net.ipv6.conf.all.accept_ra": ABSENT})
    assert overall(run_check("kernel.ipv6_router_advertisements_not_accepted", facts(text))) is Status.ERROR


def test_ip_forwarding_allowed_on_routers():
    findings = run_check(
        "kernel.ip_forwarding_disabled", facts(proc_sys({"net.ipv4.ip_forward": "1"})), ip_forwarding_allowed=True
    )
    assert overall(findings) is Status.SKIPPED
    assert (
        overall(run_check("kernel.ip_forwarding_disabled", facts(proc_sys({"net.ipv4.ip_forward": "1"}))))
        is Status.FAIL
    )


def test_ip_forwarding_param_must_be_bool():
    with pytest.raises(ValueError, match="ip_forwarding_allowed"):
        run_check("kernel.ip_forwarding_disabled", facts(), ip_forwarding_allowed="yes")


def test_values_with_odd_whitespace_are_normalised():
    text = proc_sys().replace("randomize_va_space=2", "randomize_va_space= 2 ")
    assert overall(run_check("kernel.aslr_enabled", facts(text))) is Status.PASS


def test_remediation_is_an_exact_command():
    from helpers import registry

    for check_id, *_ in CASES:
        remediation = registry().get(check_id).meta.remediation
        assert "> /etc/sysctl.d/60-itops-" in remediation and "sysctl --system" in remediation, check_id
