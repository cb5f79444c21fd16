"""SSH daemon session settings: forwarding, timeouts, limits, banner and logging."""

from __future__ import annotations

from collections.abc import Mapping

from itops.checkapi import Facts, Finding, Params, Severity, host_check
from itops.checklib.sshd import SSHD_PROBES, Setting, parse_duration
from itops.checklib.sshd_rules import (
    APPLY_SSHD_CHANGE,
    MATCH_PARAM,
    Verdict,
    describe,
    duration_between,
    evaluate_sshd,
    int_between,
    one_of,
)


@host_check(
    id="ssh.x11_forwarding_disabled",
    fix={"sshd": {"X11Forwarding": "no"}},
    title="SSH X11 forwarding is disabled",
    severity=Severity.MEDIUM,
    rationale="X11 forwarding exposes the client's X display to the server side: a compromised server (or "
    "root there) can read keystrokes and screen contents of connected users.",
    remediation="Set `X11Forwarding no` (or `DisableForwarding yes`)." + APPLY_SSHD_CHANGE,
    frameworks={"cis-debian-12": ["5.1.8"], "nist-800-53": ["CM-7"], "iso-27001": ["A.8.9", "A.8.20"]},
    probes=SSHD_PROBES,
    params=dict(MATCH_PARAM),
)
def x11_forwarding_disabled(facts: Facts, params: Params) -> list[Finding]:
    """X11Forwarding is no, or DisableForwarding yes turns it off."""

    def judge(s: Mapping[str, Setting]) -> Verdict:
        if s["disableforwarding"].value.lower() == "yes":
            return Verdict(True, describe("DisableForwarding", s["disableforwarding"]))
        x11 = s["x11forwarding"]
        return Verdict(x11.value.lower() == "no", describe("X11Forwarding", x11))

    return evaluate_sshd(
        facts, params, ["x11forwarding", "disableforwarding"], judge, "X11Forwarding no or DisableForwarding yes"
    )


@host_check(
    id="ssh.forwarding_disabled",
    fix={
        "risk": "high",
        "sshd": {"DisableForwarding": "yes"},
        "note": "breaks tunnels and agent forwarding that users rely on",
    },
    title="SSH forwarding of ports, agents and X11 is disabled",
    severity=Severity.LOW,
    rationale="TCP, agent, socket and X11 forwarding let SSH users tunnel through the host into networks they "
    "should not reach; DisableForwarding turns all of them off at once (CIS Level 2 for servers).",
    remediation="Set `DisableForwarding yes` (waive on jump hosts that exist to forward)." + APPLY_SSHD_CHANGE,
    frameworks={"cis-debian-12": ["5.1.8"], "nist-800-53": ["CM-7", "AC-4"], "iso-27001": ["A.8.20"]},
    probes=SSHD_PROBES,
    params=dict(MATCH_PARAM),
)
def forwarding_disabled(facts: Facts, params: Params) -> list[Finding]:
    """DisableForwarding is yes."""
    return evaluate_sshd(
        facts, params, ["disableforwarding"], one_of("disableforwarding", "DisableForwarding", ["yes"]), "yes"
    )


@host_check(
    id="ssh.login_grace_time_limited",
    fix={"sshd": {"LoginGraceTime": "{ssh_login_grace_time_max}"}},
    title="SSH login grace time is short",
    severity=Severity.MEDIUM,
    rationale="Each unauthenticated connection holds a slot until LoginGraceTime runs out; a short grace time "
    "limits connection-exhaustion attacks (0 means no limit at all).",
    remediation="Set `LoginGraceTime {ssh_login_grace_time_max}` (or less; 0 disables the limit)." + APPLY_SSHD_CHANGE,
    frameworks={"cis-debian-12": ["5.1.13"], "nist-800-53": ["CM-6", "SC-5"], "iso-27001": ["A.8.20"]},
    probes=SSHD_PROBES,
    params={"ssh_login_grace_time_max": 60},
)
def login_grace_time_limited(facts: Facts, params: Params) -> list[Finding]:
    """LoginGraceTime is between 1 second and ssh_login_grace_time_max (default 60)."""
    limit = int(params["ssh_login_grace_time_max"])
    return evaluate_sshd(
        facts,
        params,
        ["logingracetime"],
        duration_between("logingracetime", "LoginGraceTime", 1, limit),
        f"1 to {limit} seconds",
    )


@host_check(
    id="ssh.client_alive_configured",
    fix={
        "sshd": {
            "ClientAliveInterval": "{ssh_client_alive_interval_max}",
            "ClientAliveCountMax": "{ssh_client_alive_count_max}",
        },
    },
    title="SSH disconnects unresponsive sessions",
    severity=Severity.MEDIUM,
    rationale="Without ClientAlive probes, sessions whose client vanished stay open indefinitely and keep a "
    "logged-in shell available to whoever reaches the dead client's network path.",
    remediation="Set `ClientAliveInterval 15` (at most {ssh_client_alive_interval_max}) and "
    "`ClientAliveCountMax {ssh_client_alive_count_max}` (or less, at least 1)." + APPLY_SSHD_CHANGE,
    frameworks={"cis-debian-12": ["5.1.7"], "nist-800-53": ["AC-12", "SC-10"], "iso-27001": ["A.8.5", "A.8.20"]},
    probes=SSHD_PROBES,
    params={"ssh_client_alive_interval_max": 300, "ssh_client_alive_count_max": 3, **MATCH_PARAM},
)
def client_alive_configured(facts: Facts, params: Params) -> list[Finding]:
    """ClientAliveInterval is 1..max seconds and ClientAliveCountMax 1..max (0 disables the cut-off)."""
    imax = int(params["ssh_client_alive_interval_max"])
    cmax = int(params["ssh_client_alive_count_max"])

    def judge(s: Mapping[str, Setting]) -> Verdict:
        interval, count = s["clientaliveinterval"], s["clientalivecountmax"]
        seconds, n = parse_duration(interval.value), int(count.value)
        observed = f"{describe('ClientAliveInterval', interval)}, {describe('ClientAliveCountMax', count)}"
        return Verdict(1 <= seconds <= imax and 1 <= n <= cmax, observed)

    return evaluate_sshd(
        facts,
        params,
        ["clientaliveinterval", "clientalivecountmax"],
        judge,
        f"ClientAliveInterval 1 to {imax}s and ClientAliveCountMax 1 to {cmax}",
    )


@host_check(
    id="ssh.banner_configured",
    fix={"sshd": {"Banner": "/etc/issue.net"}},
    title="SSH shows a warning banner before login",
    severity=Severity.LOW,
    rationale="A legal notice shown before authentication supports prosecution and tells users that access is "
    "monitored and restricted to authorised use.",
    remediation="Write the approved notice to /etc/issue.net and set `Banner /etc/issue.net`." + APPLY_SSHD_CHANGE,
    frameworks={"cis-debian-12": ["5.1.5"], "nist-800-53": ["AC-8"], "iso-27001": ["A.5.10"]},
    probes=SSHD_PROBES,
    params=dict(MATCH_PARAM),
)
def banner_configured(facts: Facts, params: Params) -> list[Finding]:
    """Banner names a file (not `none`). The file's content is not inspected."""

    def judge(s: Mapping[str, Setting]) -> Verdict:
        banner = s["banner"]
        return Verdict(banner.value.strip().lower() not in ("", "none"), describe("Banner", banner))

    return evaluate_sshd(facts, params, ["banner"], judge, "a banner file, e.g. /etc/issue.net")


@host_check(
    id="ssh.log_level_adequate",
    fix={"sshd": {"LogLevel": "VERBOSE"}},
    title="SSH logs logins at INFO or VERBOSE level",
    severity=Severity.MEDIUM,
    rationale="INFO records logins and failures; VERBOSE adds the key fingerprint used, which investigations "
    "need. QUIET/ERROR lose logins, DEBUG levels log too much and may violate user privacy.",
    remediation="Set `LogLevel VERBOSE` (or INFO)." + APPLY_SSHD_CHANGE,
    frameworks={"cis-debian-12": ["5.1.14"], "nist-800-53": ["AU-3", "AU-12"], "iso-27001": ["A.8.15"]},
    probes=SSHD_PROBES,
    params={"ssh_log_levels_allowed": ["INFO", "VERBOSE"], **MATCH_PARAM},
)
def log_level_adequate(facts: Facts, params: Params) -> list[Finding]:
    """LogLevel is one of ssh_log_levels_allowed (default INFO, VERBOSE)."""
    allowed = [str(v) for v in params["ssh_log_levels_allowed"]]
    return evaluate_sshd(facts, params, ["loglevel"], one_of("loglevel", "LogLevel", allowed), " or ".join(allowed))


@host_check(
    id="ssh.max_sessions_limited",
    fix={"sshd": {"MaxSessions": "{ssh_max_sessions}"}},
    title="SSH limits sessions per connection",
    severity=Severity.LOW,
    rationale="MaxSessions caps how many shells, sftp or forwarding channels one authenticated connection can "
    "multiplex, limiting resource exhaustion by a single login.",
    remediation="Set `MaxSessions {ssh_max_sessions}` (or fewer)." + APPLY_SSHD_CHANGE,
    frameworks={"cis-debian-12": ["5.1.17"], "nist-800-53": ["AC-10"], "iso-27001": ["A.8.9"]},
    probes=SSHD_PROBES,
    params={"ssh_max_sessions": 10, **MATCH_PARAM},
)
def max_sessions_limited(facts: Facts, params: Params) -> list[Finding]:
    """MaxSessions is at most ssh_max_sessions (default 10)."""
    limit = int(params["ssh_max_sessions"])
    return evaluate_sshd(
        facts, params, ["maxsessions"], int_between("maxsessions", "MaxSessions", 0, limit), f"at most {limit}"
    )


def _parse_startups(text: str) -> tuple[int, int, int]:
    parts = text.strip().split(":")
    if len(parts) == 1:
        n = int(parts[0])
        return n, 100, n
    if len(parts) != 3:
        raise ValueError(f"MaxStartups {text!r} is not N or start:rate:full")
    start, rate, full = (int(p) for p in parts)
    return start, rate, full


@host_check(
    id="ssh.max_startups_limited",
    fix={"sshd": {"MaxStartups": "{ssh_max_startups}"}},
    title="SSH limits concurrent unauthenticated connections",
    severity=Severity.LOW,
    rationale="MaxStartups drops new unauthenticated connections once too many are pending, limiting "
    "connection-flooding denial of service against the login service.",
    remediation="Set `MaxStartups {ssh_max_startups}` (or lower values in each field)." + APPLY_SSHD_CHANGE,
    frameworks={"cis-debian-12": ["5.1.18"], "nist-800-53": ["SC-5"], "iso-27001": ["A.8.20"]},
    probes=SSHD_PROBES,
    params={"ssh_max_startups": "10:30:60"},
)
def max_startups_limited(facts: Facts, params: Params) -> list[Finding]:
    """MaxStartups start, rate and full are each at most those of ssh_max_startups (default 10:30:60).

    When start equals full (the single-number form), every connection beyond it is
    refused, so the rate does not matter.
    """
    lim_start, lim_rate, lim_full = _parse_startups(str(params["ssh_max_startups"]))

    def judge(s: Mapping[str, Setting]) -> Verdict:
        ms = s["maxstartups"]
        start, rate, full = _parse_startups(ms.value)
        ok = start <= lim_start and full <= lim_full and (start >= full or rate <= lim_rate)
        return Verdict(ok, describe("MaxStartups", ms))

    return evaluate_sshd(
        facts, params, ["maxstartups"], judge, f"{lim_start}:{lim_rate}:{lim_full} or more restrictive"
    )
