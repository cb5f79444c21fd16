"""What the host exposes to the network: listening ports, legacy clear-text services, the host firewall.

Listening sockets come from ``ss -tulnp`` (or /proc/net when ss is missing), packages
from dpkg/rpm/apk, firewall rules from ``nft list ruleset`` and ``iptables -S``.
Reading other users' process names and the firewall rules needs root (or sudo):
without it process names are missing and the firewall check reports ERROR, not PASS.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from typing import Any

from itops.checkapi import Facts, Finding, Params, Probe, ProbeResult, Severity, host_check
from itops.checklib import packages, services
from itops.checklib.services import Listener

LISTENING = services.listening_probe()
PACKAGES = packages.packages_probe()
FIREWALL = Probe("firewall_rules", services.FIREWALL_COMMAND)


def _unusable(r: ProbeResult | None, what: str) -> str | None:
    """Why a probe result cannot be judged, or None when it can."""
    if r is None:
        return f"the {what} probe did not run"
    if not r.ok:
        return r.problem()
    return None


def _first_line(text: str) -> str:
    return (text.strip().splitlines() or [""])[0][:160]


def _parse_port_spec(entry: Any) -> tuple[int, str]:
    """``22`` / ``"22"`` -> (22, "any"); ``"53/udp"`` -> (53, "udp")."""
    if isinstance(entry, bool):
        raise ValueError(f"not a port: {entry!r}")
    if isinstance(entry, int):
        port, proto = entry, "any"
    elif isinstance(entry, str) and (m := re.fullmatch(r"\s*(\d{1,5})(?:/(tcp|udp))?\s*", entry.lower())):
        port, proto = int(m[1]), m[2] or "any"
    else:
        raise ValueError(f"not a port or port/proto: {entry!r} (use 22, '22/tcp' or '53/udp')")
    if not 1 <= port <= 65535:
        raise ValueError(f"port out of range: {entry!r}")
    return port, proto


def _allowed(specs: Iterable[tuple[int, str]], proto: str, port: int) -> bool:
    return any(p == port and sp in ("any", proto) for p, sp in specs)


def _group(listeners: Sequence[Listener]) -> dict[tuple[str, int], tuple[list[str], list[str]]]:
    """(proto, port) -> (addresses, process names), each deduplicated in order."""
    grouped: dict[tuple[str, int], tuple[list[str], list[str]]] = {}
    for item in listeners:
        addrs, procs = grouped.setdefault((item.proto, item.port), ([], []))
        if item.address not in addrs:
            addrs.append(item.address)
        procs += [p for p in item.processes if p not in procs]
    return grouped


def _describe(key: tuple[str, int], addrs: list[str], procs: list[str]) -> str:
    who = ", ".join(procs) if procs else "process unknown"
    return f"{key[0]}/{key[1]} ({who}) on {', '.join(a or '*' for a in addrs)}"


@host_check(
    id="services.listening_ports_allowlisted",
    title="Only allow-listed ports are listening on network interfaces",
    severity=Severity.HIGH,
    rationale=(
        "Every listening service is attack surface. Ports not on the host's allow-list are usually "
        "forgotten test servers, debug endpoints or services installed as dependencies."
    ),
    remediation=(
        "Stop and disable the service behind each unexpected port (systemctl disable --now UNIT, or "
        "apt-get purge / dnf remove PACKAGE), or bind it to 127.0.0.1; if the port is intended, add it to "
        "the listening_ports_allowed var of the host or group, e.g. listening_ports_allowed: [22, 443, '53/udp']"
    ),
    frameworks={
        "cis-debian-12": ["2.1.22"],
        "nist-800-53": ["CM-7", "CM-7(1)", "SC-7"],
        "iso-27001": ["A.8.20", "A.8.21"],
    },
    probes=[LISTENING],
    params={"listening_ports_allowed": [22], "listening_ports_include_loopback": False},
)
def listening_ports_allowlisted(facts: Facts, params: Params) -> Finding:
    """Verifies every TCP/UDP port listening beyond loopback is in listening_ports_allowed."""
    r = facts.get(LISTENING.name)
    if (why := _unusable(r, "listening sockets")) is not None:
        return Finding.error(f"could not assess: {why}")
    assert r is not None
    try:
        specs = [_parse_port_spec(e) for e in params["listening_ports_allowed"]]
    except ValueError as exc:
        return Finding.error(f"bad parameter listening_ports_allowed: {exc}")
    try:
        listeners: Sequence[Listener] = facts.parsed(LISTENING, services.listener_tuple)  # once per host
    except ValueError as exc:
        return Finding.error(f"could not assess: unexpected listening socket output: {exc}")
    if not params["listening_ports_include_loopback"]:
        listeners = [li for li in listeners if not li.loopback_only]
    grouped = _group(listeners)
    unexpected = [_describe(k, *v) for k, v in sorted(grouped.items()) if not _allowed(specs, k[0], k[1])]
    expected = "only " + ", ".join(f"{p}/{pr}" if pr != "any" else str(p) for p, pr in specs)
    seen = "; ".join(_describe(k, *v) for k, v in sorted(grouped.items())) or "nothing listening"
    if unexpected:
        return Finding.failed(
            f"{len(unexpected)} port(s) not allow-listed: {'; '.join(unexpected)}", observed=seen, expected=expected
        )
    return Finding.passed(f"listening: {seen}", observed=seen, expected=expected)


LEGACY_PACKAGES = [
    # telnet, rsh/rlogin, tftp, ftp, inetd-style super servers, NIS, talk (Debian and RHEL names)
    "telnetd",
    "inetutils-telnetd",
    "telnetd-ssl",
    "telnet-server",
    "rsh-server",
    "rsh-redone-server",
    "tftpd",
    "tftpd-hpa",
    "atftpd",
    "tftp-server",
    "vsftpd",
    "ftpd",
    "inetutils-ftpd",
    "proftpd-basic",
    "proftpd-core",
    "pure-ftpd",
    "xinetd",
    "openbsd-inetd",
    "inetutils-inetd",
    "nis",
    "ypserv",
    "ypbind",
    "talkd",
    "inetutils-talkd",
    "talk-server",
]
LEGACY_PORTS = ["21/tcp", "23/tcp", "69/udp", "512/tcp", "513/tcp", "514/tcp", "517/udp", "518/udp"]


@host_check(
    id="services.legacy_services_absent",
    title="Legacy clear-text services (telnet, rsh, tftp, ftp, NIS, talk, inetd) are absent",
    severity=Severity.HIGH,
    rationale=(
        "telnet, rsh/rlogin, ftp, tftp, NIS and talk send credentials and data in clear text and have "
        "long histories of remote exploits; SSH/SFTP replace them all."
    ),
    remediation=(
        "Debian/Ubuntu: apt-get purge -y PACKAGE...; RHEL: dnf remove -y PACKAGE... (for each package "
        "named in the finding), then confirm with ss -tulnp that ports 21, 23, 69, 512-514 are closed"
    ),
    frameworks={
        "cis-debian-12": ["2.1.6", "2.1.10", "2.1.16", "2.1.19", "2.2.1"],
        "nist-800-53": ["CM-7", "CM-7(1)", "IA-5(1)"],
        "iso-27001": ["A.8.20", "A.8.9"],
    },
    probes=[PACKAGES, LISTENING],
    params={"legacy_packages": LEGACY_PACKAGES, "legacy_ports": LEGACY_PORTS},
)
def legacy_services_absent(facts: Facts, params: Params) -> Finding:
    """Verifies no legacy service package is installed and no legacy service port is listening."""
    try:
        legacy_ports = [_parse_port_spec(e) for e in params["legacy_ports"]]
    except ValueError as exc:
        return Finding.error(f"bad parameter legacy_ports: {exc}")
    problems: list[str] = []
    unknown: list[str] = []
    pkg_result = facts.get(PACKAGES.name)
    if (why := _unusable(pkg_result, "package")) is not None:
        unknown.append(f"installed packages unknown ({why})")
    else:
        assert pkg_result is not None
        try:
            inventory = facts.parsed(PACKAGES, packages.parse_package_inventory)
            found = inventory.present(params["legacy_packages"])
            if found:
                problems.append(f"installed: {', '.join(found)}")
        except ValueError as exc:
            unknown.append(f"installed packages unknown ({exc})")
    sock_result = facts.get(LISTENING.name)
    if (why := _unusable(sock_result, "listening sockets")) is not None:
        unknown.append(f"listening ports unknown ({why})")
    else:
        assert sock_result is not None
        try:
            grouped = _group(facts.parsed(LISTENING, services.listener_tuple))
            open_legacy = [_describe(k, *v) for k, v in sorted(grouped.items()) if _allowed(legacy_ports, *k)]
            if open_legacy:
                problems.append(f"listening: {'; '.join(open_legacy)}")
        except ValueError as exc:
            unknown.append(f"listening ports unknown ({exc})")
    if problems:
        return Finding.failed("legacy services present: " + "; ".join(problems), observed="; ".join(problems))
    if unknown:
        return Finding.error("could not assess: " + "; ".join(unknown))
    return Finding.passed("no legacy service package installed and no legacy port listening")


@host_check(
    id="services.firewall_default_deny",
    title="A host firewall drops inbound traffic by default (IPv4 and IPv6)",
    severity=Severity.HIGH,
    rationale=(
        "A default-deny inbound policy means a service started by mistake is not reachable from the "
        "network until a rule allows it; without it every listening port is exposed."
    ),
    remediation=(
        "Allow SSH before switching to drop or you lock yourself out. With nftables: "
        "nft add table inet filter && "
        "nft add chain inet filter input '{ type filter hook input priority 0; policy accept; }' && "
        "nft add rule inet filter input iif lo accept && "
        "nft add rule inet filter input ct state established,related accept && "
        "nft add rule inet filter input tcp dport 22 accept && "
        "nft add chain inet filter input '{ policy drop; }' && "
        "{ echo 'flush ruleset'; nft list ruleset; } > /etc/nftables.conf && systemctl enable nftables. "
        "With ufw: ufw allow 22/tcp && ufw default deny incoming && ufw enable. "
        "With firewalld: firewall-cmd --permanent --zone=drop --add-service=ssh && "
        "firewall-cmd --set-default-zone=drop && firewall-cmd --reload"
    ),
    frameworks={
        "cis-debian-12": ["4.2.7", "4.3.8", "4.4.2.1", "4.4.3.1"],
        "nist-800-53": ["SC-7", "SC-7(5)", "CM-7"],
        "iso-27001": ["A.8.20", "A.8.22"],
    },
    probes=[FIREWALL],
)
def firewall_default_deny(facts: Facts, params: Params) -> Finding:
    """Verifies nftables or iptables/ip6tables drop inbound packets by default for IPv4 and (if enabled) IPv6."""
    r = facts.get(FIREWALL.name)
    if (why := _unusable(r, "firewall")) is not None:
        return Finding.error(f"could not assess: {why}")
    assert r is not None
    try:
        state = services.parse_firewall(r.text)
    except ValueError as exc:
        return Finding.error(f"could not assess: {exc}")
    tools = state.tools
    if all(t.missing for t in tools.values()):
        return Finding.failed(
            "no firewall found: neither nft nor iptables/ip6tables is installed",
            observed="no firewall tool",
            expected="inbound policy drop",
        )
    v4 = v6 = False
    unreadable: list[str] = []
    seen: list[str] = []
    nft = tools["nft"]
    if not nft.missing:
        if nft.rc == 0:
            fams = services.nft_input_deny_families(nft.text)
            v4 |= bool(fams & {"ip", "inet"})
            v6 |= bool(fams & {"ip6", "inet"})
            seen.append(f"nft deny-by-default families: {', '.join(sorted(fams)) or 'none'}")
        else:
            unreadable.append(f"nft list ruleset exited {nft.rc}: {_first_line(nft.text)}")
    for name in ("iptables", "ip6tables"):
        tool = tools[name]
        if tool.missing:
            continue
        if tool.rc != 0:
            unreadable.append(f"{name} -S INPUT exited {tool.rc}: {_first_line(tool.text)}")
            continue
        denies = services.iptables_input_denies(tool.text)
        seen.append(f"{name} INPUT {'denies' if denies else 'accepts'} by default")
        if name == "iptables":
            v4 |= denies
        else:
            v6 |= denies
    need_v6 = state.ipv6_enabled
    observed = "; ".join(seen) or "no rules readable"
    expected = "inbound default deny for IPv4" + (" and IPv6" if need_v6 else "")
    if v4 and (v6 or not need_v6):
        return Finding.passed(
            f"inbound traffic is denied by default ({observed})", observed=observed, expected=expected
        )
    if unreadable:
        root = " (needs root: run with sudo)" if any(tools[t].permission_denied for t in tools) else ""
        return Finding.error(
            f"could not assess: firewall rules unreadable{root}: {'; '.join(unreadable)}",
            observed=observed,
            expected=expected,
        )
    gaps = [f for f, ok in (("IPv4", v4), ("IPv6", v6 or not need_v6)) if not ok]
    return Finding.failed(
        f"inbound traffic is not denied by default for {' and '.join(gaps)} ({observed})",
        observed=observed,
        expected=expected,
    )
