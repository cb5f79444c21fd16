"""Kernel network parameters (CIS section 3.3): routing, redirects, source routing, spoofing, SYN floods.

All checks read the running values from /proc/sys through one shared probe; a value
that cannot be read is an ERROR, IPv6 parameters on a host without IPv6 are skipped.
"""

from __future__ import annotations

from itops.checkapi import Facts, Finding, Params, Severity, host_check, quote
from itops.checklib import sysctl
from itops.checklib.sysctl import Expect

PROC_SYS = sysctl.proc_sys_probe()

_ROUTE_FLUSH = "sysctl -w net.ipv4.route.flush=1"


def _fix(conf: str, *settings: str) -> str:
    """The exact remediation: write a drop-in, load it, flush the routing cache."""
    lines = " ".join(quote(s) for s in settings)
    return (
        "Remove conflicting settings of these keys from /etc/sysctl.conf and /etc/sysctl.d/*.conf, then run: "
        f"printf '%s\\n' {lines} > /etc/sysctl.d/{conf} && sysctl --system && {_ROUTE_FLUSH}"
    )


@host_check(
    id="kernel.ip_forwarding_disabled",
    fix={"sysctl": {"net.ipv4.ip_forward": "0", "net.ipv6.conf.all.forwarding": "0"}},
    title="IP forwarding is disabled (IPv4 and IPv6)",
    severity=Severity.MEDIUM,
    rationale=(
        "A host that forwards packets between interfaces acts as a router and can bridge networks "
        "that are meant to stay apart. Only routers, VPN gateways and container hosts need it; set "
        "the ip_forwarding_allowed var to true for them."
    ),
    remediation=_fix("60-itops-ip-forwarding.conf", "net.ipv4.ip_forward = 0", "net.ipv6.conf.all.forwarding = 0"),
    frameworks={"cis-debian-12": ["3.3.1"], "nist-800-53": ["CM-7", "SC-7"], "iso-27001": ["A.8.20", "A.8.22"]},
    probes=[PROC_SYS],
    params={"ip_forwarding_allowed": False},
)
def ip_forwarding_disabled(facts: Facts, params: Params) -> Finding:
    """Verifies net.ipv4.ip_forward and net.ipv6.conf.all.forwarding are 0 unless the host is a router."""
    if params["ip_forwarding_allowed"]:
        return Finding.skipped("forwarding is allowed on this host (ip_forwarding_allowed: true)")
    return sysctl.judge_proc_sys(
        facts,
        [Expect("net.ipv4.ip_forward", ("0",)), Expect("net.ipv6.conf.all.forwarding", ("0",), ipv6=True)],
    )


@host_check(
    id="kernel.icmp_redirects_not_sent",
    fix={"sysctl": {"net.ipv4.conf.all.send_redirects": "0", "net.ipv4.conf.default.send_redirects": "0"}},
    title="The host does not send ICMP redirects",
    severity=Severity.MEDIUM,
    rationale=(
        "ICMP redirects tell other hosts to route through a different gateway. Only routers should send "
        "them; an attacker who controls a host that sends them can corrupt its neighbours' routing tables."
    ),
    remediation=_fix(
        "60-itops-send-redirects.conf",
        "net.ipv4.conf.all.send_redirects = 0",
        "net.ipv4.conf.default.send_redirects = 0",
    ),
    frameworks={"cis-debian-12": ["3.3.2"], "nist-800-53": ["CM-7", "SC-7"], "iso-27001": ["A.8.20"]},
    probes=[PROC_SYS],
)
def icmp_redirects_not_sent(facts: Facts, params: Params) -> Finding:
    """Verifies net.ipv4.conf.{all,default}.send_redirects are 0."""
    return sysctl.judge_proc_sys(
        facts,
        [
            Expect("net.ipv4.conf.all.send_redirects", ("0",)),
            Expect("net.ipv4.conf.default.send_redirects", ("0",)),
        ],
    )


@host_check(
    id="kernel.bogus_icmp_responses_ignored",
    fix={"sysctl": {"net.ipv4.icmp_ignore_bogus_error_responses": "1"}},
    title="Bogus ICMP error responses are ignored",
    severity=Severity.LOW,
    rationale="Ignoring malformed ICMP error responses keeps the kernel log from filling with junk an attacker sends.",
    remediation=_fix("60-itops-icmp-bogus.conf", "net.ipv4.icmp_ignore_bogus_error_responses = 1"),
    frameworks={"cis-debian-12": ["3.3.3"], "nist-800-53": ["SC-5", "CM-6"], "iso-27001": ["A.8.20"]},
    probes=[PROC_SYS],
)
def bogus_icmp_responses_ignored(facts: Facts, params: Params) -> Finding:
    """Verifies net.ipv4.icmp_ignore_bogus_error_responses is 1."""
    return sysctl.judge_proc_sys(facts, [Expect("net.ipv4.icmp_ignore_bogus_error_responses", ("1",))])


@host_check(
    id="kernel.icmp_broadcasts_ignored",
    fix={"sysctl": {"net.ipv4.icmp_echo_ignore_broadcasts": "1"}},
    title="ICMP echo requests to broadcast addresses are ignored",
    severity=Severity.LOW,
    rationale="Answering broadcast pings makes the host an amplifier in Smurf denial-of-service attacks.",
    remediation=_fix("60-itops-icmp-broadcasts.conf", "net.ipv4.icmp_echo_ignore_broadcasts = 1"),
    frameworks={"cis-debian-12": ["3.3.4"], "nist-800-53": ["SC-5", "CM-6"], "iso-27001": ["A.8.20"]},
    probes=[PROC_SYS],
)
def icmp_broadcasts_ignored(facts: Facts, params: Params) -> Finding:
    """Verifies net.ipv4.icmp_echo_ignore_broadcasts is 1."""
    return sysctl.judge_proc_sys(facts, [Expect("net.ipv4.icmp_echo_ignore_broadcasts", ("1",))])


@host_check(
    id="kernel.icmp_redirects_not_accepted",
    fix={
        "sysctl": {
            "net.ipv4.conf.all.accept_redirects": "0",
            "net.ipv4.conf.default.accept_redirects": "0",
            "net.ipv6.conf.all.accept_redirects": "0",
            "net.ipv6.conf.default.accept_redirects": "0",
        },
    },
    title="ICMP redirects are not accepted (IPv4 and IPv6)",
    severity=Severity.MEDIUM,
    rationale=(
        "An accepted ICMP redirect rewrites the host's routing table; a forged one sends its traffic "
        "through an attacker (man in the middle)."
    ),
    remediation=_fix(
        "60-itops-accept-redirects.conf",
        "net.ipv4.conf.all.accept_redirects = 0",
        "net.ipv4.conf.default.accept_redirects = 0",
        "net.ipv6.conf.all.accept_redirects = 0",
        "net.ipv6.conf.default.accept_redirects = 0",
    ),
    frameworks={"cis-debian-12": ["3.3.5"], "nist-800-53": ["CM-7", "SC-7"], "iso-27001": ["A.8.20"]},
    probes=[PROC_SYS],
)
def icmp_redirects_not_accepted(facts: Facts, params: Params) -> Finding:
    """Verifies accept_redirects is 0 for IPv4 and IPv6, all and default interfaces."""
    return sysctl.judge_proc_sys(
        facts,
        [
            Expect("net.ipv4.conf.all.accept_redirects", ("0",)),
            Expect("net.ipv4.conf.default.accept_redirects", ("0",)),
            Expect("net.ipv6.conf.all.accept_redirects", ("0",), ipv6=True),
            Expect("net.ipv6.conf.default.accept_redirects", ("0",), ipv6=True),
        ],
    )


@host_check(
    id="kernel.secure_redirects_not_accepted",
    fix={"sysctl": {"net.ipv4.conf.all.secure_redirects": "0", "net.ipv4.conf.default.secure_redirects": "0"}},
    title="Secure ICMP redirects are not accepted",
    severity=Severity.MEDIUM,
    rationale=(
        "Secure redirects are redirects from gateways already in the routing table; a compromised "
        "gateway can still use them to reroute traffic."
    ),
    remediation=_fix(
        "60-itops-secure-redirects.conf",
        "net.ipv4.conf.all.secure_redirects = 0",
        "net.ipv4.conf.default.secure_redirects = 0",
    ),
    frameworks={"cis-debian-12": ["3.3.6"], "nist-800-53": ["CM-7", "SC-7"], "iso-27001": ["A.8.20"]},
    probes=[PROC_SYS],
)
def secure_redirects_not_accepted(facts: Facts, params: Params) -> Finding:
    """Verifies net.ipv4.conf.{all,default}.secure_redirects are 0."""
    return sysctl.judge_proc_sys(
        facts,
        [
            Expect("net.ipv4.conf.all.secure_redirects", ("0",)),
            Expect("net.ipv4.conf.default.secure_redirects", ("0",)),
        ],
    )


@host_check(
    id="kernel.rp_filter_enabled",
    fix={"sysctl": {"net.ipv4.conf.all.rp_filter": "1", "net.ipv4.conf.default.rp_filter": "1"}},
    title="Reverse path filtering is enabled",
    severity=Severity.MEDIUM,
    rationale=(
        "Strict reverse path filtering drops packets whose source address could not be reached through "
        "the interface they arrived on, which defeats most source-address spoofing."
    ),
    remediation=_fix(
        "60-itops-rp-filter.conf", "net.ipv4.conf.all.rp_filter = 1", "net.ipv4.conf.default.rp_filter = 1"
    ),
    frameworks={"cis-debian-12": ["3.3.7"], "nist-800-53": ["SC-7", "SC-5"], "iso-27001": ["A.8.20"]},
    probes=[PROC_SYS],
)
def rp_filter_enabled(facts: Facts, params: Params) -> Finding:
    """Verifies net.ipv4.conf.{all,default}.rp_filter are 1 (strict)."""
    return sysctl.judge_proc_sys(
        facts,
        [Expect("net.ipv4.conf.all.rp_filter", ("1",)), Expect("net.ipv4.conf.default.rp_filter", ("1",))],
    )


@host_check(
    id="kernel.source_routing_disabled",
    fix={
        "sysctl": {
            "net.ipv4.conf.all.accept_source_route": "0",
            "net.ipv4.conf.default.accept_source_route": "0",
            "net.ipv6.conf.all.accept_source_route": "0",
            "net.ipv6.conf.default.accept_source_route": "0",
        },
    },
    title="Source-routed packets are not accepted (IPv4 and IPv6)",
    severity=Severity.MEDIUM,
    rationale=(
        "Source routing lets the sender choose the path a packet takes, which can be used to reach "
        "hosts behind a firewall through this one."
    ),
    remediation=_fix(
        "60-itops-source-route.conf",
        "net.ipv4.conf.all.accept_source_route = 0",
        "net.ipv4.conf.default.accept_source_route = 0",
        "net.ipv6.conf.all.accept_source_route = 0",
        "net.ipv6.conf.default.accept_source_route = 0",
    ),
    frameworks={"cis-debian-12": ["3.3.8"], "nist-800-53": ["CM-7", "SC-7"], "iso-27001": ["A.8.20"]},
    probes=[PROC_SYS],
)
def source_routing_disabled(facts: Facts, params: Params) -> Finding:
    """Verifies accept_source_route is 0 for IPv4 and IPv6, all and default interfaces."""
    return sysctl.judge_proc_sys(
        facts,
        [
            Expect("net.ipv4.conf.all.accept_source_route", ("0",)),
            Expect("net.ipv4.conf.default.accept_source_route", ("0",)),
            Expect("net.ipv6.conf.all.accept_source_route", ("0",), ipv6=True),
            Expect("net.ipv6.conf.default.accept_source_route", ("0",), ipv6=True),
        ],
    )


@host_check(
    id="kernel.martians_logged",
    fix={"sysctl": {"net.ipv4.conf.all.log_martians": "1", "net.ipv4.conf.default.log_martians": "1"}},
    title="Packets with impossible source addresses (martians) are logged",
    severity=Severity.LOW,
    rationale="Logging martian packets leaves a trace of spoofing attempts and misrouted traffic for investigation.",
    remediation=_fix(
        "60-itops-log-martians.conf",
        "net.ipv4.conf.all.log_martians = 1",
        "net.ipv4.conf.default.log_martians = 1",
    ),
    frameworks={
        "cis-debian-12": ["3.3.9"],
        "nist-800-53": ["AU-2", "AU-12", "SI-4"],
        "iso-27001": ["A.8.15", "A.8.16"],
    },
    probes=[PROC_SYS],
)
def martians_logged(facts: Facts, params: Params) -> Finding:
    """Verifies net.ipv4.conf.{all,default}.log_martians are 1."""
    return sysctl.judge_proc_sys(
        facts,
        [Expect("net.ipv4.conf.all.log_martians", ("1",)), Expect("net.ipv4.conf.default.log_martians", ("1",))],
    )


@host_check(
    id="kernel.tcp_syncookies_enabled",
    fix={"sysctl": {"net.ipv4.tcp_syncookies": "1"}},
    title="TCP SYN cookies are enabled",
    severity=Severity.MEDIUM,
    rationale="SYN cookies let the host keep accepting connections while a SYN flood fills its backlog.",
    remediation=_fix("60-itops-syncookies.conf", "net.ipv4.tcp_syncookies = 1"),
    frameworks={"cis-debian-12": ["3.3.10"], "nist-800-53": ["SC-5"], "iso-27001": ["A.8.20"]},
    probes=[PROC_SYS],
)
def tcp_syncookies_enabled(facts: Facts, params: Params) -> Finding:
    """Verifies net.ipv4.tcp_syncookies is 1."""
    return sysctl.judge_proc_sys(facts, [Expect("net.ipv4.tcp_syncookies", ("1",))])


@host_check(
    id="kernel.ipv6_router_advertisements_not_accepted",
    fix={"sysctl": {"net.ipv6.conf.all.accept_ra": "0", "net.ipv6.conf.default.accept_ra": "0"}},
    title="IPv6 router advertisements are not accepted",
    severity=Severity.LOW,
    rationale=(
        "A host that accepts router advertisements lets anyone on the link become its default gateway; "
        "servers should get their IPv6 routes from static configuration. Hosts configured by SLAAC on "
        "purpose can waive this check."
    ),
    remediation=_fix(
        "60-itops-accept-ra.conf",
        "net.ipv6.conf.all.accept_ra = 0",
        "net.ipv6.conf.default.accept_ra = 0",
    ),
    frameworks={"cis-debian-12": ["3.3.11"], "nist-800-53": ["CM-7", "SC-7"], "iso-27001": ["A.8.20"]},
    probes=[PROC_SYS],
)
def ipv6_router_advertisements_not_accepted(facts: Facts, params: Params) -> Finding:
    """Verifies net.ipv6.conf.{all,default}.accept_ra are 0 (skipped when the host has no IPv6)."""
    return sysctl.judge_proc_sys(
        facts,
        [
            Expect("net.ipv6.conf.all.accept_ra", ("0",), ipv6=True),
            Expect("net.ipv6.conf.default.accept_ra", ("0",), ipv6=True),
        ],
    )
