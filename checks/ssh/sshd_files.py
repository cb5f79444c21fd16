"""Protection of the SSH daemon's own files: its configuration and its host keys."""

from __future__ import annotations

from collections.abc import Mapping

from itops.checkapi import Facts, Finding, Params, Severity, host_check
from itops.checklib.common import ProbeOutputError, format_mode, mode_excess, probe_error
from itops.checklib.fileperm import FileStat, parse_max_mode, stat_map
from itops.checklib.sshd import HOST_KEY_STATS, SSHD_FILES
from itops.checklib.sshd_syntax import SshdConfigError, parse_files_dump

MAIN = "/etc/ssh/sshd_config"


@host_check(
    id="ssh.sshd_config_permissions",
    fix={"files": [{"path": "{resource}", "mode": "{ssh_config_max_mode}", "owner": "root", "group": "root"}]},
    title="sshd configuration files are root-owned and not readable by others",
    severity=Severity.MEDIUM,
    rationale="Whoever can write sshd_config (or a file it includes) controls who can log in as anyone; "
    "read access reveals the authentication setup to local attackers.",
    remediation="For /etc/ssh/sshd_config and every file it includes: "
    "`chown root:root FILE && chmod u-x,go-rwx FILE` (mode 0600).",
    frameworks={"cis-debian-12": ["5.1.1"], "nist-800-53": ["AC-3", "CM-6"], "iso-27001": ["A.8.3", "A.8.9"]},
    probes=[SSHD_FILES],
    params={"ssh_config_max_mode": "0600"},
)
def sshd_config_permissions(facts: Facts, params: Params) -> list[Finding]:
    """sshd_config and every file reachable through Include: owner root, mode at most ssh_config_max_mode."""
    max_mode = parse_max_mode(params["ssh_config_max_mode"], "ssh_config_max_mode")
    result = facts.get(SSHD_FILES.name)
    if result is None or not result.ok:
        return [probe_error(result, "reading /etc/ssh/sshd_config")]
    try:
        dump = parse_files_dump(result.text)
    except SshdConfigError as exc:
        return [Finding.error(f"could not assess: {exc}")]
    if MAIN in dump.missing:
        return [Finding.skipped(f"{MAIN} does not exist (OpenSSH server not installed?)")]
    stats: dict[str, tuple[int, int, int] | None] = {
        path: (info.mode, info.uid, info.gid)
        if info.mode is not None and info.uid is not None and info.gid is not None
        else None
        for path, info in dump.files.items()
    }
    for path in dump.unreadable:
        stats.setdefault(path, dump.unreadable_stat.get(path))
    expected = f"owner root, mode {format_mode(max_mode)} or stricter"
    findings: list[Finding] = []
    for path, st in stats.items():
        if st is None:
            findings.append(Finding.error(f"could not assess: could not stat {path}", resource=path))
            continue
        mode, uid, gid = st
        observed = f"{format_mode(mode)} uid {uid} gid {gid}"
        problems = []
        excess = mode_excess(mode, max_mode)
        if excess:
            problems.append(f"mode {format_mode(mode)} allows {format_mode(excess)} beyond {format_mode(max_mode)}")
        if uid != 0:
            problems.append(f"owned by uid {uid}, not root")
        if gid != 0 and mode & 0o070:
            problems.append(f"group gid {gid} (not root) has access")
        if problems:
            findings.append(
                Finding.failed(f"{path}: " + "; ".join(problems), observed=observed, expected=expected, resource=path)
            )
        else:
            findings.append(
                Finding.passed(
                    f"{path} is {observed} ({expected})", observed=observed, expected=expected, resource=path
                )
            )
    if not findings:
        return [Finding.error(f"could not assess: the probe reported no configuration file (not even {MAIN})")]
    return findings


def _host_key_stats(facts: Facts) -> Mapping[str, FileStat] | Finding:
    result = facts.get(HOST_KEY_STATS.name)
    if result is None or result.rc is None or result.timed_out or result.command_missing or not result.ok:
        return probe_error(result, "stat of SSH host keys")
    try:
        return stat_map(facts, HOST_KEY_STATS)
    except ProbeOutputError as exc:
        return Finding.error(f"could not assess: {exc}")


def _key_findings(stats: Mapping[str, FileStat], public: bool, private_max: int, key_group: str) -> list[Finding]:
    findings: list[Finding] = []
    for path, st in sorted(stats.items()):
        if path.endswith(".pub") != public:
            continue
        if st.state == "missing":
            continue  # a HostKey line naming an absent file, or a key without .pub: nothing to protect
        if st.state == "error":
            findings.append(Finding.error(f"could not assess: stat {path} failed", resource=path))
            continue
        if public:
            max_mode, expected = 0o644, "owner root, mode 0644 or stricter"
        elif st.group == key_group:
            max_mode, expected = 0o640, f"owner root, mode 0640 or stricter with group {key_group}"
        else:
            max_mode, expected = private_max, f"owner root, mode {format_mode(private_max)} or stricter"
        problems = []
        excess = mode_excess(st.mode, max_mode)
        if excess:
            problems.append(f"mode {format_mode(st.mode)} allows {format_mode(excess)} beyond {format_mode(max_mode)}")
        if st.uid != 0:
            problems.append(f"owner {st.user or st.uid} (expected root)")
        observed = st.describe()
        if problems:
            findings.append(
                Finding.failed(f"{path}: " + "; ".join(problems), observed=observed, expected=expected, resource=path)
            )
        else:
            findings.append(
                Finding.passed(f"{path} is {observed}", observed=observed, expected=expected, resource=path)
            )
    return findings


@host_check(
    id="ssh.host_private_keys_permissions",
    fix={"files": [{"path": "{resource}", "mode": "{ssh_host_key_max_mode}", "owner": "root"}]},
    title="SSH host private keys are readable only by root",
    severity=Severity.HIGH,
    rationale="A stolen host private key lets an attacker impersonate the server and intercept logins, "
    "including passwords and forwarded agents, without any host-key warning.",
    remediation="For each /etc/ssh/ssh_host_*_key: `chown root:root KEY && chmod 0600 KEY` "
    "(RHEL may use `chown root:ssh_keys KEY && chmod 0640 KEY`).",
    frameworks={"cis-debian-12": ["5.1.2"], "nist-800-53": ["AC-3", "SC-12"], "iso-27001": ["A.8.3", "A.8.24"]},
    probes=[HOST_KEY_STATS],
    params={"ssh_host_key_max_mode": "0600", "ssh_host_key_group": "ssh_keys"},
)
def host_private_keys_permissions(facts: Facts, params: Params) -> list[Finding]:
    """Host private keys (HostKey files, /etc/ssh/ssh_host_*_key): owner root, mode 0600 (0640 if group ssh_keys)."""
    max_mode = parse_max_mode(params["ssh_host_key_max_mode"], "ssh_host_key_max_mode")
    stats = _host_key_stats(facts)
    if isinstance(stats, Finding):
        return [stats]
    findings = _key_findings(stats, False, max_mode, str(params["ssh_host_key_group"]))
    return findings or [Finding.error("could not assess: no SSH host private key found (HostKey, /etc/ssh)")]


@host_check(
    id="ssh.host_public_keys_permissions",
    fix={"files": [{"path": "{resource}", "mode": "0644", "owner": "root", "group": "root"}]},
    title="SSH host public keys are root-owned and not writable by others",
    severity=Severity.LOW,
    rationale="A writable host public key can be swapped, confusing clients that learn keys from the server "
    "(e.g. UpdateHostKeys, SSHFP generation) and hiding a key substitution.",
    remediation="For each /etc/ssh/ssh_host_*_key.pub: `chown root:root KEY.pub && chmod 0644 KEY.pub`.",
    frameworks={"cis-debian-12": ["5.1.3"], "nist-800-53": ["AC-3", "SC-12"], "iso-27001": ["A.8.3"]},
    probes=[HOST_KEY_STATS],
    params={},
)
def host_public_keys_permissions(facts: Facts, params: Params) -> list[Finding]:
    """Host public keys: owner root, mode 0644 or stricter."""
    stats = _host_key_stats(facts)
    if isinstance(stats, Finding):
        return [stats]
    findings = _key_findings(stats, True, 0o644, "")
    return findings or [Finding.error("could not assess: no SSH host public key found (HostKey, /etc/ssh)")]
