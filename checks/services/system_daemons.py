"""System daemons that must run: time synchronization (CIS 2.3) and cron (CIS 2.4.1.1).

Both read the shared service probe: unit states when systemd runs the host, the
process list otherwise. On a container or chroot without an init system nothing starts a
daemon that is not running now: a daemon installed there but not running is a FAIL. The
clock belongs to the machine the container runs on, so time synchronization with no time
daemon installed in a container is SKIPPED (not applicable), never PASS.
"""

from __future__ import annotations

from itops.checkapi import Facts, Finding, Params, Severity, host_check
from itops.checklib import services
from itops.checklib.services import ServiceSnapshot

SERVICES = services.services_probe()

#: systemd unit -> daemon (chrony.service is also reachable as chronyd.service, ntp as ntpsec)
TIME_UNITS = {
    "chrony": "chrony",
    "chronyd": "chrony",
    "systemd-timesyncd": "systemd-timesyncd",
    "ntp": "ntp",
    "ntpd": "ntp",
    "ntpsec": "ntp",
    "openntpd": "openntpd",
}
#: process name (/proc/PID/comm, 15 chars) -> daemon
TIME_PROCESSES = {"chronyd": "chrony", "systemd-timesyn": "systemd-timesyncd", "ntpd": "ntp", "openntpd": "openntpd"}


def _snapshot(facts: Facts) -> ServiceSnapshot | Finding:
    r = facts.get(SERVICES.name)
    if r is None:
        return Finding.error("could not assess: the service probe did not run")
    if not r.ok:
        return Finding.error(f"could not assess: {r.problem()}")
    try:
        return facts.parsed(SERVICES, services.parse_service_snapshot)  # once per host
    except ValueError as exc:
        return Finding.error(f"could not assess: {exc}")


def _systemctl_silent(snap: ServiceSnapshot, units: list[str]) -> bool:
    states = [snap.units.get(u) for u in units]
    return all(s is None or (not s.active and not s.enabled) for s in states)


@host_check(
    id="services.time_sync_active",
    title="Exactly one time synchronization daemon is running",
    severity=Severity.MEDIUM,
    rationale=(
        "Log correlation, Kerberos, TLS certificate validation and audit trails depend on correct clocks. "
        "Two daemons fighting over the clock are as bad as none."
    ),
    remediation=(
        "Debian/Ubuntu: apt-get install -y chrony && systemctl enable --now chrony; "
        "RHEL: dnf install -y chrony && systemctl enable --now chronyd. "
        "Then disable any other time daemon, e.g. systemctl disable --now systemd-timesyncd ntp"
    ),
    frameworks={
        "cis-debian-12": ["2.3.1.1"],
        "cis-rhel-9": ["2.3.1"],
        "nist-800-53": ["AU-8", "SC-45", "SC-45(1)"],
        "iso-27001": ["A.8.17"],
    },
    probes=[SERVICES],
)
def time_sync_active(facts: Facts, params: Params) -> Finding:
    """Verifies chrony, systemd-timesyncd or ntpd is active (systemd) or running (other inits), and only one."""
    snap = _snapshot(facts)
    if isinstance(snap, Finding):
        return snap
    if snap.systemd:
        if _systemctl_silent(snap, list(TIME_UNITS)):
            return Finding.error("could not assess: systemctl reported no state for any time sync unit")
        daemons = sorted({TIME_UNITS[u] for u in snap.active_units(TIME_UNITS)})
        how = "active units"
    else:
        daemons = sorted({TIME_PROCESSES[p] for p in snap.running(TIME_PROCESSES)})
        how = f"running processes (init {snap.pid1})"
        if not daemons and (no_init := services.no_init_reason(snap)) is not None:
            installed = sorted({TIME_UNITS[u] for u in TIME_UNITS if snap.installed.get(u)})
            if not installed:
                return Finding.skipped(
                    f"not applicable: {no_init} with no time daemon installed; its clock is the kernel's "
                    "of the machine it runs on, so audit time synchronization there"
                )
            return Finding.failed(
                f"{', '.join(installed)} installed but not running, and on {no_init} nothing starts it",
                observed="not running",
                expected="exactly one time daemon running",
            )
    expected = "exactly one of chrony, systemd-timesyncd, ntpd active"
    if not daemons:
        return Finding.failed(
            f"no time synchronization daemon is running (checked {how})", observed="none", expected=expected
        )
    if len(daemons) > 1:
        return Finding.failed(
            f"more than one time synchronization daemon is running: {', '.join(daemons)}",
            observed=", ".join(daemons),
            expected=expected,
        )
    return Finding.passed(f"{daemons[0]} is running ({how})", observed=daemons[0], expected=expected)


CRON_UNITS = ("cron", "crond", "cronie")
CRON_PROCESSES = ("cron", "crond")
NO_CRON = "not applicable: cron is not installed (CIS 2.4.1 applies when it is; secure systemd timers instead)"


@host_check(
    id="services.cron_daemon_enabled",
    title="The cron daemon is enabled and running",
    severity=Severity.LOW,
    rationale=(
        "Log rotation, integrity checks (AIDE), certificate renewal and backups are commonly scheduled by "
        "cron; with cron stopped they silently stop happening."
    ),
    remediation=(
        "Debian/Ubuntu: apt-get install -y cron && systemctl unmask cron && systemctl enable --now cron; "
        "RHEL: dnf install -y cronie && systemctl unmask crond && systemctl enable --now crond"
    ),
    frameworks={"cis-debian-12": ["2.4.1.1"], "nist-800-53": ["CM-6"], "iso-27001": ["A.8.9"]},
    probes=[SERVICES],
)
def cron_daemon_enabled(facts: Facts, params: Params) -> Finding:
    """Verifies the cron (Debian) or crond (RHEL) unit is enabled and active, or a cron process runs.

    SKIPPED when cron is not installed at all.
    """
    snap = _snapshot(facts)
    if isinstance(snap, Finding):
        return snap
    if not snap.systemd:
        running = snap.running(CRON_PROCESSES)
        if running:
            return Finding.passed(f"{running[0]} is running (init {snap.pid1})", observed=running[0])
        installed = [u for u in CRON_UNITS if snap.installed.get(u)]
        if not installed:
            return Finding.skipped(NO_CRON)
        where = services.no_init_reason(snap)
        return Finding.failed(
            f"{installed[0]} is installed but no cron process is running"
            + (f" (on {where} nothing starts it)" if where else f" (init {snap.pid1})"),
            observed="not running",
            expected="cron running",
        )
    if _systemctl_silent(snap, list(CRON_UNITS)):
        return Finding.error("could not assess: systemctl reported no state for the cron units")
    states = {u: s for u in CRON_UNITS if (s := snap.units.get(u)) is not None and s.enabled not in ("not-found", "")}
    good = [u for u, s in states.items() if s.is_active and s.is_enabled]
    observed = ", ".join(f"{u}: {s.active}/{s.enabled}" for u, s in states.items()) or "no cron unit installed"
    if good:
        return Finding.passed(f"{good[0]} is enabled and active", observed=observed)
    if not states:
        return Finding.skipped(NO_CRON)
    return Finding.failed(
        f"cron is not enabled and active ({observed})", observed=observed, expected="cron or crond enabled+active"
    )
