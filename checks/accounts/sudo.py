"""sudo policy: privilege escalation always asks for the user's password."""

from __future__ import annotations

import re

from itops.checkapi import Facts, Finding, Params, Severity, host_check
from itops.checklib.accounts import read_probe
from itops.checklib.common import ProbeOutputError
from itops.checklib.sudoers import SUDOERS_FILES, SudoersLine, defaults_params, policy_lines

_NOPASSWD_RE = re.compile(r"(?<![A-Za-z_])NOPASSWD\s*:")
_ALIAS_RE = re.compile(r"^(User_Alias|Runas_Alias|Host_Alias|Cmnd_Alias|Cmd_Alias)\s")


def _policy(facts: Facts) -> list[SudoersLine] | Finding | None:
    """The active sudoers lines; None when sudo is not installed; an ERROR finding when unreadable."""
    res = read_probe(facts, SUDOERS_FILES, "sudoers")
    if isinstance(res, Finding):
        return res
    try:
        lines = facts.parsed(SUDOERS_FILES, policy_lines)  # parsed once per host for both sudo checks
    except ProbeOutputError as exc:
        return Finding.error(f"could not assess: {exc}", observed=str(exc))
    return None if lines is None else list(lines)


@host_check(
    id="accounts.sudoers_no_nopasswd",
    title="sudo rules require a password (no NOPASSWD)",
    severity=Severity.MEDIUM,
    rationale="With NOPASSWD, anyone who gets a shell as that user (a stolen key, a compromised service, an "
    "unlocked terminal) becomes root without knowing any password.",
    remediation="Remove the `NOPASSWD:` tag from the rules listed (edit with `visudo -f FILE`); keep "
    "password-less rules only for named automation accounts, listed in sudoers_nopasswd_allowed.",
    frameworks={"cis-debian-12": ["5.2.4"], "nist-800-53": ["IA-11", "AC-6"], "iso-27001": ["A.8.2", "A.8.5"]},
    probes=[SUDOERS_FILES],
    params={"sudoers_nopasswd_allowed": []},
)
def sudoers_no_nopasswd(facts: Facts, params: Params) -> list[Finding]:
    """No active rule in /etc/sudoers or the files it includes carries NOPASSWD, except for allowed principals.

    A rule is exempt when every user/group in its user list (first field, e.g.
    `ansible` or `%deploy`) is in sudoers_nopasswd_allowed. Aliases are not expanded.
    """
    policy = _policy(facts)
    if isinstance(policy, Finding):
        return [policy]
    if policy is None:
        return [Finding.passed("sudo is not installed (no /etc/sudoers)", observed="no /etc/sudoers")]
    allowed = set(params["sudoers_nopasswd_allowed"])
    findings: list[Finding] = []
    for line in policy:
        if line.text.startswith("Defaults") or _ALIAS_RE.match(line.text) or not _NOPASSWD_RE.search(line.text):
            continue
        principals = [p.strip() for p in line.text.split(None, 1)[0].split(",") if p.strip()]
        if principals and all(p in allowed for p in principals):
            continue
        findings.append(
            Finding.failed(
                f"NOPASSWD rule at {line.origin}: {line.text[:160]}",
                observed=line.text,
                expected="no NOPASSWD tag",
                resource=line.origin,
            )
        )
    if not findings:
        findings.append(
            Finding.passed(f"no NOPASSWD rule among {len(policy)} active sudoers lines", expected="no NOPASSWD tag")
        )
    return findings


@host_check(
    id="accounts.sudoers_authenticate_required",
    title="sudo authentication is not disabled by Defaults",
    severity=Severity.HIGH,
    rationale="`Defaults !authenticate` turns off password prompts for every rule it covers, so any account "
    "with a sudo rule is root without a password.",
    remediation="Remove `!authenticate` from the Defaults lines listed (edit with `visudo -f FILE`).",
    frameworks={"cis-debian-12": ["5.2.5"], "nist-800-53": ["IA-11"], "iso-27001": ["A.8.2", "A.8.5"]},
    probes=[SUDOERS_FILES],
    params={},
)
def sudoers_authenticate_required(facts: Facts, params: Params) -> list[Finding]:
    """No active Defaults line (global or scoped to a user, host, runas or command) sets !authenticate."""
    policy = _policy(facts)
    if isinstance(policy, Finding):
        return [policy]
    if policy is None:
        return [Finding.passed("sudo is not installed (no /etc/sudoers)", observed="no /etc/sudoers")]
    findings: list[Finding] = []
    for line in policy:
        parsed = defaults_params(line)
        if parsed is None:
            continue
        scope, values = parsed
        if any(v.replace(" ", "") == "!authenticate" for v in values):
            where = f"Defaults{scope}" if scope else "Defaults"
            findings.append(
                Finding.failed(
                    f"{where} !authenticate at {line.origin}",
                    observed=line.text,
                    expected="authentication not disabled",
                    resource=line.origin,
                )
            )
    if not findings:
        findings.append(
            Finding.passed("no Defaults line disables authentication", expected="authentication not disabled")
        )
    return findings
