"""Password aging: the defaults in /etc/login.defs and the values already set per account in /etc/shadow.

login.defs only applies to accounts created after it changed; existing accounts keep the
aging fields stored in /etc/shadow, so each check judges both (as the CIS audit does):
one finding for login.defs, one per account with a password whose own value is out of
range (or one PASS for all of them). Locked accounts and accounts without a password
are not judged per account.
"""

from __future__ import annotations

from collections.abc import Callable

from itops.checkapi import Facts, Finding, Params, Severity, host_check
from itops.checklib.accounts import (
    LOGIN_DEFS,
    SHADOW_HASH_SCHEMES,
    SHADOW_STATUS,
    ShadowEntry,
    load_login_defs,
    load_shadow,
    login_defs_int,
    parse_shadow_schemes,
    read_probe,
)
from itops.checklib.common import ProbeOutputError, summarize
from itops.model import Status


def _aging(
    facts: Facts,
    key: str,
    default_when_unset: int,
    ok: Callable[[int], bool],
    expected: str,
    field: Callable[[ShadowEntry], int | None],
    field_name: str,
    fix: str,
) -> list[Finding]:
    findings: list[Finding] = []
    defs = load_login_defs(facts)
    if isinstance(defs, Finding):
        findings.append(Finding(defs.status, defs.message, observed=defs.observed, resource="/etc/login.defs"))
    else:
        try:
            value = login_defs_int(defs, key)
        except ValueError as exc:
            findings.append(
                Finding.failed(
                    f"/etc/login.defs: {exc} (shadow-utils then uses {default_when_unset})",
                    observed=defs[key],
                    expected=expected,
                    resource="/etc/login.defs",
                )
            )
        else:
            if value is None:
                status = Status.PASS if ok(default_when_unset) else Status.FAIL
                findings.append(
                    Finding(
                        status,
                        f"{key} is not set in /etc/login.defs, so new accounts get {default_when_unset}"
                        + ("" if status is Status.PASS else f" (expected {expected})"),
                        observed=f"unset ({default_when_unset})",
                        expected=expected,
                        resource="/etc/login.defs",
                    )
                )
            elif ok(value):
                findings.append(
                    Finding.passed(
                        f"{key} is {value} in /etc/login.defs",
                        observed=str(value),
                        expected=expected,
                        resource="/etc/login.defs",
                    )
                )
            else:
                findings.append(
                    Finding.failed(
                        f"{key} is {value} in /etc/login.defs (expected {expected})",
                        observed=str(value),
                        expected=expected,
                        resource="/etc/login.defs",
                    )
                )
    shadow = load_shadow(facts)
    if isinstance(shadow, Finding):
        findings.append(Finding(shadow.status, shadow.message, observed=shadow.observed, resource="/etc/shadow"))
        return findings
    with_password = [s for s in shadow if s.state == "set"]
    bad = [s for s in with_password if (v := field(s)) is None or not ok(v)]
    for s in bad:
        shown = field(s)
        findings.append(
            Finding.failed(
                f"{s.name} has {field_name} {'unset' if shown is None else shown} in /etc/shadow (expected {expected};"
                f" fix: {fix.format(name=s.name)})",
                observed="unset" if shown is None else str(shown),
                expected=expected,
                resource=s.name,
            )
        )
    if not bad:
        message = (
            f"all {len(with_password)} accounts with a password have {field_name} {expected} in /etc/shadow"
            if with_password
            else "no account has a password set in /etc/shadow (only locked accounts)"
        )
        findings.append(Finding(Status.PASS, message, expected=expected, resource="/etc/shadow"))
    return findings


@host_check(
    id="accounts.password_max_days_limited",
    fix={
        "lines": [{"path": "/etc/login.defs", "key": "PASS_MAX_DAYS", "value": "{password_max_days}"}],
        "note": (
            "existing accounts keep their own maximum until `chage --maxdays` (not automatic: it can expire "
            "passwords at once)"
        ),
        "resources": "/etc/login.defs",
    },
    title="Passwords expire within the maximum age",
    severity=Severity.MEDIUM,
    rationale="A maximum password age bounds how long a leaked or cracked password stays usable.",
    remediation="Set `PASS_MAX_DAYS {password_max_days}` in /etc/login.defs (or fewer) and, for existing "
    "accounts, `chage --maxdays {password_max_days} NAME`.",
    frameworks={"cis-debian-12": ["5.4.1.1"], "nist-800-53": ["IA-5(1)"], "iso-27001": ["A.5.17"]},
    probes=[LOGIN_DEFS, SHADOW_STATUS],
    params={"password_max_days": 365},
)
def password_max_days(facts: Facts, params: Params) -> list[Finding]:
    """PASS_MAX_DAYS and each password account's max days are 1..password_max_days (default 365)."""
    limit = int(params["password_max_days"])
    return _aging(
        facts,
        "PASS_MAX_DAYS",
        99999,
        lambda v: 1 <= v <= limit,
        f"1 to {limit} days",
        lambda s: s.max_days,
        "maximum password age",
        "chage --maxdays " + str(limit) + " {name}",
    )


@host_check(
    id="accounts.password_min_days_set",
    fix={
        "sh": (
            "case {resource} in /etc/login.defs) itops_set_line /etc/login.defs PASS_MIN_DAYS ' ' "
            "{password_min_days} || return 1 ;; /*) echo 'ok: nothing to set for this file' ;; *) itops_chage "
            "{resource} min {password_min_days} || return 1 ;; esac"
        ),
    },
    title="Passwords cannot be changed again immediately",
    severity=Severity.LOW,
    rationale="A minimum password age stops users from cycling through the history straight back to the "
    "password they were told to replace.",
    remediation="Set `PASS_MIN_DAYS {password_min_days}` in /etc/login.defs (or more) and, for existing "
    "accounts, `chage --mindays {password_min_days} NAME`.",
    frameworks={"cis-debian-12": ["5.4.1.2"], "nist-800-53": ["IA-5(1)"], "iso-27001": ["A.5.17"]},
    probes=[LOGIN_DEFS, SHADOW_STATUS],
    params={"password_min_days": 1},
)
def password_min_days(facts: Facts, params: Params) -> list[Finding]:
    """PASS_MIN_DAYS and each password account's min days are at least password_min_days (default 1)."""
    low = int(params["password_min_days"])
    return _aging(
        facts,
        "PASS_MIN_DAYS",
        0,
        lambda v: v >= low,
        f"at least {low} day" + ("" if low == 1 else "s"),
        lambda s: s.min_days,
        "minimum password age",
        "chage --mindays " + str(low) + " {name}",
    )


@host_check(
    id="accounts.password_warn_age_set",
    fix={
        "sh": (
            "case {resource} in /etc/login.defs) itops_set_line /etc/login.defs PASS_WARN_AGE ' ' "
            "{password_warn_age} || return 1 ;; /*) echo 'ok: nothing to set for this file' ;; *) itops_chage "
            "{resource} warn {password_warn_age} || return 1 ;; esac"
        ),
    },
    title="Users are warned before their password expires",
    severity=Severity.LOW,
    rationale="A warning period lets users choose a new password calmly instead of being locked out or picking "
    "a weak one at the last moment.",
    remediation="Set `PASS_WARN_AGE {password_warn_age}` in /etc/login.defs (or more) and, for existing "
    "accounts, `chage --warndays {password_warn_age} NAME`.",
    frameworks={"cis-debian-12": ["5.4.1.3"], "nist-800-53": ["IA-5(1)"], "iso-27001": ["A.5.17"]},
    probes=[LOGIN_DEFS, SHADOW_STATUS],
    params={"password_warn_age": 7},
)
def password_warn_age(facts: Facts, params: Params) -> list[Finding]:
    """PASS_WARN_AGE and each password account's warning days are at least password_warn_age (default 7)."""
    low = int(params["password_warn_age"])
    return _aging(
        facts,
        "PASS_WARN_AGE",
        7,
        lambda v: v >= low,
        f"at least {low} days",
        lambda s: s.warn_days,
        "password warning period",
        "chage --warndays " + str(low) + " {name}",
    )


@host_check(
    id="accounts.password_hashing_strong",
    fix={
        "lines": [{"path": "/etc/login.defs", "key": "ENCRYPT_METHOD", "value": "SHA512"}],
        "note": "an existing hash changes only when its password is next changed",
        "resources": "/etc/login.defs",
    },
    title="Passwords are hashed with SHA-512 or yescrypt (login.defs ENCRYPT_METHOD and no weak hash in /etc/shadow)",
    severity=Severity.HIGH,
    rationale="MD5-crypt and DES-crypt hashes fall to offline cracking in minutes to hours once /etc/shadow "
    "leaks (a backup, a loose mode, a container image); DES also silently cuts passwords to 8 characters. "
    "ENCRYPT_METHOD decides how chpasswd and newusers hash new passwords.",
    remediation="Set `ENCRYPT_METHOD YESCRYPT` (or `SHA512`) in /etc/login.defs, keep `yescrypt` (or `sha512`) on "
    "the pam_unix.so line of /etc/pam.d/common-password, then make each listed account set a new password "
    "(`passwd NAME`, or `passwd -e NAME` to force it at next login; `passwd -l NAME` if it is unused).",
    frameworks={"cis-debian-12": ["5.4.1.4"], "nist-800-53": ["IA-5(1)", "SC-13"], "iso-27001": ["A.5.17", "A.8.24"]},
    probes=[LOGIN_DEFS, SHADOW_HASH_SCHEMES],
    params={
        "password_encrypt_methods_allowed": ["SHA512", "YESCRYPT"],
        "password_hash_schemes_allowed": [
            "yescrypt",
            "gost-yescrypt",
            "sha512crypt",
            "sha256crypt",
            "scrypt",
            "bcrypt",
        ],
    },
)
def password_hashing_strong(facts: Facts, params: Params) -> list[Finding]:
    """ENCRYPT_METHOD in /etc/login.defs is in password_encrypt_methods_allowed (SHA512 or YESCRYPT, exact
    spelling: shadow-utils falls back to DES on a value it does not know), and every account in /etc/shadow
    with a usable password hash uses a scheme in password_hash_schemes_allowed (MD5-crypt, DES-crypt and
    the like fail). Locked (`!`, `*`) and empty password fields are not judged here; no hash ever leaves
    the host (the probe reports only the scheme name).
    """
    methods = [str(m) for m in params["password_encrypt_methods_allowed"]]
    schemes = {str(s) for s in params["password_hash_schemes_allowed"]}
    findings: list[Finding] = []
    expected_method = "ENCRYPT_METHOD " + " or ".join(methods)
    defs = load_login_defs(facts)
    if isinstance(defs, Finding):
        findings.append(Finding(defs.status, defs.message, observed=defs.observed, resource="/etc/login.defs"))
    else:
        method = defs.get("ENCRYPT_METHOD", "").split("#", 1)[0].strip()
        if method in methods:
            findings.append(
                Finding.passed(
                    f"ENCRYPT_METHOD is {method} in /etc/login.defs",
                    observed=method,
                    expected=expected_method,
                    resource="/etc/login.defs",
                )
            )
        elif not method:
            fallback = "MD5" if defs.get("MD5_CRYPT_ENAB", "").lower() == "yes" else "DES"
            findings.append(
                Finding.failed(
                    f"ENCRYPT_METHOD is not set in /etc/login.defs, so shadow-utils hashes with {fallback} "
                    f"(expected {expected_method})",
                    observed=f"unset ({fallback})",
                    expected=expected_method,
                    resource="/etc/login.defs",
                )
            )
        else:
            hint = " (values are case-sensitive)" if method.upper() in methods else ""
            findings.append(
                Finding.failed(
                    f"ENCRYPT_METHOD is {method} in /etc/login.defs (expected {expected_method}){hint}",
                    observed=method,
                    expected=expected_method,
                    resource="/etc/login.defs",
                )
            )
    res = read_probe(facts, SHADOW_HASH_SCHEMES, "/etc/shadow")
    if isinstance(res, Finding):
        findings.append(Finding(res.status, res.message, observed=res.observed, resource="/etc/shadow"))
        return findings
    try:
        entries = parse_shadow_schemes(res.text)
    except ProbeOutputError as exc:
        findings.append(Finding.error(f"could not assess: {exc}", resource="/etc/shadow"))
        return findings
    expected_scheme = "a hash scheme in " + ", ".join(sorted(schemes))
    hashed = [e for e in entries if e.kind == "hash"]
    weak = [e for e in hashed if e.scheme not in schemes]
    for e in weak:
        findings.append(
            Finding.failed(
                f"{e.account}'s password is hashed with {e.scheme} in /etc/shadow (expected {expected_scheme})",
                observed=e.scheme,
                expected=expected_scheme,
                resource=e.account,
            )
        )
    if not weak:
        used = sorted({e.scheme for e in hashed})
        message = (
            f"all {len(hashed)} password hashes in /etc/shadow use {summarize(used)}"
            if hashed
            else "no account in /etc/shadow has a password hash (only locked or empty ones)"
        )
        findings.append(
            Finding.passed(message, observed=", ".join(used), expected=expected_scheme, resource="/etc/shadow")
        )
    return findings
