"""Logging and auditing (CIS section 6): logs persist, auditd runs, log files are private and rotated."""

from __future__ import annotations

import fnmatch
import posixpath

from itops.checkapi import Facts, Finding, Params, Probe, ProbeResult, Severity, host_check
from itops.checklib import packages, services
from itops.checklib.packages import PackageInventory
from itops.checklib.services import ServiceSnapshot
from itops.checklib.storage import file_dump_command, parse_file_dump, parse_mode_listing

SERVICES = services.services_probe()
PACKAGES = packages.packages_probe()
LOG_CONFIG = Probe(
    "log_config_files",
    file_dump_command(
        globs=(
            "/etc/systemd/journald.conf",
            "/usr/lib/systemd/journald.conf.d/*.conf",
            "/run/systemd/journald.conf.d/*.conf",
            "/etc/systemd/journald.conf.d/*.conf",
            "/etc/logrotate.conf",
        )
    ),
)
LOG_PATHS = Probe(
    "log_paths",
    "for p in /var/log/journal /etc/cron.daily/logrotate; do "
    'if [ -e "$p" ]; then echo "present $p"; else echo "absent $p"; fi; done',
)
# world-readable (o+r) or world-writable (o+w) regular files; POSIX -perm so busybox find works too;
# NUL-ended records where stat has --printf (GNU), so a log file named with a newline stays one entry
_LOG_FIND = "find /var/log -type f \\( -perm -0004 -o -perm -0002 \\) -exec stat"
LOG_MODES = Probe(
    "log_file_modes",
    f"if stat --printf '' -- / >/dev/null 2>&1; then {_LOG_FIND} --printf '%a %n\\0' {{}} +; "
    f"else {_LOG_FIND} -c '%a %n' {{}} +; fi",
    timeout=120,
)

_LIST_MAX = 10


def _problem(r: ProbeResult | None, what: str) -> str | None:
    if r is None:
        return f"the {what} probe did not run"
    return None if r.ok else r.problem()


def _snapshot(facts: Facts) -> ServiceSnapshot | str:
    r = facts.get(SERVICES.name)
    if (why := _problem(r, "service")) is not None:
        return why
    assert r is not None
    try:
        return facts.parsed(SERVICES, services.parse_service_snapshot)  # once per host
    except ValueError as exc:
        return str(exc)


def _inventory(facts: Facts) -> PackageInventory | str:
    r = facts.get(PACKAGES.name)
    if (why := _problem(r, "package")) is not None:
        return why
    assert r is not None
    try:
        return facts.parsed(PACKAGES, packages.parse_package_inventory)  # once per host
    except ValueError as exc:
        return str(exc)


def _paths(facts: Facts) -> dict[str, bool] | str:
    r = facts.get(LOG_PATHS.name)
    if (why := _problem(r, "log paths")) is not None:
        return why
    assert r is not None
    out: dict[str, bool] = {}
    for line in r.text.splitlines():
        state, _, path = line.partition(" ")
        if state in ("present", "absent") and path:
            out[path] = state == "present"
    if "/var/log/journal" not in out:
        return "unexpected log paths output"
    return out


def _daemon_running(snap: ServiceSnapshot, units: tuple[str, ...], procs: tuple[str, ...]) -> list[str]:
    return snap.active_units(units) if snap.systemd else snap.running(procs)


@host_check(
    id="logging.journald_persistent_or_rsyslog",
    title="System logs are kept on disk (persistent journal or a syslog daemon)",
    severity=Severity.MEDIUM,
    rationale=(
        "With a volatile journal and no syslog daemon every log line is lost at reboot, exactly when an "
        "incident investigation needs it."
    ),
    remediation=(
        "mkdir -p /etc/systemd/journald.conf.d && printf '%s\\n' '[Journal]' 'Storage=persistent' > "
        "/etc/systemd/journald.conf.d/60-itops-persistent.conf && systemctl restart systemd-journald "
        "(or install a syslog daemon: apt-get install -y rsyslog / dnf install -y rsyslog, then "
        "systemctl enable --now rsyslog)"
    ),
    frameworks={
        "cis-debian-12": ["6.1.2.4", "6.1.3.2"],
        "nist-800-53": ["AU-9", "AU-11", "AU-4"],
        "iso-27001": ["A.8.15"],
    },
    probes=[LOG_CONFIG, LOG_PATHS, SERVICES],
)
def journald_persistent_or_rsyslog(facts: Facts, params: Params) -> Finding:
    """Verifies journald keeps logs on disk (Storage=persistent, or auto + /var/log/journal) or syslog runs."""
    snap = _snapshot(facts)
    if isinstance(snap, str):
        return Finding.error(f"could not assess: services unknown ({snap})")
    syslog = _daemon_running(snap, ("rsyslog", "syslog-ng"), ("rsyslogd", "syslog-ng", "syslogd"))
    if syslog:
        return Finding.passed(f"a syslog daemon is running: {', '.join(syslog)}", observed=", ".join(syslog))
    if not snap.systemd:
        # journald only runs under systemd: its configuration says nothing about this host. Without
        # systemd and a syslog daemon, what programs send to /dev/log (sshd's logins) is dropped.
        where = services.no_init_reason(snap) or f"init {snap.pid1}"
        return Finding.failed(
            f"no syslog daemon is running and systemd (journald) is not in use ({where}): "
            "messages sent to syslog, such as sshd's login records, are not kept",
            observed="no syslog daemon",
            expected="rsyslog/syslog-ng running",
        )
    conf = facts.get(LOG_CONFIG.name)
    if (why := _problem(conf, "log configuration")) is not None:
        return Finding.error(f"could not assess: journald.conf unknown ({why})")
    assert conf is not None
    paths = _paths(facts)
    if isinstance(paths, str):
        return Finding.error(f"could not assess: /var/log/journal unknown ({paths})")
    dump = parse_file_dump(conf.text)
    unreadable = dump.unreadable_matching("*journald*")
    if unreadable:
        return Finding.error(f"could not assess: unreadable {', '.join(unreadable)}")
    storage = services.journald_storage(dump.matching("*/journald.conf", "*/journald.conf.d/*.conf"))
    has_dir = paths["/var/log/journal"]
    observed = f"Storage={storage}; /var/log/journal {'exists' if has_dir else 'missing'}; no rsyslog/syslog-ng"
    if storage == "persistent" or (storage == "auto" and has_dir):
        return Finding.passed(f"journald keeps logs on disk ({observed})", observed=observed)
    return Finding.failed(
        f"logs are not kept across reboots ({observed})",
        observed=observed,
        expected="Storage=persistent (or auto with /var/log/journal), or rsyslog active",
    )


@host_check(
    id="logging.auditd_running",
    title="The Linux audit daemon (auditd) is installed, enabled and running",
    severity=Severity.MEDIUM,
    rationale=(
        "auditd records security-relevant kernel events (logins, privilege use, changes to sensitive "
        "files) that ordinary logs miss; investigations and most compliance regimes require them."
    ),
    remediation=(
        "Debian/Ubuntu: apt-get install -y auditd audispd-plugins && systemctl enable --now auditd; "
        "RHEL: dnf install -y audit && systemctl enable --now auditd"
    ),
    frameworks={
        "cis-debian-12": ["6.2.1.1", "6.2.1.2"],
        "nist-800-53": ["AU-2", "AU-3", "AU-12"],
        "iso-27001": ["A.8.15", "A.8.16"],
    },
    probes=[PACKAGES, SERVICES],
)
def auditd_running(facts: Facts, params: Params) -> Finding:
    """Verifies the auditd (Debian) or audit (RHEL) package is installed and the auditd service enabled and active."""
    inventory = _inventory(facts)
    if isinstance(inventory, str):
        return Finding.error(f"could not assess: installed packages unknown ({inventory})")
    installed = inventory.present(["auditd", "audit"])
    snap = _snapshot(facts)
    if not installed:
        if not isinstance(snap, str) and (no_init := services.no_init_reason(snap)) is not None:
            # kernel auditing is configured for the whole kernel, from the machine the container runs on
            return Finding.skipped(
                f"not applicable: {no_init} with no audit daemon installed; kernel auditing belongs to the "
                "machine it runs on"
            )
        return Finding.failed("the audit daemon package (auditd / audit) is not installed", observed="not installed")
    if isinstance(snap, str):
        return Finding.error(f"could not assess: service state unknown ({snap})")
    if snap.systemd:
        unit = snap.unit("auditd")
        if unit is None or (not unit.active and not unit.enabled):
            return Finding.error("could not assess: systemctl reported no state for auditd")
        observed = f"auditd {unit.active}/{unit.enabled}"
        if unit.is_active and unit.is_enabled:
            return Finding.passed(f"{installed[0]} installed; {observed}", observed=observed)
        return Finding.failed(f"{installed[0]} installed but {observed} (expected active/enabled)", observed=observed)
    if snap.running(["auditd"]):
        return Finding.passed(f"{installed[0]} installed; auditd process running (init {snap.pid1})")
    where = services.no_init_reason(snap)
    return Finding.failed(
        f"{installed[0]} installed but no auditd process is running"
        + (f" (on {where} nothing starts it)" if where else f" (init {snap.pid1})"),
        observed="not running",
    )


# CIS 6.1.4.1: these accounting files may be world-readable (last/lastlog read them) but never world-writable
DEFAULT_WORLD_READABLE_OK = ["lastlog", "lastlog.*", "wtmp", "wtmp.*", "wtmp-*", "btmp", "btmp.*", "btmp-*", "README"]


@host_check(
    id="logging.log_files_permissions",
    title="Log files under /var/log are not world-readable or world-writable",
    severity=Severity.MEDIUM,
    rationale=(
        "Logs hold user names, IP addresses, mistyped passwords and application secrets; world-readable "
        "logs leak them to every local user, world-writable ones let anyone forge or erase evidence."
    ),
    remediation=(
        "find /var/log -type f -perm -0002 -exec chmod o-w {} + && find /var/log -type f -perm -0004 "
        "! -name 'wtmp*' ! -name 'btmp*' ! -name 'lastlog*' ! -name README -exec chmod o-r {} + ; "
        "then fix the writer's mode so it sticks: $FileCreateMode 0640 in /etc/rsyslog.conf and "
        "`create 0640 root adm` in /etc/logrotate.conf"
    ),
    frameworks={"cis-debian-12": ["6.1.4.1"], "nist-800-53": ["AU-9", "AC-3"], "iso-27001": ["A.8.15", "A.8.3"]},
    probes=[LOG_MODES],
    params={"log_files_world_readable_allowed": DEFAULT_WORLD_READABLE_OK},
)
def log_files_permissions(facts: Facts, params: Params) -> Finding:
    """Verifies no file under /var/log is world-writable, or world-readable unless its name is allow-listed."""
    r = facts.get(LOG_MODES.name)
    if r is None:
        return Finding.error("could not assess: the /var/log probe did not run")
    if r.timed_out or r.rc is None or r.command_missing or r.rc not in (0, 1):
        return Finding.error(f"could not assess: {r.problem()}")
    entries, bad = parse_mode_listing(r.text)
    if bad and not entries:
        return Finding.error(f"could not assess: unexpected output {bad[0][:120]!r}")
    allowed = [str(p) for p in params["log_files_world_readable_allowed"]]
    offenders: list[str] = []
    for e in entries:
        name = posixpath.basename(e.path)
        if e.world_writable or (e.world_readable and not any(fnmatch.fnmatchcase(name, p) for p in allowed)):
            offenders.append(f"{e.path} ({e.mode:04o})")
    if offenders:
        more = len(offenders) - _LIST_MAX
        shown = ", ".join(offenders[:_LIST_MAX]) + (f" and {more} more" if more > 0 else "")
        return Finding.failed(
            f"{len(offenders)} log file(s) open to all users: {shown}",
            observed=shown,
            expected="no o+w; o+r only on " + ", ".join(allowed),
        )
    if r.rc != 0:
        first = (r.err_text.strip().splitlines() or ["find exited 1"])[0][:160]
        return Finding.error(f"could not assess: parts of /var/log unreadable ({first})")
    return Finding.passed("no log file under /var/log is world-writable or (outside the allow-list) world-readable")


@host_check(
    id="logging.logrotate_configured",
    title="logrotate is installed, configured and scheduled",
    severity=Severity.LOW,
    rationale="Without rotation logs grow until /var fills up, and then logging (and often the services) stop.",
    remediation=(
        "Debian/Ubuntu: apt-get install -y logrotate; RHEL: dnf install -y logrotate; then make sure "
        "/etc/logrotate.conf has a rotation period (e.g. weekly) and `rotate 4`, and that it is scheduled: "
        "systemctl enable --now logrotate.timer (or the /etc/cron.daily/logrotate script exists)"
    ),
    frameworks={"cis-debian-12": ["6.1.3.8"], "nist-800-53": ["AU-4", "AU-11"], "iso-27001": ["A.8.15", "A.8.6"]},
    probes=[PACKAGES, LOG_CONFIG, LOG_PATHS, SERVICES],
)
def logrotate_configured(facts: Facts, params: Params) -> Finding:
    """Verifies the logrotate package, a rotation directive in /etc/logrotate.conf, and a timer or cron.daily job."""
    inventory = _inventory(facts)
    if isinstance(inventory, str):
        return Finding.error(f"could not assess: installed packages unknown ({inventory})")
    if not inventory.has("logrotate"):
        return Finding.failed("logrotate is not installed", observed="not installed")
    conf = facts.get(LOG_CONFIG.name)
    if (why := _problem(conf, "log configuration")) is not None:
        return Finding.error(f"could not assess: {why}")
    assert conf is not None
    dump = parse_file_dump(conf.text)
    if "/etc/logrotate.conf" in dump.unreadable:
        return Finding.error("could not assess: /etc/logrotate.conf is unreadable")
    text = dump.files.get("/etc/logrotate.conf")
    if text is None:
        return Finding.failed("/etc/logrotate.conf is missing", observed="missing")
    directives = {ln.split()[0] for ln in text.splitlines() if ln.strip() and not ln.strip().startswith("#")}
    if not directives & {"daily", "weekly", "monthly", "yearly", "size", "maxsize", "rotate"}:
        return Finding.failed("/etc/logrotate.conf sets no rotation period, size or count", observed="no directive")
    paths = _paths(facts)
    snap = _snapshot(facts)
    timer = snap.unit("logrotate.timer") if isinstance(snap, ServiceSnapshot) else None
    scheduled: list[str] = []
    if timer is not None and (timer.is_enabled or timer.is_active):
        scheduled.append(f"logrotate.timer {timer.active}/{timer.enabled}")
    if isinstance(paths, dict) and paths.get("/etc/cron.daily/logrotate"):
        scheduled.append("/etc/cron.daily/logrotate")
    if scheduled:
        return Finding.passed(
            f"logrotate installed, configured and scheduled by {' and '.join(scheduled)}", observed=", ".join(scheduled)
        )
    if isinstance(paths, str) or isinstance(snap, str):
        return Finding.error(f"could not assess the schedule: {paths if isinstance(paths, str) else snap}")
    return Finding.failed(
        "logrotate is installed but nothing runs it (no logrotate.timer, no cron.daily job)", observed="not scheduled"
    )
