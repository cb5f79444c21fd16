"""checks/services/network_exposure.py: listening ports, legacy services and the firewall on canned output."""

from __future__ import annotations

import pytest
from helpers import RHEL_9, make_facts, not_found, overall, run_check, timed_out
from services_canned import (
    DHCP,
    FIREWALL,
    IPT_ACCEPT,
    IPT_DROP,
    IPT_FINAL_REJECT,
    LISTENING,
    NFT_ACCEPT,
    NFT_FIREWALLD,
    NFT_INET_DROP,
    NFT_IPV4_ONLY,
    NGINX,
    NOT_ROOT_IPT,
    NOT_ROOT_NFT,
    PACKAGES,
    PROC_NET,
    RESOLVED,
    SSHD_V4,
    SSHD_V6,
    TELNETD,
    dpkg,
    firewall,
    rpm,
    ss,
)

from itops.model import Status

# --- services.listening_ports_allowlisted ---------------------------------------------------------

PORTS = "services.listening_ports_allowlisted"


def ports(text: str, rc: int = 0):
    return make_facts({LISTENING: (rc, text)})


def test_ports_pass_with_only_ssh_and_loopback_dns():
    findings = run_check(PORTS, ports(ss(SSHD_V4, SSHD_V6, RESOLVED)))
    assert [f.status for f in findings] == [Status.PASS], findings
    assert "tcp/22 (sshd)" in findings[0].message
    assert "53" not in findings[0].message  # loopback-only listeners are not network exposure


def test_ports_pass_when_nothing_listens():
    assert overall(run_check(PORTS, ports(ss()))) is Status.PASS


def test_ports_fail_reports_port_proto_and_process():
    findings = run_check(PORTS, ports(ss(SSHD_V4, NGINX, DHCP)))
    assert overall(findings) is Status.FAIL
    msg = findings[0].message
    assert "tcp/8080 (nginx) on *" in msg
    assert "udp/68 (dhclient)" in msg
    assert "tcp/22" not in msg.split(":", 1)[1].split("port(s) not allow-listed")[0]


def test_ports_allowlist_param_accepts_ports_and_port_proto():
    findings = run_check(PORTS, ports(ss(SSHD_V4, NGINX, DHCP)), listening_ports_allowed=[22, "8080/tcp", "68/udp"])
    assert overall(findings) is Status.PASS
    # a tcp-only entry does not allow the same port on udp
    findings = run_check(PORTS, ports(ss(SSHD_V4, DHCP)), listening_ports_allowed=[22, "68/tcp"])
    assert overall(findings) is Status.FAIL


def test_ports_loopback_included_on_request():
    findings = run_check(PORTS, ports(ss(SSHD_V4, RESOLVED)), listening_ports_include_loopback=True)
    assert overall(findings) is Status.FAIL
    assert "udp/53 (systemd-resolve)" in findings[0].message


def test_ports_bad_allowlist_entry_is_error():
    findings = run_check(PORTS, ports(ss(SSHD_V4)), listening_ports_allowed=["ssh"])
    assert overall(findings) is Status.ERROR
    assert "listening_ports_allowed" in findings[0].message


def test_ports_proc_net_fallback_without_ss():
    findings = run_check(PORTS, ports(PROC_NET))
    assert overall(findings) is Status.FAIL
    msg = findings[0].message
    assert "tcp/8080 (process unknown) on ::" in msg  # from tcp6
    assert "631" not in msg  # 127.0.0.1:631 is loopback
    findings = run_check(PORTS, ports(PROC_NET), listening_ports_allowed=[22, 8080])
    assert overall(findings) is Status.PASS


@pytest.mark.parametrize(
    "text",
    [
        "ss: command failed\n",
        "@@itops-ss\ntcp LISTEN garbage\n",  # no header
        "@@itops-ss\n" + "Netid State Recv-Q Send-Q Local Address:Port Peer Address:Port\n" + "weird line here\n",
        "@@itops-proc /proc/net/udp\n  sl local_address\n",  # no /proc/net/tcp
        "",
    ],
)
def test_ports_garbage_is_error(text):
    assert overall(run_check(PORTS, ports(text))) is Status.ERROR


def test_ports_broken_probe_is_error():
    assert overall(run_check(PORTS, ports(ss(SSHD_V4), rc=1))) is Status.ERROR
    assert overall(run_check(PORTS, make_facts({LISTENING: timed_out()}))) is Status.ERROR
    assert overall(run_check(PORTS, make_facts({LISTENING: not_found("ss")}))) is Status.ERROR


# --- services.legacy_services_absent --------------------------------------------------------------

LEGACY = "services.legacy_services_absent"


def legacy(pkgs: str, socks: str | None = None, **kw):
    return make_facts({PACKAGES: (0, pkgs), LISTENING: (0, ss(SSHD_V4) if socks is None else socks)}, **kw)


def test_legacy_pass_debian_and_rhel():
    findings = run_check(LEGACY, legacy(dpkg("openssh-server", "chrony", removed=("telnetd",))))
    assert [f.status for f in findings] == [Status.PASS], findings
    assert overall(run_check(LEGACY, legacy(rpm("openssh-server"), os_release=RHEL_9))) is Status.PASS


def test_legacy_fail_on_package():
    findings = run_check(LEGACY, legacy(dpkg("openssh-server", "telnetd", "tftpd-hpa")))
    assert overall(findings) is Status.FAIL
    assert "telnetd" in findings[0].message and "tftpd-hpa" in findings[0].message
    assert overall(run_check(LEGACY, legacy(rpm("vsftpd"), os_release=RHEL_9))) is Status.FAIL


def test_legacy_fail_on_listening_port_even_without_package():
    findings = run_check(LEGACY, legacy(dpkg(), ss(SSHD_V4, TELNETD)))
    assert overall(findings) is Status.FAIL
    assert "tcp/23 (inetd)" in findings[0].message


def test_legacy_fail_when_one_source_found_something_and_other_unknown():
    findings = run_check(LEGACY, make_facts({PACKAGES: (0, dpkg("xinetd")), LISTENING: not_found("ss")}))
    assert overall(findings) is Status.FAIL


def test_legacy_error_when_packages_unknown():
    for pkgs in ("", "@@itops-pm dpkg\n", "dpkg: error: database locked\n"):
        assert overall(run_check(LEGACY, legacy(pkgs))) is Status.ERROR
    findings = run_check(LEGACY, make_facts({PACKAGES: not_found("dpkg-query"), LISTENING: (0, ss(SSHD_V4))}))
    assert overall(findings) is Status.ERROR
    findings = run_check(LEGACY, make_facts({PACKAGES: (0, dpkg()), LISTENING: timed_out()}))
    assert overall(findings) is Status.ERROR


def test_legacy_package_list_is_overridable():
    findings = run_check(LEGACY, legacy(dpkg("openssh-server", "telnetd")), legacy_packages=["rsh-server"])
    assert overall(findings) is Status.PASS


# --- services.firewall_default_deny ---------------------------------------------------------------

FW = "services.firewall_default_deny"


def fw(text: str, rc: int = 0):
    return make_facts({FIREWALL: (rc, text)})


@pytest.mark.parametrize(
    "text",
    [
        firewall(nft=(0, NFT_INET_DROP)),
        firewall(nft=(0, NFT_FIREWALLD)),
        firewall(iptables=(0, IPT_DROP), ip6tables=(0, IPT_DROP)),
        firewall(iptables=(0, IPT_FINAL_REJECT), ip6tables=(0, IPT_DROP)),
        firewall(nft=(0, NFT_IPV4_ONLY), ipv6="1"),  # IPv6 disabled: IPv4 coverage is enough
        firewall(nft=(0, NFT_IPV4_ONLY), ip6tables=(0, IPT_DROP)),  # union of tools
    ],
    ids=["nft-inet", "firewalld", "iptables", "final-reject", "ipv4-only-host", "nft-plus-ip6tables"],
)
def test_firewall_pass(text):
    findings = run_check(FW, fw(text))
    assert [f.status for f in findings] == [Status.PASS], findings


@pytest.mark.parametrize(
    ("text", "gap"),
    [
        (firewall(nft=(0, NFT_ACCEPT)), "IPv4 and IPv6"),
        (firewall(nft=(0, "")), "IPv4 and IPv6"),  # nftables installed, no rules loaded
        (firewall(iptables=(0, IPT_ACCEPT), ip6tables=(0, IPT_ACCEPT)), "IPv4 and IPv6"),
        (firewall(nft=(0, NFT_IPV4_ONLY)), "IPv6"),
        (firewall(iptables=(0, IPT_DROP), ip6tables=(0, IPT_ACCEPT)), "IPv6"),
    ],
    ids=["nft-accept", "nft-empty", "iptables-accept", "ipv6-open", "ip6tables-accept"],
)
def test_firewall_fail(text, gap):
    findings = run_check(FW, fw(text))
    assert overall(findings) is Status.FAIL
    assert f"not denied by default for {gap} " in findings[0].message


def test_firewall_no_tool_is_fail():
    findings = run_check(FW, fw(firewall()))
    assert overall(findings) is Status.FAIL
    assert "no firewall found" in findings[0].message


def test_firewall_not_root_is_error_not_fail():
    findings = run_check(FW, fw(firewall(nft=NOT_ROOT_NFT, iptables=NOT_ROOT_IPT, ip6tables=NOT_ROOT_IPT)))
    assert overall(findings) is Status.ERROR
    assert "needs root" in findings[0].message


def test_firewall_readable_deny_wins_over_unreadable_tool():
    findings = run_check(FW, fw(firewall(nft=(0, NFT_INET_DROP), iptables=NOT_ROOT_IPT, ip6tables=NOT_ROOT_IPT)))
    assert overall(findings) is Status.PASS


@pytest.mark.parametrize("text", ["", "garbage\n", "@@itops-ipv6 0\n@@itops-tool nft x\n"])
def test_firewall_garbage_is_error(text):
    assert overall(run_check(FW, fw(text))) is Status.ERROR


def test_firewall_broken_probe_is_error():
    assert overall(run_check(FW, make_facts({FIREWALL: timed_out()}))) is Status.ERROR
    assert overall(run_check(FW, make_facts({FIREWALL: not_found("sh")}))) is Status.ERROR
