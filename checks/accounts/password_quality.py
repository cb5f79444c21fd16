"""Password quality: whether pam_pwquality checks new passwords, and how long it makes them.

pam_pwquality (package libpam-pwquality on Debian, libpwquality on RHEL) is the PAM module
that rejects short and guessable passwords when users change them; without it in the
password stack, pam_unix accepts any password (Debian's `obscure` only rejects trivial ones).
"""

from __future__ import annotations

from itops.checkapi import Facts, Finding, Params, Probe, Severity, host_check
from itops.checklib.accounts import read_probe
from itops.checklib.pam import (
    PWQUALITY_CONF,
    PWQUALITY_CONF_D_GLOB,
    effective_pwquality,
    find_module,
    parse_pam_stack,
)
from itops.checklib.storage import file_dump_command, parse_file_dump

#: The PAM files whose password stack must call pam_pwquality, per OS family.
PASSWORD_STACKS = {
    "debian": ("/etc/pam.d/common-password",),
    "suse": ("/etc/pam.d/common-password",),
    "rhel": ("/etc/pam.d/system-auth", "/etc/pam.d/password-auth"),
}
PWQUALITY_FILES = Probe(
    "pwquality_files",
    file_dump_command(
        ("/etc/pam.d/common-password", "/etc/pam.d/system-auth", "/etc/pam.d/password-auth", PWQUALITY_CONF),
        (PWQUALITY_CONF_D_GLOB,),
        unlistable_dirs=True,
    ),
)
_PACKAGE = {"debian": "libpam-pwquality", "suse": "pam_pwquality", "rhel": "libpwquality"}
_ENABLE = {
    "debian": "`apt-get install libpam-pwquality` (pam-auth-update adds `password requisite pam_pwquality.so "
    "retry=3` to /etc/pam.d/common-password)",
    "suse": "`zypper install pam_pwquality` and add `password requisite pam_pwquality.so retry=3` before "
    "pam_unix.so in /etc/pam.d/common-password",
    "rhel": "`authselect select sssd with-pwquality` (or `authselect enable-feature with-pwquality`)",
}


@host_check(
    id="accounts.password_quality_enforced",
    title="pam_pwquality checks new passwords (in the PAM password stack, enforcing) with an effective minlen of "
    "at least 14",
    severity=Severity.MEDIUM,
    rationale="Without pam_pwquality, or with a short minimum length or `enforcing = 0`, users can set short "
    "or dictionary passwords that online guessing and offline cracking of a leaked /etc/shadow break quickly.",
    remediation="Debian/Ubuntu: `apt-get install libpam-pwquality` (pam-auth-update puts `password requisite "
    "pam_pwquality.so retry=3` into /etc/pam.d/common-password); RHEL: `authselect enable-feature with-pwquality`. "
    "Then set `minlen = {min_password_length}` in /etc/security/pwquality.conf, remove `enforcing = 0` and any smaller "
    "minlen= from the pam_pwquality.so line and from /etc/security/pwquality.conf.d/*.conf.",
    frameworks={
        "cis-debian-12": ["5.3.2.3", "5.3.3.2.2", "5.3.3.2.7"],
        "nist-800-53": ["IA-5(1)"],
        "iso-27001": ["A.5.17"],
    },
    os_families=("debian", "rhel", "suse"),
    probes=[PWQUALITY_FILES],
    params={"min_password_length": 14},
)
def password_quality_enforced(facts: Facts, params: Params) -> list[Finding]:
    """pam_pwquality.so is in the password stack of /etc/pam.d/common-password (Debian, SUSE) or of both
    /etc/pam.d/system-auth and password-auth (RHEL), not as `optional`; its effective minlen is at least
    min_password_length and it is not `enforcing = 0`.

    Effective settings are worked out as libpwquality does: built-in defaults (minlen 8), then
    /etc/security/pwquality.conf.d/*.conf in name order, then /etc/security/pwquality.conf (which therefore
    overrides the drop-ins), then NAME=VALUE arguments of the pam_pwquality.so line.
    """
    minimum = int(params["min_password_length"])
    res = read_probe(facts, PWQUALITY_FILES, "PAM and pwquality files")
    if isinstance(res, Finding):
        return [res]
    dump = parse_file_dump(res.text)
    stacks = PASSWORD_STACKS.get(facts.family, PASSWORD_STACKS["debian"])
    conf_files = dump.matching(PWQUALITY_CONF, PWQUALITY_CONF_D_GLOB)
    unreadable_conf = dump.unreadable_matching(PWQUALITY_CONF, PWQUALITY_CONF_D_GLOB, PWQUALITY_CONF + ".d")
    expected = f"pam_pwquality.so in the password stack, enforcing, minlen >= {minimum}"
    findings: list[Finding] = []
    for stack in stacks:
        if stack in dump.unreadable:
            findings.append(
                Finding.error(f"could not assess: {stack} is not readable (run as root or enable sudo)", resource=stack)
            )
            continue
        if stack not in dump.files:
            findings.append(
                Finding.failed(
                    f"{stack} does not exist, so no password stack calls pam_pwquality.so",
                    observed="missing",
                    expected=expected,
                    resource=stack,
                )
            )
            continue
        line = find_module(parse_pam_stack(dump.files[stack]), "pam_pwquality.so", "password")
        if line is None:
            package = _PACKAGE.get(facts.family, "libpam-pwquality")
            findings.append(
                Finding.failed(
                    f"pam_pwquality.so is not in the password stack of {stack}: new passwords are not checked for "
                    f"length or complexity ({package} not installed or not enabled; "
                    f"{_ENABLE.get(facts.family, _ENABLE['debian'])})",
                    observed="no pam_pwquality.so",
                    expected=expected,
                    resource=stack,
                )
            )
            continue
        where = f"{stack}:{line.line}"
        if unreadable_conf:
            findings.append(
                Finding.error(
                    f"could not assess: {', '.join(unreadable_conf)} not readable, so the effective pwquality "
                    "settings are unknown (run as root or enable sudo)",
                    resource=unreadable_conf[0],
                )
            )
            continue
        eff = effective_pwquality(conf_files, line, stack)
        note = (
            f"; libpwquality stops reading its configuration at {eff.stopped_at}, so later settings do not apply"
            if eff.stopped_at
            else ""
        )
        observed = f"minlen {eff.minlen.value} ({eff.minlen.source}), enforcing {eff.enforcing.value}"
        problems = []
        if line.control == "optional":
            problems.append(f"it is `optional` at {where}, so a password it rejects is still accepted")
        if eff.enforcing.value == 0:
            problems.append(f"enforcing = 0 ({eff.enforcing.source}) only warns about weak passwords")
        if eff.minlen.value < minimum:
            problems.append(f"effective minlen is {eff.minlen.value} ({eff.minlen.source}), below {minimum}")
        if problems:
            findings.append(
                Finding.failed(
                    f"pam_pwquality.so ({where}): " + "; ".join(problems) + note,
                    observed=observed,
                    expected=expected,
                    resource=stack,
                )
            )
        else:
            findings.append(
                Finding.passed(
                    f"pam_pwquality.so is in the password stack ({where}, {line.control}); effective minlen "
                    f"{eff.minlen.value} ({eff.minlen.source}), enforcing{note}",
                    observed=observed,
                    expected=expected,
                    resource=stack,
                )
            )
    return findings
