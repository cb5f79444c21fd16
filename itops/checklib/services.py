"""Services, listening sockets and host firewalls: probe commands and pure parsers.

* :func:`service_state_command` / :func:`parse_service_snapshot`: whether systemd runs
  the host, each unit's ``is-active``/``is-enabled`` state, and the running process
  names (for hosts without systemd). One shared probe covers every service the
  built-in packs look at, so they cost one execution per host.
* :data:`LISTENING_COMMAND` / :func:`parse_listeners`: listening TCP and UDP sockets from
  ``ss -tulnp``, or from /proc/net/{tcp,tcp6,udp,udp6} when ``ss`` is missing.
* :data:`FIREWALL_COMMAND` / :func:`parse_firewall`: nftables ruleset and iptables /
  ip6tables INPUT chains, reduced to "does inbound traffic default to deny per IP family".
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from types import MappingProxyType

from itops.checkapi import Probe, quote

__all__ = [
    "FIREWALL_COMMAND",
    "KNOWN_INITS",
    "LISTENING_COMMAND",
    "SHARED_UNITS",
    "FirewallState",
    "Listener",
    "ServiceSnapshot",
    "ToolOutput",
    "UnitState",
    "iptables_input_denies",
    "journald_storage",
    "listener_tuple",
    "listening_probe",
    "nft_input_deny_families",
    "no_init_reason",
    "parse_firewall",
    "parse_listeners",
    "parse_service_snapshot",
    "service_state_command",
    "services_probe",
]

_UNIT_RE = re.compile(r"^[A-Za-z0-9@_.:\\-]+$")

#: Units the built-in packs ask about; one shared probe reports all of them.
SHARED_UNITS: tuple[str, ...] = (
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
    "auditd",
    "rsyslog",
    "syslog-ng",
    "systemd-journald",
    "logrotate.timer",
    "rsync",
)


# --- service states ------------------------------------------------------------------------


def service_state_command(units: Sequence[str], *, processes: bool = True) -> str:
    """A command reporting init, container markers, unit states (under systemd) and, optionally, process names.

    ``/run/systemd/system`` existing is systemd's own test for "booted with systemd"
    (sd_booted); PID 1's name alone misleads in containers. Process names (from
    /proc/PID/comm) let checks judge hosts that run another init.
    """
    for u in units:
        if not _UNIT_RE.match(u):
            raise ValueError(f"not a unit name: {u!r}")
    names = " ".join(quote(u) for u in units)
    procs = 'for p in /proc/[0-9]*/comm; do read -r c 2>/dev/null <"$p" && printf \'proc %s\\n\' "$c"; done; '
    # whether each unit is installed at all (a unit file or a SysV script), known even without systemd
    files = (
        f"for u in {names}; do case $u in *.*) f=$u;; *) f=$u.service;; esac; h=no; "
        "for d in /etc/systemd/system /run/systemd/system /lib/systemd/system /usr/lib/systemd/system; do "
        '[ -e "$d/$f" ] && h=yes; done; [ -e "/etc/init.d/$u" ] && h=yes; '
        'printf \'unitfile %s %s\\n\' "$u" "$h"; done; '
    )
    return (
        "printf 'pid1=%s\\n' \"$(cat /proc/1/comm 2>/dev/null || echo '?')\"; "
        "if [ -e /.dockerenv ]; then echo container=docker; fi; "
        "if [ -e /run/.containerenv ]; then echo container=podman; fi; "
        "if [ -d /run/systemd/system ]; then echo systemd=yes; "
        f"for u in {names}; do "
        "printf 'unit %s %s %s\\n' \"$u\" "
        '"$(systemctl is-active "$u" 2>/dev/null | head -n 1)" '
        '"$(systemctl is-enabled "$u" 2>/dev/null | head -n 1)"; done; '
        "else echo systemd=no; fi; " + files + (procs if processes else "") + "exit 0"
    )


def services_probe() -> Probe:
    """The shared probe for :data:`SHARED_UNITS`."""
    return Probe("services", service_state_command(SHARED_UNITS))


@dataclass(frozen=True)
class UnitState:
    """``systemctl is-active`` and ``is-enabled`` of one unit ("" when systemctl printed nothing)."""

    active: str
    enabled: str

    @property
    def is_active(self) -> bool:
        return self.active == "active"

    @property
    def is_enabled(self) -> bool:
        return self.enabled in ("enabled", "enabled-runtime", "alias", "static", "generated", "indirect")

    @property
    def is_disabled(self) -> bool:
        """Disabled, masked or not installed at all (the unit cannot start at boot)."""
        return self.enabled in ("disabled", "masked", "masked-runtime", "not-found", "")


@dataclass(frozen=True)
class ServiceSnapshot:
    """What the service probe saw on a host."""

    pid1: str
    systemd: bool
    container: str = ""
    units: Mapping[str, UnitState] = field(default_factory=lambda: MappingProxyType({}))
    processes: frozenset[str] = frozenset()
    #: unit -> a unit file or init script exists
    installed: Mapping[str, bool] = field(default_factory=lambda: MappingProxyType({}))

    def unit(self, name: str) -> UnitState | None:
        return self.units.get(name)

    def active_units(self, names: Iterable[str]) -> list[str]:
        return [n for n in names if (u := self.units.get(n)) is not None and u.is_active]

    def running(self, names: Iterable[str]) -> list[str]:
        """Which of the process names (as in /proc/PID/comm, at most 15 chars) are running."""
        return [n for n in names if n[:15] in self.processes]


#: init programs whose presence as PID 1 means "a real host or a system container"
KNOWN_INITS = frozenset({"systemd", "init", "openrc-init", "runit", "runit-init", "s6-svscan", "upstart"})


def no_init_reason(snap: ServiceSnapshot) -> str | None:
    """Why nothing on this host starts daemons, or None when systemd or another init runs it.

    A container whose PID 1 is its application (sshd, tini, a shell) or a chroot has no init:
    a daemon that is not running now will not be started by anything, and kernel-wide duties
    (the clock, kernel auditing) belong to the machine it runs on.
    """
    if snap.systemd or snap.pid1 in KNOWN_INITS:
        return None
    if snap.container:
        return f"a {snap.container} container without an init system (PID 1 is {snap.pid1!r})"
    return f"a host without an init system (PID 1 is {snap.pid1!r}: a container or chroot?)"


def parse_service_snapshot(text: str) -> ServiceSnapshot:
    """Parse the service probe; raises ValueError when the init/systemd lines are missing (garbage).

    The snapshot is read-only (its mappings are ``types.MappingProxyType``), so the checks of a host
    can share one parse (``facts.parsed(probe, parse_service_snapshot)``).
    """
    pid1: str | None = None
    systemd: bool | None = None
    container = ""
    units: dict[str, UnitState] = {}
    procs: set[str] = set()
    installed: dict[str, bool] = {}
    for line in text.splitlines():
        if line.startswith("pid1="):
            pid1 = line[5:].strip()
        elif line.startswith("container="):
            container = line[10:].strip()
        elif line.startswith("systemd="):
            systemd = line[8:].strip() == "yes"
        elif line.startswith("unit "):
            parts = line.split()
            if len(parts) >= 2:
                units[parts[1]] = UnitState(parts[2] if len(parts) > 2 else "", parts[3] if len(parts) > 3 else "")
        elif line.startswith("proc "):
            procs.add(line[5:].strip())
        elif line.startswith("unitfile "):
            parts = line.split()
            if len(parts) == 3:
                installed[parts[1]] = parts[2] == "yes"
    if pid1 is None or systemd is None:
        raise ValueError("service probe output lacks the pid1=/systemd= lines")
    return ServiceSnapshot(
        pid1, systemd, container, MappingProxyType(units), frozenset(procs), MappingProxyType(installed)
    )


# --- journald ------------------------------------------------------------------------------


def journald_storage(files: Sequence[tuple[str, str]]) -> str:
    """Effective ``Storage=`` of journald: journald.conf, then drop-ins by name (/etc beats /run beats /usr/lib)."""
    main = [(p, t) for p, t in files if p == "/etc/systemd/journald.conf"]
    dropins: dict[str, tuple[int, str]] = {}
    rank = {"/usr/lib/": 0, "/run/": 1, "/etc/": 2}
    for path, text in files:
        if path == "/etc/systemd/journald.conf":
            continue
        level = next((v for k, v in rank.items() if path.startswith(k)), 0)
        name = posixpath.basename(path)
        if name not in dropins or dropins[name][0] <= level:
            dropins[name] = (level, text)
    ordered = [t for _, t in main] + [dropins[n][1] for n in sorted(dropins)]
    storage = "auto"
    for text in ordered:
        section = ""
        for raw in text.splitlines():
            line = raw.strip()
            if line.startswith("[") and line.endswith("]"):
                section = line[1:-1]
            elif section == "Journal" and line.startswith("Storage="):
                storage = line.partition("=")[2].strip().lower() or "auto"
    return storage


# --- listening sockets --------------------------------------------------------------------

SS_MARK = "@@itops-ss"
PROC_MARK = "@@itops-proc "

#: ``ss`` without ``-H`` on purpose: the header proves the output is real and old iproute2 lacks -H.
LISTENING_COMMAND = (
    "if command -v ss >/dev/null 2>&1; then "
    f"echo '{SS_MARK}'; ss -tulnp; "
    "else for f in /proc/net/tcp /proc/net/tcp6 /proc/net/udp /proc/net/udp6; do "
    f'if [ -r "$f" ]; then printf \'{PROC_MARK}%s\\n\' "$f"; cat "$f"; fi; done; fi'
)


def listening_probe() -> Probe:
    return Probe("listening_sockets", LISTENING_COMMAND)


@dataclass(frozen=True)
class Listener:
    """A socket accepting traffic: protocol, bound address, port and owning process names (may be empty)."""

    proto: str  # tcp or udp
    address: str  # "*", "0.0.0.0", "::", "127.0.0.1", ...
    port: int
    processes: tuple[str, ...] = ()

    @property
    def loopback_only(self) -> bool:
        if self.address in ("*", ""):
            return False
        try:
            ip = ipaddress.ip_address(self.address)
        except ValueError:
            return False
        if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped is not None:
            return ip.ipv4_mapped.is_loopback
        return ip.is_loopback


_SS_PROC_RE = re.compile(r'\("([^"]+)",pid=\d+')


def _split_ss_address(local: str) -> tuple[str, int]:
    addr, sep, port = local.rpartition(":")
    if not sep or not port.isdigit():
        raise ValueError(f"unexpected ss local address {local!r}")
    addr = addr.strip("[]")
    addr = addr.split("%", 1)[0]  # 127.0.0.53%lo, [fe80::1]%eth0
    return addr.strip("[]"), int(port)


def _parse_ss(lines: list[str]) -> list[Listener]:
    if not lines or not lines[0].split() or lines[0].split()[0] != "Netid":
        raise ValueError("ss output lacks its 'Netid State ...' header")
    out: list[Listener] = []
    for line in lines[1:]:
        parts = line.split()
        if not parts:
            continue
        if parts[0] not in ("tcp", "udp") or len(parts) < 6:
            raise ValueError(f"unexpected ss line: {line[:120]!r}")
        addr, port = _split_ss_address(parts[4])
        procs = tuple(dict.fromkeys(_SS_PROC_RE.findall(" ".join(parts[6:]))))
        out.append(Listener(parts[0], addr, port, procs))
    return out


def _hex_to_ip(hexaddr: str) -> str:
    raw = bytes.fromhex(hexaddr)
    if len(raw) == 4:
        return str(ipaddress.IPv4Address(raw[::-1]))
    if len(raw) == 16:
        words = b"".join(raw[i : i + 4][::-1] for i in range(0, 16, 4))
        return str(ipaddress.IPv6Address(words))
    raise ValueError(f"bad address {hexaddr!r}")


def _parse_proc_net(sections: dict[str, list[str]]) -> list[Listener]:
    if "/proc/net/tcp" not in sections:
        raise ValueError("neither ss nor /proc/net/tcp could be read")
    out: list[Listener] = []
    for path, lines in sections.items():
        proto = "udp" if "udp" in path else "tcp"
        if not lines or not lines[0].split() or lines[0].split()[0] != "sl":
            raise ValueError(f"{path} lacks its header line")
        for line in lines[1:]:
            parts = line.split()
            if not parts:
                continue
            if len(parts) < 4 or ":" not in parts[1]:
                raise ValueError(f"unexpected {path} line: {line[:120]!r}")
            hexaddr, hexport = parts[1].split(":")
            state = parts[3]
            # TCP_LISTEN is 0A; an unconnected UDP socket sits in TCP_CLOSE (07)
            if (proto == "tcp" and state != "0A") or (proto == "udp" and state != "07"):
                continue
            out.append(Listener(proto, _hex_to_ip(hexaddr), int(hexport, 16)))
    return out


def listener_tuple(text: str) -> tuple[Listener, ...]:
    """:func:`parse_listeners` as a tuple, the immutable form ``facts.parsed`` shares between checks."""
    return tuple(parse_listeners(text))


def parse_listeners(text: str) -> list[Listener]:
    """Parse :data:`LISTENING_COMMAND` output; raises ValueError on anything unexpected."""
    lines = text.splitlines()
    if lines and lines[0].strip() == SS_MARK:
        return _parse_ss([ln for ln in lines[1:] if ln.strip()])
    sections: dict[str, list[str]] = {}
    current: list[str] | None = None
    for line in lines:
        if line.startswith(PROC_MARK):
            current = sections.setdefault(line[len(PROC_MARK) :].strip(), [])
        elif current is not None and line.strip():
            current.append(line)
        elif line.strip():
            raise ValueError(f"unexpected output before any section: {line[:120]!r}")
    return _parse_proc_net(sections)


# --- firewall -----------------------------------------------------------------------------

FW_TOOL_MARK = "@@itops-tool "
FW_MISSING_MARK = "@@itops-missing "
FW_IPV6_MARK = "@@itops-ipv6 "


def _tool(name: str, command: str) -> str:
    return (
        f"if command -v {name} >/dev/null 2>&1; then out=$({command} 2>&1); "
        f"printf '{FW_TOOL_MARK}{name} %s\\n' \"$?\"; printf '%s\\n' \"$out\"; "
        f"else echo '{FW_MISSING_MARK}{name}'; fi"
    )


FIREWALL_COMMAND = "; ".join(
    [
        f"printf '{FW_IPV6_MARK}%s\\n' \"$(cat /proc/sys/net/ipv6/conf/all/disable_ipv6 2>/dev/null || echo absent)\"",
        _tool("nft", "nft list ruleset"),
        _tool("iptables", "iptables -S INPUT"),
        _tool("ip6tables", "ip6tables -S INPUT"),
        "exit 0",
    ]
)


@dataclass(frozen=True)
class ToolOutput:
    """One firewall tool's result: missing, or its exit status and combined output."""

    name: str
    missing: bool = False
    rc: int = 0
    text: str = ""

    @property
    def permission_denied(self) -> bool:
        t = self.text.lower()
        return self.rc != 0 and ("permission denied" in t or "not permitted" in t or "must be root" in t)


@dataclass(frozen=True)
class FirewallState:
    """The firewall probe, parsed."""

    ipv6_enabled: bool
    tools: dict[str, ToolOutput]


def parse_firewall(text: str) -> FirewallState:
    """Parse :data:`FIREWALL_COMMAND` output; raises ValueError when a tool section is missing."""
    ipv6: str | None = None
    tools: dict[str, ToolOutput] = {}
    current: str | None = None
    body: dict[str, list[str]] = {}
    rcs: dict[str, int] = {}
    for line in text.splitlines():
        if line.startswith(FW_IPV6_MARK):
            ipv6 = line[len(FW_IPV6_MARK) :].strip()
            current = None
        elif line.startswith(FW_MISSING_MARK):
            name = line[len(FW_MISSING_MARK) :].strip()
            tools[name] = ToolOutput(name, missing=True)
            current = None
        elif line.startswith(FW_TOOL_MARK):
            name, _, rc_text = line[len(FW_TOOL_MARK) :].strip().partition(" ")
            if not rc_text.lstrip("-").isdigit():
                raise ValueError(f"bad firewall tool line {line!r}")
            current = name
            rcs[name] = int(rc_text)
            body[name] = []
        elif current is not None:
            body[current].append(line)
    for name, rc in rcs.items():
        tools[name] = ToolOutput(name, rc=rc, text="\n".join(body[name]).strip())
    missing = [t for t in ("nft", "iptables", "ip6tables") if t not in tools]
    if ipv6 is None or missing:
        raise ValueError(f"firewall probe output incomplete (no section for {', '.join(missing) or 'ipv6'})")
    return FirewallState(ipv6_enabled=ipv6 == "0", tools=tools)


_DENY_STMT = re.compile(r"^(counter( packets \d+ bytes \d+)? )?(log( [^;]*?)? )?(drop|reject( with .+)?)$")


def nft_input_deny_families(ruleset: str) -> set[str]:
    """nftables families (ip, ip6, inet) with an input-hook base chain that denies by default.

    A chain denies by default when its policy is drop or its last rule is an
    unconditional drop/reject (firewalld ends its input chain with ``reject``). A
    packet must pass every input base chain, so one denying chain per family is enough.
    """
    families: set[str] = set()
    depth = 0
    table_family = ""
    chain_lines: list[str] | None = None
    for raw in ruleset.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line:
            continue
        new_depth = depth + line.count("{") - line.count("}")
        if depth == 0 and line.startswith("table "):
            parts = line.split()
            table_family = parts[1] if len(parts) > 2 else "ip"
        elif depth == 1 and line.startswith("chain "):
            chain_lines = []
        elif depth == 2 and new_depth >= 2 and chain_lines is not None:
            chain_lines.append(line)  # a statement of the chain (not its closing brace)
        depth = new_depth
        if depth <= 1 and chain_lines is not None:
            if _chain_denies(chain_lines) and table_family in ("ip", "ip6", "inet"):
                families.add(table_family)
            chain_lines = None
        if depth <= 0:
            depth = 0
            table_family = ""
    return families


def _chain_denies(lines: list[str]) -> bool:
    header = next((ln for ln in lines if ln.startswith("type ")), "")
    if not re.search(r"\bhook input\b", header):
        return False
    if re.search(r"\bpolicy drop\b", header):
        return True
    rules = [ln for ln in lines if not ln.startswith(("type ", "policy ", "comment "))]
    return bool(rules) and bool(_DENY_STMT.match(rules[-1]))


def iptables_input_denies(rules: str) -> bool:
    """True when ``iptables -S INPUT`` shows policy DROP or ends with an unconditional DROP/REJECT."""
    lines = [ln.strip() for ln in rules.splitlines() if ln.strip().startswith("-")]
    if any(re.fullmatch(r"-P INPUT (DROP|REJECT)", ln) for ln in lines):
        return True
    appended = [ln for ln in lines if ln.startswith("-A INPUT")]
    return bool(appended) and bool(re.fullmatch(r"-A INPUT -j (DROP|REJECT)( --reject-with \S+)?", appended[-1]))
