"""Software currency and integrity: pending security updates, OS end of life, signed repositories."""

from __future__ import annotations

import datetime as dt
from typing import Any

from itops.checkapi import Facts, Finding, Params, Probe, Severity, host_check, parse_os_release
from itops.checklib import packages
from itops.checklib.storage import file_dump_command, parse_file_dump

# dnf may download repository metadata first: allow it more than the default command timeout
SECURITY_UPDATES = Probe("security_updates", packages.SECURITY_UPDATES_COMMAND, timeout=300)
# same name and command as the planner's own OS probe, so it runs once
OS_RELEASE = Probe("os_release", "cat /etc/os-release 2>/dev/null || cat /usr/lib/os-release")
REPO_CONFIG = Probe(
    "package_repo_config",
    file_dump_command(
        globs=(
            "/etc/dnf/dnf.conf",
            "/etc/yum.conf",
            "/etc/yum.repos.d/*.repo",
            "/etc/apt/sources.list",
            "/etc/apt/sources.list.d/*.list",
            "/etc/apt/sources.list.d/*.sources",
            "/etc/apt/apt.conf",
            "/etc/apt/apt.conf.d/*",
        )
    ),
)
_LIST_MAX = 10


@host_check(
    id="software.security_updates_applied",
    title="No security updates are pending",
    severity=Severity.HIGH,
    rationale=(
        "Published security fixes are what attackers scan for first. The check reads the host's own package "
        "metadata (apt: the lists from the last apt-get update; dnf/yum: updateinfo), so keep those fresh "
        "with unattended-upgrades or dnf-automatic."
    ),
    remediation=(
        "Debian/Ubuntu: apt-get update && apt-get -y dist-upgrade; "
        "RHEL: dnf -y upgrade --security (yum -y update --security on RHEL 7); reboot if the kernel was updated"
    ),
    frameworks={"cis-debian-12": ["1.2.2.1"], "nist-800-53": ["SI-2", "SI-2(2)", "RA-5"], "iso-27001": ["A.8.8"]},
    os_families=("debian", "rhel"),
    probes=[SECURITY_UPDATES],
)
def security_updates_applied(facts: Facts, params: Params) -> Finding:
    """Verifies apt (simulated dist-upgrade) or dnf/yum updateinfo lists no pending security update."""
    r = facts.get(SECURITY_UPDATES.name)
    if r is None:
        return Finding.error("could not assess: the update probe did not run")
    if not r.ok:
        return Finding.error(f"could not assess: {r.problem()}")
    try:
        pending = packages.parse_security_updates(r.text)
    except ValueError as exc:
        return Finding.error(f"could not assess: {exc}")
    n = len(pending.security)
    if n:
        shown = ", ".join(pending.security[:_LIST_MAX]) + (f" and {n - _LIST_MAX} more" if n > _LIST_MAX else "")
        return Finding.failed(
            f"{n} security update(s) pending ({pending.manager}): {shown}", observed=shown, expected="none pending"
        )
    other = f"; {pending.other_count} other upgrade(s) pending" if pending.other_count else ""
    return Finding.passed(f"no security update pending ({pending.manager}){other}", expected="none pending")


def _today(value: str) -> dt.date:
    return dt.date.fromisoformat(value) if value else dt.date.today()


def _override(overrides: dict[str, Any], os_id: str, version: str) -> dt.date | None:
    """An inventory-provided EOL date for "ID VERSION" (e.g. {"sles 15": "2031-07-31"})."""
    for key in (f"{os_id} {version}", f"{os_id} {version.split('.')[0]}"):
        if key in overrides:
            raw = overrides[key]
            return raw if isinstance(raw, dt.date) else dt.date.fromisoformat(str(raw))
    return None


@host_check(
    id="software.os_release_supported",
    title="The OS release still receives security updates",
    severity=Severity.HIGH,
    rationale=(
        "After its end of life an OS release gets no security fixes, so every new vulnerability in it "
        "stays open for good. Dates live in itops/checklib/data/os_eol.yaml."
    ),
    remediation=(
        "Upgrade to a supported release (Debian: follow the release notes' upgrade chapter and run "
        "apt-get full-upgrade after switching sources; Ubuntu: do-release-upgrade; RHEL: leapp upgrade) or "
        "rebuild the host on one; if you pay for extended support (Ubuntu Pro ESM, RHEL ELS) set "
        "os_eol_include_extended_support: true in the host's vars"
    ),
    frameworks={"nist-800-53": ["SA-22", "SI-2"], "iso-27001": ["A.8.8", "A.5.9"]},
    probes=[OS_RELEASE],
    params={"os_eol_today": "", "os_eol_include_extended_support": False, "os_eol_overrides": {}},
)
def os_release_supported(facts: Facts, params: Params) -> Finding:
    """Verifies the host's OS release (from /etc/os-release) is before its end-of-support date.

    os_eol_today (YYYY-MM-DD, default today) fixes the date the check compares with.
    """
    try:
        today = _today(params["os_eol_today"])
    except ValueError:
        return Finding.error(f"bad parameter os_eol_today: {params['os_eol_today']!r} is not YYYY-MM-DD")
    info = dict(facts.os)
    if not info:
        r = facts.get(OS_RELEASE.name)
        if r is None or not r.ok:
            return Finding.error(f"could not assess: /etc/os-release unreadable ({r.problem() if r else 'no probe'})")
        info = parse_os_release(r.text)
    os_id, version = info.get("ID", "").lower(), info.get("VERSION_ID", "")
    pretty = info.get("PRETTY_NAME") or f"{os_id} {version}".strip() or "unknown OS"
    if not os_id:
        return Finding.error("could not assess: /etc/os-release has no ID")
    try:
        eol = _override(params["os_eol_overrides"], os_id, version)
    except ValueError:
        return Finding.error("bad parameter os_eol_overrides: dates must be YYYY-MM-DD")
    extended: dt.date | None = None
    if eol is None:
        entry = packages.lookup_eol(info)
        if entry is None:
            return Finding.error(
                f"could not assess: unknown release {pretty} (ID={os_id} VERSION_ID={version or 'unset'}); "
                "add it to itops/checklib/data/os_eol.yaml or the os_eol_overrides var"
            )
        eol, extended = entry.eol, entry.extended
    use_ext = bool(params["os_eol_include_extended_support"]) and extended is not None
    limit = extended if use_ext and extended is not None else eol
    kind = "extended support" if use_ext else "security support"
    observed = f"{pretty}; {kind} ends {limit.isoformat()}; today {today.isoformat()}"
    if today > limit:
        extra = (
            f" (paid extended support runs to {extended.isoformat()}; set os_eol_include_extended_support: true "
            "if this host has it)"
            if extended is not None and not use_ext and today <= extended
            else ""
        )
        return Finding.failed(
            f"{pretty} reached end of {kind} on {limit.isoformat()}{extra}",
            observed=observed,
            expected=f"before {limit.isoformat()}",
        )
    days = (limit - today).days
    return Finding.passed(f"{pretty}: {kind} until {limit.isoformat()} ({days} days left)", observed=observed)


@host_check(
    id="software.package_manager_gpgcheck_enabled",
    title="The package manager verifies package signatures",
    severity=Severity.HIGH,
    rationale=(
        "Without signature checks anyone who can tamper with a mirror, a proxy or DNS can install code as "
        "root on the next update."
    ),
    remediation=(
        "RHEL: set gpgcheck=1 in the [main] section of /etc/dnf/dnf.conf (sed -i 's/^gpgcheck=.*/gpgcheck=1/' "
        "/etc/dnf/dnf.conf) and remove gpgcheck=0 from the named repo files in /etc/yum.repos.d/; "
        "Debian/Ubuntu: remove [trusted=yes] / Trusted: yes from the named sources and any "
        "AllowUnauthenticated / AllowInsecureRepositories setting from /etc/apt/apt.conf.d/, then import "
        "the repository's key into /etc/apt/keyrings/ and reference it with signed-by="
    ),
    frameworks={
        "cis-debian-12": ["1.2.1.1"],
        "cis-rhel-9": ["1.2.1.2"],
        "nist-800-53": ["CM-14", "SI-7", "SI-7(15)"],
        "iso-27001": ["A.8.19", "A.8.7"],
    },
    os_families=("debian", "rhel"),
    probes=[REPO_CONFIG],
)
def package_manager_gpgcheck_enabled(facts: Facts, params: Params) -> Finding:
    """Verifies dnf/yum gpgcheck is on globally and per repo, or no apt source/setting skips signatures."""
    r = facts.get(REPO_CONFIG.name)
    if r is None:
        return Finding.error("could not assess: the repository configuration probe did not run")
    if not r.ok:
        return Finding.error(f"could not assess: {r.problem()}")
    dump = parse_file_dump(r.text)
    if facts.family == "rhel":
        main = dump.files.get("/etc/dnf/dnf.conf", dump.files.get("/etc/yum.conf"))
        repos = dict(dump.matching("/etc/yum.repos.d/*"))
        unreadable = dump.unreadable_matching("/etc/dnf/*", "/etc/yum.conf", "/etc/yum.repos.d/*")
        if main is None and unreadable:
            return Finding.error(f"could not assess: unreadable {', '.join(unreadable)}")
        problems = packages.dnf_gpgcheck_problems(main or "", repos)
        if main is None:
            problems[0] = "neither /etc/dnf/dnf.conf nor /etc/yum.conf exists (dnf defaults to gpgcheck off)"
    elif facts.family == "debian":
        sources = dict(dump.matching("/etc/apt/sources.list", "/etc/apt/sources.list.d/*"))
        confs = dict(dump.matching("/etc/apt/apt.conf", "/etc/apt/apt.conf.d/*"))
        unreadable = dump.unreadable_matching("/etc/apt/*")
        problems = packages.apt_trusted_sources(sources) + packages.apt_insecure_settings(confs)
        if not sources and not problems:
            why = f"unreadable {', '.join(unreadable)}" if unreadable else "no apt source file found"
            return Finding.error(f"could not assess: {why}")
    else:
        return Finding.skipped(f"not applicable on OS family {facts.family or 'unknown'}")
    if problems:
        shown = "; ".join(problems[:_LIST_MAX])
        return Finding.failed(f"signature checks disabled: {shown}", observed=shown, expected="signatures verified")
    if unreadable:
        return Finding.error(f"could not assess: unreadable {', '.join(unreadable)}")
    return Finding.passed("package signatures are verified for every configured repository")
